#include "controlplane/api/json_codec.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

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

boost::json::object tunnel_to_json(const TunnelView& v) {
  const TunnelRecord& t = v.tunnel;
  boost::json::object o;
  o.reserve(18);
  o["id"] = t.id.to_string();
  o["organization_id"] = t.organization_id.to_string();
  o["tunnel_name"] = t.tunnel_name;
  o["description"] = opt_string(t.description);
  o["tls_mode"] = to_string(t.tls_mode);
  o["cert_pem"] = opt_string(t.cert_pem);
  o["cert_fingerprint_sha256"] = opt_string(t.cert_fingerprint_sha256);
  o["cert_expires_at"] = opt_time(t.cert_expires_at);
  o["status"] = to_string(t.status);
  o["last_connected_at"] = opt_time(t.last_connected_at);
  o["last_connected_ip_addr"] = opt_string(t.last_connected_ip_addr);
  o["restore_deadline_at"] = opt_time(t.restore_deadline_at);
  o["currently_connected"] = t.currently_connected;
  o["public_host"] = v.public_host;
  o["zone"] = v.zone;
  // Stored as the compact text the caller sent (validated as an object when written).
  boost::system::error_code ec;
  auto metadata = boost::json::parse(t.metadata_json, ec);
  o["metadata"] = (!ec && metadata.is_object()) ? std::move(metadata) : boost::json::object{};
  o["created_at"] = format_rfc3339(t.created_at);
  o["updated_at"] = format_rfc3339(t.updated_at);
  return o;
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

ServiceResult<std::optional<std::string>> string_member(const boost::json::object& o, std::string_view name) {
  auto it = o.find(name);
  if (it == o.end()) return std::optional<std::string>{};
  if (!it->value().is_string()) return unexpected(ServiceError{422, "'" + std::string(name) + "' must be a string"});
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
  return R{std::optional<std::string>(std::string(it->value().as_string()))};
}

}  // namespace inkwire::controlplane
