// The bad-input table: malformed and mistyped JSON, unknown members, names at every boundary, bad
// UUIDs in paths, and HTTP-level limits (413, 415, 431, 400, 404, 405). Every refusal must be
// JSON with a non-empty string "detail" (PROTOCOL.md §2.1).
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "tests/support/api_test_helpers.h"
#include "tests/support/test_control_plane.h"

using namespace inkwire::testing;
using namespace inkwire::testing::api;
namespace json = boost::json;

namespace {

struct Case {
  std::string label;
  std::string method;
  std::string target;                // "{edge}" / "{pt}" stand for the ids of the two fixture tunnels
  std::optional<std::string> body;   // nullopt: no body and no Content-Type
  int status;
  std::string detail_has = {};       // a substring the detail must contain (e.g. the offending member)
  std::string content_type = "application/json";
};

std::string substitute(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) s.replace(pos, from.size(), to);
  return s;
}

// Runs one case and checks status, JSON error shape and detail text.
void run_case(const HttpClient& c, const std::string& key, const Case& k, const std::string& edge_id,
              const std::string& pt_id) {
  SCOPED_TRACE(k.label + " [" + k.method + " " + k.target + "]");
  HttpRequestSpec spec;
  spec.method = k.method;
  spec.target = substitute(substitute(k.target, "{edge}", edge_id), "{pt}", pt_id);
  spec.body = k.body;
  spec.content_type = k.content_type;
  if (!key.empty()) spec.headers.emplace_back("X-API-Key", key);
  auto r = c.send(spec);
  if (k.status >= 400) {
    EXPECT_TRUE(is_json_error(r, k.status));
    if (!k.detail_has.empty()) {
      EXPECT_NE(r.detail().find(k.detail_has), std::string::npos) << "detail: " << r.detail();
    }
  } else {
    EXPECT_EQ(r.status, k.status) << r.body;
    EXPECT_TRUE(r.json().is_object()) << r.body;
  }
}

std::string raw_request(const std::string& method, const std::string& target, const std::string& key,
                        const std::string& extra_headers = "", const std::string& body = "") {
  std::string s = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n";
  if (!key.empty()) s += "X-API-Key: " + key + "\r\n";
  s += extra_headers + "Connection: close\r\n\r\n" + body;
  return s;
}

::testing::AssertionResult raw_is_json_error(const RawResponse& r, int status) {
  if (r.status != status)
    return ::testing::AssertionFailure() << "status " << r.status << " (expected " << status << "): " << r.head;
  if (r.head.find("Content-Type: application/json") == std::string::npos &&
      r.head.find("content-type: application/json") == std::string::npos)
    return ::testing::AssertionFailure() << "not JSON: " << r.head;
  const auto v = r.json();
  if (!v.is_object() || !v.as_object().contains("detail") || !v.at("detail").is_string() ||
      v.at("detail").as_string().empty())
    return ::testing::AssertionFailure() << "no string detail: " << r.body;
  return ::testing::AssertionSuccess();
}

}  // namespace

TEST(BadInput, JsonBodies) {
  TestControlPlane cp;
  auto c = cp.client();
  auto edge = must_create(c, cp.admin_key(), "fixture-edge");
  cp.clock().advance(std::chrono::seconds(1));  // list order is by created_at
  auto pt = must_create(c, cp.admin_key(), "fixture-pt", "passthrough");
  ASSERT_FALSE(HasFailure());

  const std::string T = kTunnelsSlash;
  const std::string P = "/api/v1/tunnels/{edge}";
  const std::string S = "/api/v1/tunnels/{pt}/sign-csr";
  const std::string K = "/api/v1/api-keys";
  const std::vector<Case> cases = {
      // Malformed JSON → 400.
      {"unterminated object", "POST", T, "{", 400},
      {"unterminated string", "POST", T, R"({"tunnel_name":"abc)", 400},
      {"missing brace", "POST", T, R"({"tunnel_name":"abc")", 400},
      {"trailing comma", "POST", T, R"({"tunnel_name":"abc",})", 400},
      {"single quotes", "POST", T, R"({'tunnel_name':'abc'})", 400},
      {"bare word value", "POST", T, R"({"tunnel_name":abc})", 400},
      {"trailing garbage", "POST", T, R"({"tunnel_name":"abc"} x)", 400},
      {"two documents", "POST", T, R"({"tunnel_name":"abc"}{})", 400},
      {"comment", "POST", T, R"({"tunnel_name":"abc" /* hi */})", 400},
      {"malformed on PATCH", "PATCH", P, R"({"description":)", 400},
      {"malformed on sign-csr", "POST", S, "{", 400},
      {"malformed on api-keys", "POST", K, "{", 400},
      {"malformed on rotate-secret", "POST", P + "/rotate-secret", "{", 400},
      // Invalid UTF-8 inside a JSON string → 400.
      {"invalid byte 0xff", "POST", T, "{\"tunnel_name\":\"ab\xff\"}", 400},
      {"bad continuation", "POST", T, "{\"tunnel_name\":\"abc\",\"description\":\"\xc3\x28\"}", 400},
      {"overlong encoding", "POST", T, "{\"tunnel_name\":\"abc\",\"description\":\"\xc0\xaf\"}", 400},
      {"encoded surrogate", "POST", T, "{\"tunnel_name\":\"abc\",\"description\":\"\xed\xa0\x80\"}", 400},
      {"truncated sequence", "POST", T, "{\"tunnel_name\":\"abc\",\"description\":\"\xe2\x82\"}", 400},
      {"invalid UTF-8 in PATCH", "PATCH", P, "{\"description\":\"\xff\xfe\"}", 400},
      {"invalid UTF-8 in metadata", "PATCH", P, "{\"metadata\":{\"k\":\"\x80\"}}", 400},
      {"invalid UTF-8 in a key", "PATCH", P, "{\"metadata\":{\"\xc3\":1}}", 400},
      // JSON that is not an object → 422.
      {"array", "POST", T, "[]", 422},
      {"array of names", "POST", T, R"(["abc"])", 422},
      {"string", "POST", T, R"("abc")", 422},
      {"number", "POST", T, "5", 422},
      {"null", "POST", T, "null", 422},
      {"boolean", "POST", T, "true", 422},
      {"array on PATCH", "PATCH", P, "[]", 422},
      {"null on PATCH", "PATCH", P, "null", 422},
      {"string on sign-csr", "POST", S, R"("-----BEGIN CERTIFICATE REQUEST-----")", 422},
      {"array on api-keys", "POST", K, R"(["member"])", 422},
      {"array on restore", "POST", P + "/restore", "[]", 422},
      // Empty body where a JSON object is required → 422.
      {"no body on create", "POST", T, std::nullopt, 422},
      {"empty body on create", "POST", T, "", 422},
      {"whitespace body on create", "POST", T, " \r\n ", 422},
      // Wrong member types → 422.
      {"tunnel_name number", "POST", T, R"({"tunnel_name":5,"tls_mode":"edge"})", 422, "tunnel_name"},
      {"tunnel_name null", "POST", T, R"({"tunnel_name":null})", 422, "tunnel_name"},
      {"tunnel_name array", "POST", T, R"({"tunnel_name":["abc"]})", 422, "tunnel_name"},
      {"tunnel_name object", "POST", T, R"({"tunnel_name":{"x":1}})", 422, "tunnel_name"},
      {"tls_mode true", "POST", T, R"({"tunnel_name":"abc","tls_mode":true})", 422, "tls_mode"},
      {"tls_mode null", "POST", T, R"({"tunnel_name":"abc","tls_mode":null})", 422, "tls_mode"},
      {"description number", "POST", T, R"({"tunnel_name":"abc","description":7})", 422, "description"},
      {"description object", "POST", T, R"({"tunnel_name":"abc","description":{}})", 422, "description"},
      {"PATCH description number", "PATCH", P, R"({"description":7})", 422, "description"},
      {"PATCH description bool", "PATCH", P, R"({"description":false})", 422, "description"},
      {"PATCH description array", "PATCH", P, R"({"description":["x"]})", 422, "description"},
      {"PATCH metadata string", "PATCH", P, R"({"metadata":"x"})", 422, "metadata"},
      {"PATCH metadata array", "PATCH", P, R"({"metadata":[1]})", 422, "metadata"},
      {"PATCH metadata number", "PATCH", P, R"({"metadata":5})", 422, "metadata"},
      {"PATCH metadata bool", "PATCH", P, R"({"metadata":true})", 422, "metadata"},
      {"csr_pem number", "POST", S, R"({"csr_pem":5})", 422, "csr_pem"},
      {"csr_pem null", "POST", S, R"({"csr_pem":null})", 422, "csr_pem"},
      {"scope number", "POST", K, R"({"scope":5})", 422, "scope"},
      {"api key description number", "POST", K, R"({"scope":"member","description":5})", 422, "description"},
      // Unknown members → 422 naming the member.
      {"unknown member on create", "POST", T, R"({"tunnel_name":"abc","tls_mode":"edge","foo":1})", 422, "foo"},
      {"metadata at create", "POST", T, R"({"tunnel_name":"abc","metadata":{}})", 422, "metadata"},
      {"status at create", "POST", T, R"({"tunnel_name":"abc","status":"active"})", 422, "status"},
      {"member differing in case", "POST", T, R"({"tunnel_name":"abc","Tls_Mode":"edge"})", 422, "Tls_Mode"},
      {"unknown member on PATCH", "PATCH", P, R"({"description":"x","colour":"red"})", 422, "colour"},
      {"tunnel_name on PATCH", "PATCH", P, R"({"tunnel_name":"renamed"})", 422, "tunnel_name"},
      {"tls_mode on PATCH", "PATCH", P, R"({"tls_mode":"passthrough"})", 422, "tls_mode"},
      {"status on PATCH", "PATCH", P, R"({"status":"active"})", 422, "status"},
      {"unknown member on sign-csr", "POST", S, R"({"csr_pem":"x","chain":"y"})", 422, "chain"},
      {"unknown member on api-keys", "POST", K, R"({"scope":"member","expires":1})", 422, "expires"},
      {"unknown member on restore", "POST", P + "/restore", R"({"force":true})", 422, "force"},
      {"unknown member on rotate-secret", "POST", P + "/rotate-secret", R"({"secret":"mine"})", 422, "secret"},
      // Missing required members → 422.
      {"missing tunnel_name", "POST", T, R"({"tls_mode":"edge"})", 422, "tunnel_name"},
      {"empty object on create", "POST", T, "{}", 422, "tunnel_name"},
      {"missing csr_pem", "POST", S, "{}", 422, "csr_pem"},
      {"missing scope", "POST", K, R"({"description":"ci"})", 422, "scope"},
      // Bad enumerations → 422.
      {"tls_mode EDGE", "POST", T, R"({"tunnel_name":"abc","tls_mode":"EDGE"})", 422, "tls_mode"},
      {"tls_mode tcp", "POST", T, R"({"tunnel_name":"abc","tls_mode":"tcp"})", 422, "tls_mode"},
      {"tls_mode empty", "POST", T, R"({"tunnel_name":"abc","tls_mode":""})", 422, "tls_mode"},
      {"tls_mode padded", "POST", T, R"({"tunnel_name":"abc","tls_mode":" edge"})", 422, "tls_mode"},
      {"tls_mode Passthrough", "POST", T, R"({"tunnel_name":"abc","tls_mode":"Passthrough"})", 422, "tls_mode"},
      {"scope root", "POST", K, R"({"scope":"root"})", 422, "scope"},
      {"scope ADMIN", "POST", K, R"({"scope":"ADMIN"})", 422, "scope"},
      // Unparseable CSR → 422.
      {"csr_pem junk", "POST", S, R"({"csr_pem":"junk"})", 422},
      // Bodiless endpoints accept an empty object as well as no body.
      {"rotate-secret with {}", "POST", P + "/rotate-secret", "{}", 200},
      {"rotate-secret with whitespace", "POST", P + "/rotate-secret", " ", 200},
  };
  for (const auto& k : cases) run_case(c, cp.admin_key(), k, str(edge, "id"), str(pt, "id"));

  // Nothing slipped through: still exactly the two fixture tunnels, unchanged apart from rotation.
  auto list = c.get(kTunnelsSlash, cp.admin_key()).json().at("tunnels").as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].at("description"), edge.at("description"));
  EXPECT_EQ(list[0].at("metadata"), edge.at("metadata"));
  EXPECT_EQ(list[1].at("status"), pt.at("status"));
  // Only the fixture keys of acme exist (no key was created by a refused request).
  EXPECT_EQ(c.get("/api/v1/api-keys", cp.admin_key()).json().at("api_keys").as_array().size(), 2u);
}

TEST(BadInput, TunnelNameBoundaries) {
  TestControlPlane cp;
  auto c = cp.client();
  struct Name {
    std::string name;
    int status;
  };
  const std::vector<Name> names = {
      {"", 422},
      {"a", 422},
      {"ab", 422},                       // 2 characters
      {"a1b", 201},                      // 3 characters
      {"007", 201},                      // digits only
      {std::string(63, 'x'), 201},       // 63 characters
      {[] { std::string s; for (int i = 0; i < 31; ++i) s += "a-"; return s + "z"; }(), 201},  // 63, hyphens
      {std::string(64, 'y'), 422},       // 64 characters
      {std::string(200, 'z'), 422},
      {"a--b", 422},
      {"xn--abc", 422},
      {"a-b--c", 422},
      {"-abc", 422},
      {"abc-", 422},
      {"-", 422},
      {"---", 422},
      {"a-b", 201},
      {"my-agent-2", 201},
      {"MyAgent", 422},
      {"myAgent", 422},
      {"ABC", 422},
      {"my_agent", 422},
      {"my.agent", 422},
      {"my agent", 422},
      {" abc", 422},
      {"abc ", 422},
      {"@abc", 422},
      {"caf\xc3\xa9", 422},              // non-ASCII letter
      {"abc\n", 422},
      {"ab/c", 422},
  };
  for (const auto& n : names) {
    SCOPED_TRACE("name '" + n.name + "' (" + std::to_string(n.name.size()) + " bytes)");
    auto r = create_tunnel(c, cp.admin_key(), n.name);
    if (n.status == 201) {
      ASSERT_EQ(r.status, 201) << r.body;
      EXPECT_EQ(str(r.json().at("tunnel"), "tunnel_name"), n.name);
    } else {
      EXPECT_TRUE(is_json_error(r, n.status));
    }
  }
  // The names that passed, and nothing else, exist.
  EXPECT_EQ(c.get(kTunnelsSlash, cp.admin_key()).json().at("tunnels").as_array().size(), 6u);
}

TEST(BadInput, MalformedIdsInPaths) {
  TestControlPlane cp;
  auto c = cp.client();
  auto t = must_create(c, cp.admin_key(), "real-one");
  ASSERT_FALSE(HasFailure());
  const std::string real = str(t, "id");
  std::string no_hyphens = real;
  std::erase(no_hyphens, '-');

  const std::vector<std::string> bad_ids = {
      "not-a-uuid",
      "1234",
      no_hyphens,
      real + "0",
      real.substr(0, 35),
      "{" + real + "}",
      "urn:uuid:" + real,
      "0f0e0d0c-0b0a-4908-8706-05040302010g",  // not hex
      "0f0e0d0c0-b0a-4908-8706-050403020100",  // hyphen misplaced
      "%20",
  };
  struct Route {
    const char* method;
    std::string suffix;
    std::optional<std::string> body;
    std::string prefix = "/api/v1/tunnels/";
  };
  const std::vector<Route> routes = {
      {"GET", "", std::nullopt},
      {"PATCH", "", std::string("{}")},
      {"DELETE", "", std::nullopt},
      {"POST", "/restore", std::nullopt},
      {"DELETE", "/force", std::nullopt},
      {"POST", "/rotate-secret", std::nullopt},
      {"POST", "/sign-csr", std::string(R"({"csr_pem":"x"})")},
      {"DELETE", "", std::nullopt, "/api/v1/api-keys/"},
  };
  for (const auto& route : routes) {
    for (const auto& id : bad_ids) {
      const std::string target = route.prefix + id + route.suffix;
      SCOPED_TRACE(std::string(route.method) + " " + target);
      HttpRequestSpec spec{route.method, target, {{"X-API-Key", cp.admin_key()}}, route.body};
      auto r = c.send(spec);
      EXPECT_TRUE(is_json_error(r, 422));
    }
  }
  // The tunnel is untouched.
  auto got = c.get(tunnel_path(real), cp.admin_key());
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(str(got.json(), "status"), "active");
}

TEST(BadInput, HttpLimitsAndFraming) {
  TestControlPlane cp;
  auto c = cp.client();
  const std::string& admin = cp.admin_key();
  auto t = must_create(c, admin, "framing");
  ASSERT_FALSE(HasFailure());
  const std::string id = str(t, "id");
  const std::string path = tunnel_path(id);

  // Bodies over 64 KiB → 413, refused on Content-Length alone (the body is not even sent here: a
  // client still writing when the server closes would see EPIPE instead of the answer).
  for (const std::uint64_t length : {65537ull, 70ull * 1024, 1ull << 40}) {
    SCOPED_TRACE(length);
    const std::string headers = "Content-Type: application/json\r\nContent-Length: " + std::to_string(length) + "\r\n";
    EXPECT_TRUE(raw_is_json_error(parse_raw_response(c.send_raw(raw_request("POST", kTunnelsSlash, admin, headers))), 413));
    EXPECT_TRUE(raw_is_json_error(parse_raw_response(c.send_raw(raw_request("PATCH", path, admin, headers))), 413));
  }
  {
    // Exactly 64 KiB of JSON, padded with whitespace → accepted.
    std::string at_limit = create_body("at-limit");
    at_limit.insert(at_limit.size() - 1, std::string(65536 - at_limit.size(), ' '));
    ASSERT_EQ(at_limit.size(), 65536u);
    auto ok = c.post(kTunnelsSlash, admin, at_limit);
    EXPECT_EQ(ok.status, 201) << ok.body;

    // Chunked bodies over the limit (no Content-Length to refuse early) → 413 as well: one chunk
    // announcing 70 KiB, and two 40 KiB chunks whose second header crosses the limit. (Only
    // bytes the server reads before refusing are sent, so it never closes on unread data.)
    const std::string chunked_headers = "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n";
    auto one = parse_raw_response(c.send_raw(raw_request("POST", kTunnelsSlash, admin, chunked_headers, "11800\r\n")));
    EXPECT_TRUE(raw_is_json_error(one, 413));
    auto two = parse_raw_response(c.send_raw(
        raw_request("POST", kTunnelsSlash, admin, chunked_headers, "a000\r\n" + std::string(40960, ' ') + "\r\na000\r\n")));
    EXPECT_TRUE(raw_is_json_error(two, 413));
  }

  // Content-Type: a body labelled as anything but JSON → 415; JSON with parameters or in another
  // case is fine.
  {
    const std::string csr = R"({"csr_pem":"x"})";
    struct TypeCase {
      const char* method;
      std::string target;
      std::string body;
      std::string type;
      int status;
    };
    const std::vector<TypeCase> types = {
        {"POST", kTunnelsSlash, create_body("typed-1"), "text/plain", 415},
        {"POST", kTunnelsSlash, create_body("typed-1"), "application/x-www-form-urlencoded", 415},
        {"POST", kTunnelsSlash, create_body("typed-1"), "application/jsonx", 415},
        {"PATCH", path, R"({"description":"x"})", "text/plain", 415},
        {"POST", path + "/sign-csr", csr, "text/plain", 415},
        {"POST", "/api/v1/api-keys", R"({"scope":"member"})", "text/plain; charset=utf-8", 415},
        {"POST", kTunnelsSlash, create_body("typed-2"), "application/json; charset=utf-8", 201},
        {"POST", kTunnelsSlash, create_body("typed-3"), "Application/JSON", 201},
        {"PATCH", path, R"({"description":"typed"})", "application/json;charset=UTF-8", 200},
    };
    for (const auto& k : types) {
      SCOPED_TRACE(std::string(k.method) + " " + k.target + " as " + k.type);
      HttpRequestSpec spec{k.method, k.target, {{"X-API-Key", admin}}, k.body, k.type};
      auto r = c.send(spec);
      if (k.status >= 400) {
        EXPECT_TRUE(is_json_error(r, k.status));
      } else {
        EXPECT_EQ(r.status, k.status) << r.body;
      }
    }
  }

  // Bodiless POSTs exactly as the SDK sends them: no body and no Content-Type.
  {
    auto rotated = c.post(path + "/rotate-secret", admin, std::nullopt);
    EXPECT_EQ(rotated.status, 200) << rotated.body;
    ASSERT_EQ(c.del(path, admin).status, 200);
    auto restored = c.post(path + "/restore", admin, std::nullopt);
    EXPECT_EQ(restored.status, 200) << restored.body;
    // ... and with no Content-Length header either (an HTTP/1.1 request without one has no body).
    auto raw_rotated = parse_raw_response(c.send_raw(raw_request("POST", path + "/rotate-secret", admin)));
    EXPECT_EQ(raw_rotated.status, 200) << raw_rotated.head << "\n" << raw_rotated.body;
    EXPECT_TRUE(raw_rotated.json().is_object());
    ASSERT_EQ(c.del(path, admin).status, 200);
    auto raw_restored = parse_raw_response(c.send_raw(raw_request("POST", path + "/restore", admin)));
    EXPECT_EQ(raw_restored.status, 200) << raw_restored.head << "\n" << raw_restored.body;
    EXPECT_EQ(str(raw_restored.json(), "status"), "active");
  }

  // Header block: just under 16 KiB is served; over it → 431.
  {
    HttpRequestSpec fits{"GET", kTunnelsSlash, {{"X-API-Key", admin}, {"X-Padding", std::string(15 * 1024, 'p')}}};
    EXPECT_EQ(c.send(fits).status, 200);
    HttpRequestSpec huge{"GET", kTunnelsSlash, {{"X-API-Key", admin}, {"X-Padding", std::string(17 * 1024, 'p')}}};
    EXPECT_TRUE(is_json_error(c.send(huge), 431));
    std::string many;
    for (int i = 0; i < 360; ++i) many += "X-H" + std::to_string(i) + ": " + std::string(40, 'h') + "\r\n";
    auto raw = parse_raw_response(c.send_raw(raw_request("GET", kTunnelsSlash, admin, many)));
    EXPECT_TRUE(raw_is_json_error(raw, 431));
  }

  // Malformed requests on the wire → 400 JSON.
  for (const std::string& bytes :
       {std::string("GARBAGE\r\n\r\n"), std::string("GET /api/v1/tunnels/ HTTP/1.1\r\nNoColonHere\r\n\r\n"),
        std::string("GET /api/v1/tunnels/ HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
        std::string("GET /api/v1/tunnels/ HTTX/1.1\r\nHost: x\r\n\r\n")}) {
    SCOPED_TRACE(bytes);
    EXPECT_TRUE(raw_is_json_error(parse_raw_response(c.send_raw(bytes)), 400));
  }

  // Unknown routes → 404 JSON (with or without a key).
  for (const std::string& target : {std::string("/"), std::string("/api/v1/nothing"), std::string("/api/v2/tunnels"),
                                    std::string("/api/v1/tunnel"), path + "/unknown", path + "/restore/extra",
                                    std::string("/api/v1/tunnels//restore")}) {
    SCOPED_TRACE(target);
    EXPECT_TRUE(is_json_error(c.get(target, ""), 404));
    EXPECT_TRUE(is_json_error(c.get(target, admin), 404));
  }

  // Wrong method on a known route → 405 JSON.
  struct MethodCase {
    const char* method;
    std::string target;
  };
  const std::vector<MethodCase> wrong = {
      {"PUT", path},
      {"POST", path},
      {"DELETE", kTunnelsSlash},
      {"PATCH", kTunnels},
      {"GET", path + "/restore"},
      {"GET", path + "/force"},
      {"POST", path + "/force"},
      {"GET", path + "/rotate-secret"},
      {"PATCH", "/api/v1/api-keys"},
      {"GET", "/api/v1/api-keys/" + key_id_of(admin)},
      {"POST", "/api/v1/audit-log"},
      {"POST", "/healthz"},
  };
  for (const auto& w : wrong) {
    SCOPED_TRACE(std::string(w.method) + " " + w.target);
    HttpRequestSpec spec{w.method, w.target, {{"X-API-Key", admin}}, std::nullopt};
    EXPECT_TRUE(is_json_error(c.send(spec), 405));
  }
}

TEST(BadInput, NulCharactersAreRefusedNotTruncated) {
  TestControlPlane cp;
  auto c = cp.client();
  const std::string& admin = cp.admin_key();
  // Either refused with 422, or kept exactly as sent; never silently changed.
  auto faithful_or_422 = [](const HttpResult& r, const boost::json::value& stored, const char* what) {
    SCOPED_TRACE(what);
    if (r.status == 422) {
      EXPECT_TRUE(is_json_error(r, 422));
    } else {
      ASSERT_GE(r.status, 200) << r.body;
      ASSERT_LT(r.status, 300) << r.body;
      EXPECT_EQ(str(stored, "description"), std::string("a\0b", 3)) << "description silently changed";
    }
  };
  auto created = c.post(kTunnelsSlash, admin, R"({"tunnel_name":"nul-desc","description":"a\u0000b"})");
  faithful_or_422(created, created.status == 201 ? c.get(tunnel_path(str(created.json().at("tunnel"), "id")), admin).json()
                                                 : boost::json::value(),
                  "create");
  auto t = must_create(c, admin, "nul-patch");
  ASSERT_TRUE(t.contains("id"));
  auto patched = c.patch(tunnel_path(str(t, "id")), admin, R"({"description":"a\u0000b"})");
  faithful_or_422(patched, c.get(tunnel_path(str(t, "id")), admin).json(), "patch");
  auto key = c.post("/api/v1/api-keys", admin, R"({"scope":"member","description":"a\u0000b"})");
  boost::json::value listed;
  const boost::json::value keys = c.get("/api/v1/api-keys", admin).json();
  for (const auto& k : keys.at("api_keys").as_array())
    if (str(k, "id") == str(key.json(), "id")) listed = k;
  faithful_or_422(key, listed, "api key");
}

TEST(BadInput, MethodNotAllowedNamesAllowedMethods) {
  TestControlPlane cp;
  auto c = cp.client();
  auto t = must_create(c, cp.admin_key(), "allow-me");
  ASSERT_FALSE(HasFailure());
  auto r = c.send({"PUT", tunnel_path(str(t, "id")), {{"X-API-Key", cp.admin_key()}}, std::nullopt});
  ASSERT_TRUE(is_json_error(r, 405));
  const std::string allow = r.header("allow").value_or("");
  for (const char* m : {"GET", "PATCH", "DELETE"}) EXPECT_NE(allow.find(m), std::string::npos) << "Allow: " << allow;
  auto collection = c.send({"DELETE", kTunnelsSlash, {{"X-API-Key", cp.admin_key()}}, std::nullopt});
  ASSERT_TRUE(is_json_error(collection, 405));
  const std::string allow2 = collection.header("allow").value_or("");
  for (const char* m : {"GET", "POST"}) EXPECT_NE(allow2.find(m), std::string::npos) << "Allow: " << allow2;
}
