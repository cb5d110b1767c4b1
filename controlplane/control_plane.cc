#include "controlplane/control_plane.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>

#include "controlplane/repo/pg/migrator.h"

namespace inkwire::controlplane {

namespace asio = boost::asio;

ControlPlane::ControlPlane(const Config& config, const Clock& clock, RandomSource& random,
                           std::shared_ptr<prometheus::Registry> registry, Logger logger)
    : config_(config),
      clock_(clock),
      random_(random),
      registry_(std::move(registry)),
      logger_(std::move(logger)),
      pool_(config.database.url, config.database.pool_size, config.database.statement_timeout_ms, *registry_, logger_),
      tunnel_repo_(pool_),
      access_repo_(pool_) {}

ControlPlane::~ControlPlane() { pool_.stop(); }

Expected<Unit, std::string> ControlPlane::start(asio::io_context& io) {
  auto ca = CertificateAuthority::open(config_.ca, clock_);
  if (!ca) return unexpected(ca.error());
  ca_ = std::move(*ca);

  Migrator migrator(embedded_migrations());
  auto schema = pool_.run_blocking([&](pqxx::connection& c) { return migrator.check(c); });
  if (!schema)
    return unexpected("cannot reach the database (" + mask_database_url(config_.database.url) +
                      "): " + schema.error().message);
  if (!*schema) return unexpected(schema->error());
  schema_version_ = schema->value();

  events_ = std::make_unique<PgEventPublisher>(pool_, io.get_executor(), *registry_, logger_);
  tunnel_repo_.set_on_commit([this] { events_->poke(); });
  tunnels_ = std::make_unique<TunnelService>(tunnel_repo_, *ca_, config_, clock_, random_, *registry_, logger_);
  keys_ = std::make_unique<ApiKeyService>(access_repo_, config_, clock_, random_, *registry_, logger_);
  reaper_ = std::make_unique<Reaper>(tunnel_repo_, clock_, *registry_, logger_);
  // Revocations made on any node drop the key from this node's authentication cache at once.
  listener_ = std::make_unique<PgListener>(
      config_.database.url,
      std::vector<std::string>{PgAccessRepository::kApiKeyEventsChannel, PgAccessRepository::kOrganizationEventsChannel},
      [this](const std::string& channel, const std::string& payload) {
        // A disabled (or re-enabled) organisation: every cached key answer may be stale.
        if (channel == PgAccessRepository::kOrganizationEventsChannel) {
          keys_->forget_all();
        } else if (auto id = Uuid::parse(payload)) {
          keys_->forget(*id);
        }
      },
      [this] { keys_->forget_all(); }, logger_);
  asio::co_spawn(asio::make_strand(io), listener_->run(), asio::detached);
  api_ = std::make_unique<ControlPlaneApi>(*tunnels_, *keys_, access_repo_, config_, registry_, logger_);

  api_->register_routes(api_router_);
  api_server_ = std::make_unique<HttpServer>(io, config_.api, api_router_, *registry_, logger_, "api");
  if (auto ok = api_server_->listen(config_.api.listen); !ok) return unexpected(ok.error());
  if (!config_.metrics.listen.empty()) {
    api_->register_metrics_routes(metrics_router_);
    metrics_server_ = std::make_unique<HttpServer>(io, config_.api, metrics_router_, *registry_, logger_, "metrics");
    if (auto ok = metrics_server_->listen(config_.metrics.listen); !ok) return unexpected(ok.error());
  }
  api_server_->start();
  if (metrics_server_) metrics_server_->start();
  asio::co_spawn(io, events_->run(std::chrono::seconds(1)), asio::detached);
  asio::co_spawn(io, reaper_->run(std::chrono::seconds(config_.controlplane.reaper_interval_seconds)), asio::detached);
  return Unit{};
}

void ControlPlane::stop() {
  if (reaper_) reaper_->stop();
  if (events_) events_->stop();
  if (listener_) listener_->stop();
  if (api_server_) api_server_->stop();
  if (metrics_server_) metrics_server_->stop();
}

void ControlPlane::close_all() {
  if (api_server_) api_server_->close_all();
  if (metrics_server_) metrics_server_->close_all();
}

int ControlPlane::active_connections() const { return api_server_ ? api_server_->active_connections() : 0; }

}  // namespace inkwire::controlplane
