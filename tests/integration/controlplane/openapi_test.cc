// The OpenAPI document served at /api/v1/openapi.json and the routes the server registers agree:
// every registered (method, path template) is documented and every documented operation is
// registered. The document is also checked for internal consistency (operationIds, responses,
// path parameters, $refs) and for telling the truth about authentication, both on paper and by
// calling every route without a key. Real HTTP against a real PostgreSQL database.
#include <gtest/gtest.h>

#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/test_control_plane.h"

using namespace inkwire::testing;
namespace json = boost::json;

namespace {

constexpr const char* kDocPath = "/api/v1/openapi.json";
const char* const kMethods[] = {"get", "put", "post", "delete", "options", "head", "patch", "trace"};

using RouteKey = std::pair<std::string, std::string>;  // (METHOD, path template)

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// GET /api/v1/openapi.json without a key; fails the test unless it is a JSON object.
json::object fetch_document(TestControlPlane& cp) {
  auto r = cp.client().get(kDocPath, "");
  EXPECT_EQ(r.status, 200) << r.body.substr(0, 500);
  auto v = r.json();
  if (!v.is_object()) {
    ADD_FAILURE() << "openapi.json is not a JSON object: " << r.body.substr(0, 500);
    return {};
  }
  return v.as_object();
}

std::set<RouteKey> registered_routes(TestControlPlane& cp) {
  std::set<RouteKey> out;
  for (const auto& route : cp.control_plane().api_router().routes())
    out.emplace(std::string(boost::beast::http::to_string(route.method)), route.path_template);
  return out;
}

struct Operation {
  std::string method;  // upper case
  std::string path;
  const json::object* path_item = nullptr;
  const json::object* op = nullptr;
};

std::vector<Operation> documented_operations(const json::object& doc) {
  std::vector<Operation> out;
  const auto* paths = doc.if_contains("paths");
  if (!paths || !paths->is_object()) return out;
  for (const auto& [path, item] : paths->as_object()) {
    if (!item.is_object()) continue;
    for (const char* m : kMethods) {
      const auto* op = item.as_object().if_contains(m);
      if (op && op->is_object())
        out.push_back(Operation{upper(m), std::string(path), &item.as_object(), &op->as_object()});
    }
  }
  return out;
}

std::string describe(const std::set<RouteKey>& s) {
  std::ostringstream os;
  for (const auto& [m, p] : s) os << "\n    " << m << ' ' << p;
  return os.str();
}

// Resolves a local reference ("#/components/schemas/Tunnel", RFC 6901) in `doc`.
const json::value* resolve_ref(const json::value& doc, std::string_view ref) {
  if (!ref.starts_with("#/")) return nullptr;
  ref.remove_prefix(2);
  const json::value* at = &doc;
  while (true) {
    const auto slash = ref.find('/');
    std::string token;
    const auto raw = ref.substr(0, slash);
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '~') {
        token.push_back(raw[i]);
      } else if (i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
        token.push_back(raw[++i] == '0' ? '~' : '/');
      } else {
        return nullptr;
      }
    }
    if (!at->is_object()) return nullptr;
    at = at->as_object().if_contains(token);
    if (!at) return nullptr;
    if (slash == std::string_view::npos) return at;
    ref.remove_prefix(slash + 1);
  }
}

// Every {"$ref": ...} anywhere in `v`, with the JSON path where it was found.
void collect_refs(const json::value& v, const std::string& where, std::vector<std::pair<std::string, std::string>>& out) {
  if (v.is_object()) {
    for (const auto& [k, child] : v.as_object()) {
      if (k == "$ref" && child.is_string()) out.emplace_back(where, std::string(child.as_string()));
      collect_refs(child, where + "/" + std::string(k), out);
    }
  } else if (v.is_array()) {
    const auto& a = v.as_array();
    for (std::size_t i = 0; i < a.size(); ++i) collect_refs(a[i], where + "/" + std::to_string(i), out);
  }
}

// Follows one level of $ref (parameters may be references to components/parameters).
const json::object* deref(const json::value& doc, const json::value& v) {
  const json::value* at = &v;
  if (at->is_object()) {
    if (const auto* r = at->as_object().if_contains("$ref"); r && r->is_string()) at = resolve_ref(doc, r->as_string());
  }
  return at && at->is_object() ? &at->as_object() : nullptr;
}

std::set<std::string> template_params(const std::string& path) {
  std::set<std::string> out;
  static const std::regex re("\\{([^}/]+)\\}");
  for (std::sregex_iterator it(path.begin(), path.end(), re), end; it != end; ++it) out.insert((*it)[1].str());
  return out;
}

// The security requirements in force for an operation: its own, else the document's.
const json::array* effective_security(const json::object& doc, const Operation& op) {
  if (const auto* s = op.op->if_contains("security")) return s->if_array();
  if (const auto* s = doc.if_contains("security")) return s->if_array();
  return nullptr;
}

bool requires_api_key(const json::array* security) {
  if (!security || security->empty()) return false;
  // Every alternative must name the apiKey scheme (an empty requirement {} would allow anonymous calls).
  for (const auto& req : *security)
    if (!req.is_object() || !req.as_object().contains("apiKey")) return false;
  return true;
}

std::set<std::string> keys_of(const json::object& o) {
  std::set<std::string> out;
  for (const auto& kv : o) out.insert(std::string(kv.key()));
  return out;
}

std::set<std::string> schema_properties(const json::value& doc, std::string_view name) {
  const auto* s = resolve_ref(doc, "#/components/schemas/" + std::string(name));
  std::set<std::string> out;
  if (!s || !s->is_object()) return out;
  auto add = [&](const json::object& o) {
    if (const auto* p = o.if_contains("properties"); p && p->is_object())
      for (const auto& kv : p->as_object()) out.insert(std::string(kv.key()));
  };
  add(s->as_object());
  if (const auto* all = s->as_object().if_contains("allOf"); all && all->is_array())
    for (const auto& part : all->as_array())
      if (const auto* o = deref(doc, part)) add(*o);
  return out;
}

std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& e : s) out += (out.empty() ? "" : ", ") + e;
  return out;
}

}  // namespace

TEST(OpenApi, ServedWithoutKeyAsOpenApi3Json) {
  TestControlPlane cp;
  auto r = cp.client().get(kDocPath, "");
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 500);
  EXPECT_EQ(r.header("content-type").value_or(""), "application/json");
  auto v = r.json();
  ASSERT_TRUE(v.is_object()) << "not JSON: " << r.body.substr(0, 500);
  const auto& doc = v.as_object();
  const auto* version = doc.if_contains("openapi");
  ASSERT_TRUE(version && version->is_string()) << "no \"openapi\" member";
  EXPECT_TRUE(version->as_string().starts_with("3.")) << version->as_string();
  const auto* info = doc.if_contains("info");
  ASSERT_TRUE(info && info->is_object());
  EXPECT_TRUE(info->as_object().contains("title"));
  EXPECT_TRUE(info->as_object().contains("version"));
  ASSERT_TRUE(doc.contains("paths") && doc.at("paths").is_object());
  // The trailing-slash form is the same route (no redirect), and the bytes are the embedded document.
  auto slash = cp.client().get(std::string(kDocPath) + "/", "");
  EXPECT_EQ(slash.status, 200);
  EXPECT_EQ(slash.body, r.body);
  EXPECT_EQ(json::parse(inkwire::controlplane::ControlPlaneApi::openapi_document()), v);
}

TEST(OpenApi, DocumentsExactlyTheRegisteredRoutes) {
  TestControlPlane cp;
  const auto doc = fetch_document(cp);
  const auto registered = registered_routes(cp);
  ASSERT_FALSE(registered.empty());

  std::set<RouteKey> documented;
  for (const auto& op : documented_operations(doc)) documented.emplace(op.method, op.path);

  std::set<RouteKey> undocumented, unregistered;
  for (const auto& r : registered)
    if (!documented.contains(r)) undocumented.insert(r);
  for (const auto& d : documented)
    if (!registered.contains(d)) unregistered.insert(d);
  EXPECT_TRUE(undocumented.empty()) << "registered by the server but missing from openapi.json:"
                                    << describe(undocumented);
  EXPECT_TRUE(unregistered.empty()) << "in openapi.json but not registered by the server:" << describe(unregistered);

  // The router treats a trailing slash as optional, so a documented path must not carry one
  // (it would describe the same route twice, or a route spelled differently from its template).
  if (const auto* paths = doc.if_contains("paths"); paths && paths->is_object())
    for (const auto& kv : paths->as_object()) {
      const std::string_view p = kv.key();
      EXPECT_TRUE(p.starts_with("/")) << p;
      EXPECT_FALSE(p.size() > 1 && p.ends_with("/")) << "documented with a trailing slash: " << p;
    }
}

TEST(OpenApi, OperationsAreCompleteAndReferencesResolve) {
  TestControlPlane cp;
  const auto doc_object = fetch_document(cp);
  const json::value doc(doc_object);
  const auto ops = documented_operations(doc_object);
  ASSERT_FALSE(ops.empty());

  std::map<std::string, std::string> operation_ids;
  static const std::regex status_re("^([1-5][0-9][0-9]|[1-5]XX|default)$");
  for (const auto& op : ops) {
    const std::string where = op.method + " " + op.path;
    const auto* id = op.op->if_contains("operationId");
    if (!id || !id->is_string() || id->as_string().empty()) {
      ADD_FAILURE() << where << ": no operationId";
    } else {
      auto [it, fresh] = operation_ids.emplace(std::string(id->as_string()), where);
      EXPECT_TRUE(fresh) << where << ": operationId " << it->first << " is also used by " << it->second;
    }
    const auto* responses = op.op->if_contains("responses");
    if (!responses || !responses->is_object() || responses->as_object().empty()) {
      ADD_FAILURE() << where << ": no responses";
      continue;
    }
    bool has_success = false;
    for (const auto& [code, response] : responses->as_object()) {
      const std::string c(code);
      EXPECT_TRUE(std::regex_match(c, status_re)) << where << ": bad response key " << c;
      has_success = has_success || c.starts_with("2");
      const auto* r = deref(doc, response);
      ASSERT_NE(r, nullptr) << where << " " << c;
      EXPECT_TRUE(r->contains("description")) << where << " " << c << ": response without description";
      // Every answer of this API has a body (errors are {"detail": ...}).
      EXPECT_TRUE(r->contains("content")) << where << " " << c << ": response without content";
    }
    EXPECT_TRUE(has_success) << where << ": no 2xx response";

    // Path parameters: exactly the {names} of the template, each required.
    std::set<std::string> declared;
    for (const json::object* holder : {op.path_item, op.op}) {
      const auto* params = holder->if_contains("parameters");
      if (!params || !params->is_array()) continue;
      for (const auto& p : params->as_array()) {
        const auto* param = deref(doc, p);
        ASSERT_NE(param, nullptr) << where << ": unresolvable parameter";
        if (param->contains("in") && param->at("in") == "path") {
          declared.insert(std::string(param->at("name").as_string()));
          EXPECT_TRUE(param->contains("required") && param->at("required") == true)
              << where << ": path parameter " << param->at("name") << " must be required";
        }
      }
    }
    EXPECT_EQ(declared, template_params(op.path)) << where << ": path parameters do not match the template";
  }

  std::vector<std::pair<std::string, std::string>> refs;
  collect_refs(doc, "", refs);
  EXPECT_FALSE(refs.empty());
  for (const auto& [where, ref] : refs) {
    EXPECT_TRUE(ref.starts_with("#/components/")) << where << ": $ref " << ref << " is not a local component";
    EXPECT_NE(resolve_ref(doc, ref), nullptr) << where << ": $ref " << ref << " does not resolve";
  }
}

TEST(OpenApi, SecurityMatchesWhatTheServerEnforces) {
  TestControlPlane cp;
  const auto doc = fetch_document(cp);

  const json::value doc_value(doc);
  const auto* scheme = resolve_ref(doc_value, "#/components/securitySchemes/apiKey");
  ASSERT_NE(scheme, nullptr) << "components.securitySchemes.apiKey is missing";
  ASSERT_TRUE(scheme->is_object());
  EXPECT_EQ(scheme->at("type"), "apiKey");
  EXPECT_EQ(scheme->at("in"), "header");
  EXPECT_EQ(lower(std::string(scheme->at("name").as_string())), "x-api-key");
  EXPECT_TRUE(requires_api_key(doc.if_contains("security") ? doc.at("security").if_array() : nullptr))
      << "the document must require the apiKey scheme globally";

  const std::string some_uuid = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
  auto client = cp.client();
  for (const auto& op : documented_operations(doc)) {
    const std::string where = op.method + " " + op.path;
    const bool secured = requires_api_key(effective_security(doc, op));
    const bool should_be_secured = op.path.starts_with("/api/v1/") && op.path != kDocPath;
    EXPECT_EQ(secured, should_be_secured)
        << where << (should_be_secured ? ": must require the apiKey security" : ": must be public (security: [])");
    if (secured) {
      const auto* responses = op.op->if_contains("responses");
      EXPECT_TRUE(responses && responses->is_object() && responses->as_object().contains("401"))
          << where << ": requires a key but does not document 401";
    }

    // And the server agrees: without a key, secured routes answer 401 and public ones do not.
    std::string target = op.path;
    for (const auto& name : template_params(op.path)) {
      const auto pos = target.find("{" + name + "}");
      target.replace(pos, name.size() + 2, some_uuid);
    }
    HttpRequestSpec spec;
    spec.method = op.method;
    spec.target = target;
    auto r = client.send(spec);
    if (secured) {
      EXPECT_EQ(r.status, 401) << where << " without a key: " << r.body.substr(0, 300);
    } else {
      EXPECT_EQ(r.status / 100, 2) << where << " without a key: " << r.body.substr(0, 300);
    }
  }
}

TEST(OpenApi, ResponseSchemasListTheMembersTheServerSends) {
  TestControlPlane cp;
  const json::value doc(fetch_document(cp));
  auto client = cp.client();

  auto created = client.post("/api/v1/tunnels/", cp.admin_key(), R"({"tunnel_name":"schema-check"})");
  ASSERT_EQ(created.status, 201) << created.body;
  const auto body = created.json().as_object();
  EXPECT_EQ(keys_of(body), schema_properties(doc, "CreatedTunnel"));
  EXPECT_EQ(keys_of(body.at("tunnel").as_object()), schema_properties(doc, "Tunnel"))
      << "server sends: " << join(keys_of(body.at("tunnel").as_object()))
      << "\ndocumented: " << join(schema_properties(doc, "Tunnel"));
  // The server always sends every Tunnel member, so the schema requires them all.
  std::set<std::string> required;
  if (const auto* t = resolve_ref(doc, "#/components/schemas/Tunnel"); t && t->as_object().contains("required"))
    for (const auto& n : t->at("required").as_array()) required.insert(std::string(n.as_string()));
  EXPECT_EQ(required, keys_of(body.at("tunnel").as_object()));

  auto key = client.post("/api/v1/api-keys", cp.admin_key(), R"({"scope":"member","description":"schema"})");
  ASSERT_EQ(key.status, 201) << key.body;
  EXPECT_EQ(keys_of(key.json().as_object()), schema_properties(doc, "CreatedApiKey"));

  auto keys = client.get("/api/v1/api-keys", cp.admin_key());
  ASSERT_EQ(keys.status, 200) << keys.body;
  const auto keys_body = keys.json();
  for (const auto& k : keys_body.at("api_keys").as_array())
    EXPECT_EQ(keys_of(k.as_object()), schema_properties(doc, "ApiKey"));

  auto audit = client.get("/api/v1/audit-log?limit=1", cp.admin_key());
  ASSERT_EQ(audit.status, 200) << audit.body;
  const auto audit_body = audit.json();
  EXPECT_EQ(keys_of(audit_body.as_object()), schema_properties(doc, "AuditLogPage"));
  const auto& entries = audit_body.at("entries").as_array();
  ASSERT_FALSE(entries.empty());
  EXPECT_EQ(keys_of(entries[0].as_object()), schema_properties(doc, "AuditEntry"));

  auto missing = client.get("/api/v1/tunnels/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b", cp.admin_key());
  ASSERT_EQ(missing.status, 404);
  EXPECT_EQ(keys_of(missing.json().as_object()), schema_properties(doc, "Error"));
}
