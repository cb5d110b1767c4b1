#pragma once
#include <prometheus/registry.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/config.h"
#include "common/expected.h"
#include "common/logging.h"
#include "common/random_source.h"
#include "controlplane/api/controlplane_api.h"
#include "controlplane/api/http_server.h"
#include "controlplane/ca/certificate_authority.h"
#include "controlplane/repo/pg/pg_access_repository.h"
#include "controlplane/repo/pg/pg_event_publisher.h"
#include "controlplane/repo/pg/pg_listener.h"
#include "controlplane/repo/pg/pg_pool.h"
#include "controlplane/repo/pg/pg_tunnel_repository.h"
#include "controlplane/service/api_key_service.h"
#include "controlplane/service/reaper.h"
#include "controlplane/service/tunnel_service.h"

namespace inkwire::controlplane {

// The controlplane role, assembled: CA, database pool, repositories, services, reaper and the
// REST/metrics listeners. `inkwired serve` and the integration tests build it the same way; the
// tests pass a fake clock.
class ControlPlane {
 public:
  ControlPlane(const Config& config, const Clock& clock, RandomSource& random,
               std::shared_ptr<prometheus::Registry> registry, Logger logger);
  ~ControlPlane();

  // Opens the CA, checks the schema version, binds the listeners and starts accepting and the
  // reaper on `io`. Error: one line.
  Expected<Unit, std::string> start(boost::asio::io_context& io);
  // Graceful: stops accepting and the reaper; busy connections finish their current request.
  void stop();
  // Forced: closes every connection. After stop() + close_all() the io_context runs out of work.
  void close_all();
  int active_connections() const;

  unsigned short api_port() const { return api_server_ ? api_server_->port() : 0; }
  unsigned short metrics_port() const { return metrics_server_ ? metrics_server_->port() : 0; }
  int schema_version() const { return schema_version_; }

  Reaper& reaper() { return *reaper_; }
  PgEventPublisher& event_publisher() { return *events_; }
  ApiKeyService& api_keys() { return *keys_; }
  PgPool& pool() { return pool_; }
  PgAccessRepository& access_repository() { return access_repo_; }
  const Router& api_router() const { return api_router_; }

 private:
  const Config& config_;
  const Clock& clock_;
  RandomSource& random_;
  std::shared_ptr<prometheus::Registry> registry_;
  Logger logger_;
  PgPool pool_;
  PgTunnelRepository tunnel_repo_;
  PgAccessRepository access_repo_;
  std::unique_ptr<PgEventPublisher> events_;
  std::unique_ptr<PgListener> listener_;
  std::unique_ptr<CertificateAuthority> ca_;
  std::unique_ptr<TunnelService> tunnels_;
  std::unique_ptr<ApiKeyService> keys_;
  std::unique_ptr<Reaper> reaper_;
  std::unique_ptr<ControlPlaneApi> api_;
  Router api_router_;
  Router metrics_router_;
  std::unique_ptr<HttpServer> api_server_;
  std::unique_ptr<HttpServer> metrics_server_;
  int schema_version_ = 0;
};

}  // namespace inkwire::controlplane
