#pragma once
#include <prometheus/registry.h>

#include <boost/asio/awaitable.hpp>
#include <memory>

#include "common/config.h"
#include "common/logging.h"
#include "controlplane/api/router.h"
#include "controlplane/repo/pg/pg_access_repository.h"
#include "controlplane/service/api_key_service.h"
#include "controlplane/service/tunnel_service.h"

namespace inkwire::controlplane {

// The REST API of PROTOCOL.md §2 plus the admin endpoints (api-keys, audit-log), health, readiness,
// metrics and the OpenAPI document. Registers its routes on a Router; HttpServer serves them.
class ControlPlaneApi {
 public:
  ControlPlaneApi(TunnelService& tunnels, ApiKeyService& keys, PgAccessRepository& access, const Config& config,
                  std::shared_ptr<prometheus::Registry> registry, Logger logger);

  void register_routes(Router& router);
  // /metrics and /healthz only, for a separate metrics listener.
  void register_metrics_routes(Router& router);

  // The OpenAPI 3 document served at /api/v1/openapi.json.
  static const std::string& openapi_document();

 private:
  boost::asio::awaitable<ServiceResult<Caller>> authenticate(RequestContext& ctx);
  // Delete, restore and force-delete share one shape: authenticate, id from the path, no body.
  using TunnelAction = boost::asio::awaitable<ServiceResult<TunnelRecord>> (TunnelService::*)(const Caller&, Uuid);
  boost::asio::awaitable<HttpResponse> tunnel_action(RequestContext& ctx, TunnelAction action);
  HttpResponse tunnel_response(const HttpRequest& req, int status, const TunnelRecord& t) const;

  boost::asio::awaitable<HttpResponse> list_tunnels(RequestContext& ctx);
  boost::asio::awaitable<HttpResponse> create_tunnel(RequestContext& ctx);
  boost::asio::awaitable<HttpResponse> get_tunnel(RequestContext& ctx);
  boost::asio::awaitable<HttpResponse> update_tunnel(RequestContext& ctx);
  boost::asio::awaitable<HttpResponse> delete_tunnel(RequestContext& ctx);
  boost::asio::awaitable<HttpResponse> restore_tunnel(RequestContext& ctx);
  boost::asio::awaitable<HttpResponse> force_delete_tunnel(RequestContext& ctx);
  boost::asio::awaitable<HttpResponse> rotate_secret(RequestContext& ctx);
  boost::asio::awaitable<HttpResponse> sign_csr(RequestContext& ctx);
  boost::asio::awaitable<HttpResponse> list_api_keys(RequestContext& ctx);
  boost::asio::awaitable<HttpResponse> create_api_key(RequestContext& ctx);
  boost::asio::awaitable<HttpResponse> revoke_api_key(RequestContext& ctx);
  boost::asio::awaitable<HttpResponse> list_audit_log(RequestContext& ctx);
  boost::asio::awaitable<HttpResponse> readyz(RequestContext& ctx);
  boost::asio::awaitable<HttpResponse> metrics(RequestContext& ctx);

  TunnelService& tunnels_;
  ApiKeyService& keys_;
  PgAccessRepository& access_;
  const Config& config_;
  std::shared_ptr<prometheus::Registry> registry_;
  Logger logger_;
};

}  // namespace inkwire::controlplane
