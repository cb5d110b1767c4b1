#include "inkwired/serve_command.h"

#include <prometheus/registry.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <iostream>
#include <thread>

#include "common/logging.h"
#include "common/random_source.h"
#include "controlplane/api/controlplane_api.h"
#include "controlplane/api/http_server.h"
#include "controlplane/ca/certificate_authority.h"
#include "controlplane/repo/pg/migrator.h"
#include "controlplane/service/reaper.h"

namespace inkwire {

namespace asio = boost::asio;
using namespace inkwire::controlplane;

namespace {

int fail(const std::string& message) {
  std::cerr << "inkwired: " << message << "\n";
  return 1;
}

}  // namespace

int run_serve(const Config& config) {
  for (const auto& role : config.roles)
    if (role != "controlplane") return fail("role '" + role + "' is not available in this build yet");

  auto logger = make_logger("inkwired", config.log.level);
  for (const auto& line : describe_config(config)) logger->info("config {}", line);

  SystemClock clock;
  SecureRandom random;
  auto registry = std::make_shared<prometheus::Registry>();

  auto ca = CertificateAuthority::open(config.ca, clock);
  if (!ca) return fail(ca.error());

  PgPool pool(config.database.url, config.database.pool_size, config.database.statement_timeout_ms, *registry, logger);
  Migrator migrator(embedded_migrations());
  auto schema = pool.run_blocking([&](pqxx::connection& c) { return migrator.check(c); });
  if (!schema) return fail("cannot reach the database (" + mask_database_url(config.database.url) + "): " + schema.error().message);
  if (!*schema) return fail(schema->error());

  PgTunnelRepository tunnel_repo(pool);
  PgAccessRepository access_repo(pool);
  TunnelService tunnels(tunnel_repo, **ca, config, clock, random, *registry, logger);
  ApiKeyService keys(access_repo, config, clock, random, *registry, logger);
  Reaper reaper(tunnel_repo, clock, *registry, logger);
  ControlPlaneApi api(tunnels, keys, access_repo, config, registry, logger);

  asio::io_context io(config.api.threads);
  Router api_router;
  api.register_routes(api_router);
  HttpServer api_server(io, config.api, api_router, *registry, logger, "api");
  if (auto ok = api_server.listen(config.api.listen); !ok) return fail(ok.error());

  Router metrics_router;
  api.register_metrics_routes(metrics_router);
  std::optional<HttpServer> metrics_server;
  if (!config.metrics.listen.empty()) {
    metrics_server.emplace(io, config.api, metrics_router, *registry, logger, "metrics");
    if (auto ok = metrics_server->listen(config.metrics.listen); !ok) return fail(ok.error());
  }

  api_server.start();
  if (metrics_server) metrics_server->start();
  asio::co_spawn(io, reaper.run(std::chrono::seconds(config.controlplane.reaper_interval_seconds)), asio::detached);
  logger->info("inkwired serving: api port {}{}, schema version {}", api_server.port(),
               metrics_server ? ", metrics port " + std::to_string(metrics_server->port()) : std::string(),
               schema->value());

  // Graceful, then forced: stop accepting, let connections finish their current request for up
  // to shutdown_grace_seconds, then stop the loop.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    logger->info("signal {}: draining (at most {} s)", signo, config.api.shutdown_grace_seconds);
    api_server.stop();
    if (metrics_server) metrics_server->stop();
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          asio::steady_timer timer(io);
          const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(config.api.shutdown_grace_seconds);
          while (api_server.active_connections() > 0 && std::chrono::steady_clock::now() < deadline) {
            timer.expires_after(std::chrono::milliseconds(50));
            co_await timer.async_wait(asio::use_awaitable);
          }
          if (api_server.active_connections() > 0)
            logger->warn("closing {} connection(s) that outlived the grace period", api_server.active_connections());
          io.stop();
        },
        asio::detached);
  });

  std::vector<std::thread> threads;
  for (int i = 1; i < config.api.threads; ++i) threads.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  pool.stop();
  logger->info("inkwired stopped");
  return 0;
}

}  // namespace inkwire
