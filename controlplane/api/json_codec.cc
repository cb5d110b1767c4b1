#include "controlplane/api/json_codec.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "common/encoding.h"
#include "common/time_format.h"

namespace inkwire::controlplane {
namespace {

boost::json::value opt_string(const std::optional<std::string>& s) {
  if (!s) return nullptr;
  return boost::json::value(*s);
}

boost::json::value opt_time(const std::optional<Timestamp>& t) {
  if (!t) return nullptr;
  return boost::json::value(format_rfc3339(*t));
}

}  // namespace

namespace {

void member(std::string& out, std::string_view name) {
  out.push_back(',');
  out.push_back('"');
  out.append(name);
  out.append("\":");
}

void opt_string_member(std::string& out, std::string_view name, const std::optional<std::string>& v) {
  member(out, name);
  if (v) append_json_string(out, *v); else out.append("null");
}

void opt_time_member(std::string& out, std::string_view name, const std::optional<Timestamp>& v) {
  member(out, name);
  if (v) append_json_string(out, format_rfc3339(*v)); else out.append("null");
}

}  // namespace

void append_tunnel_json(std::string& out, const TunnelView& v) {
  const TunnelRecord& t = v.tunnel;
  out.append("{\"id\":\"");
  out.append(t.id.to_string());
  out.append("\",\"organization_id\":\"");
  out.append(t.organization_id.to_string());
  out.push_back('"');
  member(out, "tunnel_name");
  append_json_string(out, t.tunnel_name);
  opt_string_member(out, "description", t.description);
  member(out, "tls_mode");
  append_json_string(out, to_string(t.tls_mode));
  opt_string_member(out, "cert_pem", t.cert_pem);
  opt_string_member(out, "cert_fingerprint_sha256", t.cert_fingerprint_sha256);
  opt_time_member(out, "cert_expires_at", t.cert_expires_at);
  member(out, "status");
  append_json_string(out, to_string(t.status));
  opt_time_member(out, "last_connected_at", t.last_connected_at);
  opt_string_member(out, "last_connected_ip_addr", t.last_connected_ip_addr);
  opt_time_member(out, "restore_deadline_at", t.restore_deadline_at);
  member(out, "currently_connected");
  out.append(t.currently_connected ? "true" : "false");
  member(out, "public_host");
  append_json_string(out, v.public_host);
  member(out, "zone");
  append_json_string(out, v.zone);
  // Stored as the compact JSON text of an object, validated when it was written.
  member(out, "metadata");
  out.append(t.metadata_json.empty() ? std::string_view("{}") : std::string_view(t.metadata_json));
  member(out, "created_at");
  append_json_string(out, format_rfc3339(t.created_at));
  member(out, "updated_at");
  append_json_string(out, format_rfc3339(t.updated_at));
  out.push_back('}');
}

boost::json::object api_key_to_json(const ApiKeyRecord& k) {
  boost::json::object o;
  o["id"] = k.id.to_string();
  o["organization_id"] = k.organization_id.to_string();
  o["display_prefix"] = "ApiKey_" + k.id.to_string();
  o["scope"] = to_string(k.scope);
  o["description"] = opt_string(k.description);
  o["created_at"] = format_rfc3339(k.created_at);
  o["revoked_at"] = opt_time(k.revoked_at);
  return o;
}

boost::json::object audit_to_json(const AuditRecord& a) {
  boost::json::object o;
  o["id"] = a.id;
  o["at"] = format_rfc3339(a.at);
  o["organization_id"] = a.organization_id ? boost::json::value(a.organization_id->to_string()) : nullptr;
  o["api_key_id"] = a.api_key_id ? boost::json::value(a.api_key_id->to_string()) : nullptr;
  o["action"] = a.action;
  o["tunnel_id"] = a.tunnel_id ? boost::json::value(a.tunnel_id->to_string()) : nullptr;
  o["source_ip"] = opt_string(a.source_ip);
  o["detail"] = opt_string(a.detail);
  return o;
}

boost::json::object signed_cert_to_json(const IssuedCertificate& c) {
  boost::json::object o;
  o["cert_pem"] = c.cert_pem;
  o["chain_pem"] = c.chain_pem;
  o["cert_fingerprint_sha256"] = c.fingerprint_sha256;
  o["cert_expires_at"] = format_rfc3339(c.not_after);
  return o;
}

ServiceResult<boost::json::object> parse_object_body(std::string_view body, bool empty_ok) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    if (empty_ok) return boost::json::object{};
    return unexpected(ServiceError{422, "request body must be a JSON object"});
  }
  boost::json::parse_options options;
  options.max_depth = 32;  // metadata is free-form; nesting beyond this is refused, not recursed into
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec, {}, options);
  if (ec) return unexpected(ServiceError{400, "request body is not valid JSON: " + ec.message()});
  if (!v.is_object()) return unexpected(ServiceError{422, "request body must be a JSON object"});
  return std::move(v.as_object());
}

ServiceResult<Unit> only_members(const boost::json::object& o, std::initializer_list<std::string_view> allowed) {
  for (const auto& kv : o) {
    bool ok = false;
    for (auto a : allowed) ok = ok || kv.key() == a;
    if (!ok) return unexpected(ServiceError{422, "unknown member '" + std::string(kv.key()) + "'"});
  }
  return Unit{};
}

namespace {
// PostgreSQL text cannot hold NUL, and libpq would cut the value there: refuse rather than truncate.
ServiceResult<Unit> no_nul(const boost::json::string& s, std::string_view name) {
  if (std::string_view(s).find('\0') != std::string_view::npos)
    return unexpected(ServiceError{422, "'" + std::string(name) + "' must not contain NUL characters"});
  return Unit{};
}
}  // namespace

ServiceResult<std::optional<std::string>> string_member(const boost::json::object& o, std::string_view name) {
  auto it = o.find(name);
  if (it == o.end()) return std::optional<std::string>{};
  if (!it->value().is_string()) return unexpected(ServiceError{422, "'" + std::string(name) + "' must be a string"});
  if (auto ok = no_nul(it->value().as_string(), name); !ok) return unexpected(ok.error());
  return std::optional<std::string>(std::string(it->value().as_string()));
}

ServiceResult<std::optional<std::optional<std::string>>> nullable_string_member(const boost::json::object& o,
                                                                                std::string_view name) {
  using R = std::optional<std::optional<std::string>>;
  auto it = o.find(name);
  if (it == o.end()) return R{};
  if (it->value().is_null()) return R{std::optional<std::string>{}};
  if (!it->value().is_string())
    return unexpected(ServiceError{422, "'" + std::string(name) + "' must be a string or null"});
  if (auto ok = no_nul(it->value().as_string(), name); !ok) return unexpected(ok.error());
  return R{std::optional<std::string>(std::string(it->value().as_string()))};
}

}  // namespace inkwire::controlplane
