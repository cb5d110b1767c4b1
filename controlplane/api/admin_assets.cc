#include "controlplane/api/admin_assets.h"

#include <boost/beast/http/field.hpp>

#include "controlplane/api/http_server.h"

namespace inkwire::controlplane {

namespace http = boost::beast::http;

namespace {

// Everything from our own origin only: no inline script or style, no frames, no plugins, and forms
// never submit anywhere (the dashboard handles them in script, so a key never lands in a URL).
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

void set_security_headers(HttpResponse& res) {
  res.set(http::field::cache_control, "no-cache");
  res.set("Content-Security-Policy", kContentSecurityPolicy);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
}

}  // namespace

std::string_view admin_content_type(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  return "application/octet-stream";
}

HttpResponse admin_asset_response(const HttpRequest& request, std::string_view name) {
  if (name.empty()) name = "index.html";
  for (const auto& asset : embedded_admin_assets()) {
    if (asset.name != name) continue;
    HttpResponse res{http::status::ok, request.version()};
    res.set(http::field::content_type, admin_content_type(name));
    set_security_headers(res);
    res.body().assign(asset.bytes);
    res.keep_alive(request.keep_alive());
    res.prepare_payload();
    return res;
  }
  auto res = json_error(request, 404, "not found");
  set_security_headers(res);
  return res;
}

void register_admin_routes(Router& router) {
  router.add_static("/admin", [](RequestContext& ctx) -> boost::asio::awaitable<HttpResponse> {
    co_return admin_asset_response(ctx.request, ctx.params["asset"]);
  });
}

}  // namespace inkwire::controlplane
