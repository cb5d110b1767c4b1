#include "controlplane/api/controlplane_api.h"

#include <prometheus/text_serializer.h>

#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>

#include "controlplane/api/admin_assets.h"
#include "controlplane/api/http_server.h"
#include "controlplane/api/json_codec.h"

namespace inkwire::controlplane {

namespace http = boost::beast::http;
using boost::asio::awaitable;

const std::string& openapi_text();  // generated from openapi.json

const std::string& ControlPlaneApi::openapi_document() { return openapi_text(); }

namespace {

HttpResponse error_response(const RequestContext& ctx, const ServiceError& e) {
  return json_error(ctx.request, e.status, e.detail);
}

HttpResponse object_response(const RequestContext& ctx, int status, const boost::json::object& o) {
  return json_response(ctx.request, status, boost::json::serialize(o));
}

ServiceResult<Uuid> path_uuid(const RequestContext& ctx, std::string_view what) {
  auto it = ctx.params.find("id");
  auto id = it == ctx.params.end() ? std::nullopt : Uuid::parse(it->second);
  if (!id) return unexpected(ServiceError{422, std::string(what) + " id in the path must be a UUID"});
  return *id;
}

// Query parameter value (no percent-decoding needed: the audit-log parameters are numbers).
std::optional<std::string_view> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::optional<std::int64_t> parse_int(std::string_view s) {
  std::int64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// A JSON body must be labelled as JSON when it is labelled at all (bodiless POSTs carry no type).
ServiceResult<Unit> check_content_type(const RequestContext& ctx) {
  const auto type = ctx.request[http::field::content_type];
  if (type.empty() || ctx.request.body().empty()) return Unit{};
  const auto semi = type.find(';');
  auto base = type.substr(0, semi);
  while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
  if (!boost::beast::iequals(base, "application/json"))
    return unexpected(ServiceError{415, "Content-Type must be application/json"});
  return Unit{};
}

// A JSON object body: labelled as JSON (when labelled), parseable, with only `allowed` members.
ServiceResult<boost::json::object> json_body(const RequestContext& ctx, std::initializer_list<std::string_view> allowed) {
  if (auto ok = check_content_type(ctx); !ok) return unexpected(ok.error());
  auto body = parse_object_body(ctx.request.body(), false);
  if (!body) return body;
  if (auto ok = only_members(*body, allowed); !ok) return unexpected(ok.error());
  return body;
}

// Endpoints that take no body (restore, rotate-secret, …) accept none, or an empty object.
ServiceResult<Unit> expect_no_body(const RequestContext& ctx) {
  if (auto ok = check_content_type(ctx); !ok) return ok;
  auto body = parse_object_body(ctx.request.body(), true);
  if (!body) return unexpected(body.error());
  return only_members(*body, {});
}

}  // namespace

ControlPlaneApi::ControlPlaneApi(TunnelService& tunnels, ApiKeyService& keys, PgAccessRepository& access,
                                 const Config& config, std::shared_ptr<prometheus::Registry> registry, Logger logger)
    : tunnels_(tunnels),
      keys_(keys),
      access_(access),
      config_(config),
      registry_(std::move(registry)),
      logger_(std::move(logger)) {}

void ControlPlaneApi::register_routes(Router& r) {
  auto bind = [this](awaitable<HttpResponse> (ControlPlaneApi::*fn)(RequestContext&)) -> Handler {
    return [this, fn](RequestContext& ctx) { return (this->*fn)(ctx); };
  };
  using V = http::verb;
  r.add(V::get, "/healthz", [](RequestContext& ctx) -> awaitable<HttpResponse> {
    co_return json_response(ctx.request, 200, R"({"status":"ok"})");
  });
  r.add(V::get, "/readyz", bind(&ControlPlaneApi::readyz));
  r.add(V::get, "/metrics", bind(&ControlPlaneApi::metrics));
  r.add(V::get, "/api/v1/openapi.json", [](RequestContext& ctx) -> awaitable<HttpResponse> {
    co_return json_response(ctx.request, 200, openapi_document());
  });
  r.add(V::get, "/api/v1/tunnels", bind(&ControlPlaneApi::list_tunnels));
  r.add(V::post, "/api/v1/tunnels", bind(&ControlPlaneApi::create_tunnel));
  r.add(V::get, "/api/v1/tunnels/{id}", bind(&ControlPlaneApi::get_tunnel));
  r.add(V::patch, "/api/v1/tunnels/{id}", bind(&ControlPlaneApi::update_tunnel));
  r.add(V::delete_, "/api/v1/tunnels/{id}", bind(&ControlPlaneApi::delete_tunnel));
  r.add(V::post, "/api/v1/tunnels/{id}/restore", bind(&ControlPlaneApi::restore_tunnel));
  r.add(V::delete_, "/api/v1/tunnels/{id}/force", bind(&ControlPlaneApi::force_delete_tunnel));
  r.add(V::post, "/api/v1/tunnels/{id}/rotate-secret", bind(&ControlPlaneApi::rotate_secret));
  r.add(V::post, "/api/v1/tunnels/{id}/sign-csr", bind(&ControlPlaneApi::sign_csr));
  r.add(V::get, "/api/v1/api-keys", bind(&ControlPlaneApi::list_api_keys));
  r.add(V::post, "/api/v1/api-keys", bind(&ControlPlaneApi::create_api_key));
  r.add(V::delete_, "/api/v1/api-keys/{id}", bind(&ControlPlaneApi::revoke_api_key));
  r.add(V::get, "/api/v1/audit-log", bind(&ControlPlaneApi::list_audit_log));
  register_admin_routes(r);  // the dashboard at /admin/ (static; its data calls use the routes above)
}

void ControlPlaneApi::register_metrics_routes(Router& r) {
  r.add(http::verb::get, "/metrics", [this](RequestContext& ctx) { return metrics(ctx); });
  r.add(http::verb::get, "/healthz", [](RequestContext& ctx) -> awaitable<HttpResponse> {
    co_return json_response(ctx.request, 200, R"({"status":"ok"})");
  });
}

awaitable<ServiceResult<Caller>> ControlPlaneApi::authenticate(RequestContext& ctx) {
  const auto key = ctx.request["X-API-Key"];
  co_return co_await keys_.authenticate(key, ctx.source_ip);
}

HttpResponse ControlPlaneApi::tunnel_response(const HttpRequest& req, int status, const TunnelRecord& t) const {
  const std::string host = tunnels_.public_host(t);
  std::string body;
  append_tunnel_json(body, {t, host, tunnels_.data_plane_host()});
  return json_response(req, status, std::move(body));
}

awaitable<HttpResponse> ControlPlaneApi::list_tunnels(RequestContext& ctx) {
  auto caller = co_await authenticate(ctx);
  if (!caller) co_return error_response(ctx, caller.error());
  auto list = co_await tunnels_.list(*caller);
  if (!list) co_return error_response(ctx, list.error());
  std::string body;
  body.reserve(64 + list->size() * 720);
  body.append("{\"tunnels\":[");
  std::string host;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const auto& t = (*list)[i];
    if (i > 0) body.push_back(',');
    host = tunnels_.public_host(t);
    append_tunnel_json(body, {t, host, tunnels_.data_plane_host()});
  }
  body.append("]}");
  co_return json_response(ctx.request, 200, std::move(body));
}

awaitable<HttpResponse> ControlPlaneApi::create_tunnel(RequestContext& ctx) {
  auto caller = co_await authenticate(ctx);
  if (!caller) co_return error_response(ctx, caller.error());
  auto body = json_body(ctx, {"tunnel_name", "tls_mode", "description"});
  if (!body) co_return error_response(ctx, body.error());
  auto name = string_member(*body, "tunnel_name");
  if (!name) co_return error_response(ctx, name.error());
  if (!*name) co_return error_response(ctx, {422, "'tunnel_name' is required"});
  auto mode_text = string_member(*body, "tls_mode");
  if (!mode_text) co_return error_response(ctx, mode_text.error());
  auto mode = parse_tls_mode(mode_text->value_or("edge"));
  if (!mode) co_return error_response(ctx, {422, "'tls_mode' must be \"edge\" or \"passthrough\""});
  auto description = nullable_string_member(*body, "description");
  if (!description) co_return error_response(ctx, description.error());

  CreateTunnelInput input{std::move(**name), *mode, description->value_or(std::nullopt)};
  auto created = co_await tunnels_.create(*caller, std::move(input));
  if (!created) co_return error_response(ctx, created.error());
  const std::string host = tunnels_.public_host(created->tunnel);
  std::string out = "{\"tunnel\":";
  append_tunnel_json(out, {created->tunnel, host, tunnels_.data_plane_host()});
  out.append(",\"connect_secret\":");
  append_json_string(out, created->connect_secret);
  out.push_back('}');
  co_return json_response(ctx.request, 201, std::move(out));
}

awaitable<HttpResponse> ControlPlaneApi::get_tunnel(RequestContext& ctx) {
  auto caller = co_await authenticate(ctx);
  if (!caller) co_return error_response(ctx, caller.error());
  auto id = path_uuid(ctx, "tunnel");
  if (!id) co_return error_response(ctx, id.error());
  auto t = co_await tunnels_.get(*caller, *id);
  if (!t) co_return error_response(ctx, t.error());
  co_return tunnel_response(ctx.request, 200, *t);
}

awaitable<HttpResponse> ControlPlaneApi::update_tunnel(RequestContext& ctx) {
  auto caller = co_await authenticate(ctx);
  if (!caller) co_return error_response(ctx, caller.error());
  auto id = path_uuid(ctx, "tunnel");
  if (!id) co_return error_response(ctx, id.error());
  auto body = json_body(ctx, {"description", "metadata"});
  if (!body) co_return error_response(ctx, body.error());
  TunnelPatch patch;
  auto description = nullable_string_member(*body, "description");
  if (!description) co_return error_response(ctx, description.error());
  patch.description = std::move(*description);
  if (auto it = body->find("metadata"); it != body->end()) {
    // An object replaces the metadata; {} or null clear it (PROTOCOL.md §2.5.4).
    if (it->value().is_null()) {
      patch.metadata_json = "{}";
    } else if (it->value().is_object()) {
      patch.metadata_json = boost::json::serialize(it->value());
    } else {
      co_return error_response(ctx, {422, "'metadata' must be a JSON object or null"});
    }
  }
  auto t = co_await tunnels_.update(*caller, *id, std::move(patch));
  if (!t) co_return error_response(ctx, t.error());
  co_return tunnel_response(ctx.request, 200, *t);
}

awaitable<HttpResponse> ControlPlaneApi::tunnel_action(RequestContext& ctx, TunnelAction action) {
  auto caller = co_await authenticate(ctx);
  if (!caller) co_return error_response(ctx, caller.error());
  auto id = path_uuid(ctx, "tunnel");
  if (!id) co_return error_response(ctx, id.error());
  if (auto ok = expect_no_body(ctx); !ok) co_return error_response(ctx, ok.error());
  auto t = co_await (tunnels_.*action)(*caller, *id);
  if (!t) co_return error_response(ctx, t.error());
  co_return tunnel_response(ctx.request, 200, *t);
}

awaitable<HttpResponse> ControlPlaneApi::delete_tunnel(RequestContext& ctx) {
  co_return co_await tunnel_action(ctx, &TunnelService::remove);
}

awaitable<HttpResponse> ControlPlaneApi::restore_tunnel(RequestContext& ctx) {
  co_return co_await tunnel_action(ctx, &TunnelService::restore);
}

awaitable<HttpResponse> ControlPlaneApi::force_delete_tunnel(RequestContext& ctx) {
  co_return co_await tunnel_action(ctx, &TunnelService::force_delete);
}

awaitable<HttpResponse> ControlPlaneApi::rotate_secret(RequestContext& ctx) {
  auto caller = co_await authenticate(ctx);
  if (!caller) co_return error_response(ctx, caller.error());
  auto id = path_uuid(ctx, "tunnel");
  if (!id) co_return error_response(ctx, id.error());
  if (auto ok = expect_no_body(ctx); !ok) co_return error_response(ctx, ok.error());
  auto secret = co_await tunnels_.rotate_secret(*caller, *id);
  if (!secret) co_return error_response(ctx, secret.error());
  boost::json::object o;
  o["connect_secret"] = *secret;
  co_return object_response(ctx, 200, o);
}

awaitable<HttpResponse> ControlPlaneApi::sign_csr(RequestContext& ctx) {
  auto caller = co_await authenticate(ctx);
  if (!caller) co_return error_response(ctx, caller.error());
  auto id = path_uuid(ctx, "tunnel");
  if (!id) co_return error_response(ctx, id.error());
  auto body = json_body(ctx, {"csr_pem"});
  if (!body) co_return error_response(ctx, body.error());
  auto csr = string_member(*body, "csr_pem");
  if (!csr) co_return error_response(ctx, csr.error());
  if (!*csr) co_return error_response(ctx, {422, "'csr_pem' is required"});
  auto signed_cert = co_await tunnels_.sign_csr(*caller, *id, std::move(**csr));
  if (!signed_cert) co_return error_response(ctx, signed_cert.error());
  co_return object_response(ctx, 200, signed_cert_to_json(*signed_cert));
}

awaitable<HttpResponse> ControlPlaneApi::list_api_keys(RequestContext& ctx) {
  auto caller = co_await authenticate(ctx);
  if (!caller) co_return error_response(ctx, caller.error());
  auto keys = co_await keys_.list(*caller);
  if (!keys) co_return error_response(ctx, keys.error());
  boost::json::array arr;
  for (const auto& k : *keys) arr.emplace_back(api_key_to_json(k));
  boost::json::object o;
  o["api_keys"] = std::move(arr);
  co_return object_response(ctx, 200, o);
}

awaitable<HttpResponse> ControlPlaneApi::create_api_key(RequestContext& ctx) {
  auto caller = co_await authenticate(ctx);
  if (!caller) co_return error_response(ctx, caller.error());
  auto body = json_body(ctx, {"scope", "description"});
  if (!body) co_return error_response(ctx, body.error());
  auto scope_text = string_member(*body, "scope");
  if (!scope_text) co_return error_response(ctx, scope_text.error());
  auto scope = parse_key_scope(scope_text->value_or(""));
  if (!scope) co_return error_response(ctx, {422, "'scope' must be \"admin\" or \"member\""});
  auto description = nullable_string_member(*body, "description");
  if (!description) co_return error_response(ctx, description.error());
  auto created = co_await keys_.create(*caller, *scope, description->value_or(std::nullopt));
  if (!created) co_return error_response(ctx, created.error());
  boost::json::object o = api_key_to_json(created->record);
  o["api_key"] = created->api_key;  // shown once
  co_return object_response(ctx, 201, o);
}

awaitable<HttpResponse> ControlPlaneApi::revoke_api_key(RequestContext& ctx) {
  auto caller = co_await authenticate(ctx);
  if (!caller) co_return error_response(ctx, caller.error());
  auto id = path_uuid(ctx, "api key");
  if (!id) co_return error_response(ctx, id.error());
  if (auto ok = expect_no_body(ctx); !ok) co_return error_response(ctx, ok.error());
  auto r = co_await keys_.revoke(*caller, *id);
  if (!r) co_return error_response(ctx, r.error());
  co_return json_response(ctx.request, 200, R"({"revoked":true})");
}

awaitable<HttpResponse> ControlPlaneApi::list_audit_log(RequestContext& ctx) {
  auto caller = co_await authenticate(ctx);
  if (!caller) co_return error_response(ctx, caller.error());
  if (!caller->is_admin()) co_return error_response(ctx, {403, "the audit log requires an admin-scoped API key"});
  const int page_max = config_.controlplane.audit_log_page_max;
  int limit = std::min(100, page_max);
  if (auto v = query_param(ctx.query, "limit")) {
    auto n = parse_int(*v);
    if (!n || *n < 1 || *n > page_max)
      co_return error_response(ctx, {422, "'limit' must be an integer from 1 to " + std::to_string(page_max)});
    limit = static_cast<int>(*n);
  }
  std::optional<std::int64_t> before;
  if (auto v = query_param(ctx.query, "before")) {
    before = parse_int(*v);
    if (!before || *before < 1) co_return error_response(ctx, {422, "'before' must be a positive integer"});
  }
  auto entries = co_await access_.list_audit(caller->organization_id, before, limit);
  if (!entries) co_return error_response(ctx, unavailable());
  boost::json::array arr;
  for (const auto& e : *entries) arr.emplace_back(audit_to_json(e));
  boost::json::object o;
  o["entries"] = std::move(arr);
  // Pass next_before as ?before= to read the following (older) page; null at the end.
  o["next_before"] = static_cast<int>(entries->size()) == limit ? boost::json::value(entries->back().id) : nullptr;
  co_return object_response(ctx, 200, o);
}

awaitable<HttpResponse> ControlPlaneApi::readyz(RequestContext& ctx) {
  auto ok = co_await access_.ping();
  if (!ok) co_return json_error(ctx.request, 503, "database unavailable");
  co_return json_response(ctx.request, 200, R"({"status":"ready"})");
}

awaitable<HttpResponse> ControlPlaneApi::metrics(RequestContext& ctx) {
  prometheus::TextSerializer serializer;
  HttpResponse res{http::status::ok, ctx.request.version()};
  res.set(http::field::content_type, "text/plain; version=0.0.4");
  res.body() = serializer.Serialize(registry_->Collect());
  res.keep_alive(ctx.request.keep_alive());
  res.prepare_payload();
  co_return res;
}

}  // namespace inkwire::controlplane
