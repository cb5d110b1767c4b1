#include "inkwired/serve_command.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <iostream>
#include <memory>
#include <functional>
#include <thread>

#include "common/logging.h"
#include "common/random_source.h"
#include "controlplane/api/http_server.h"
#include "controlplane/api/router.h"
#include "controlplane/control_plane.h"
#include "edge/edge.h"
#include "relay/relay.h"

namespace inkwire {

namespace asio = boost::asio;

int run_serve(const Config& config) {
  auto logger = make_logger("inkwired", config.log.level);
  for (const auto& line : describe_config(config)) logger->info("config {}", line);

  SystemClock clock;
  SecureRandom random;
  auto registry = std::make_shared<prometheus::Registry>();
  // The control plane (REST, blocking database work handed to its pool) gets api.threads; the
  // data plane runs on one thread of its own, so its state needs no locks (relay/relay.h).
  asio::io_context io(config.api.threads);
  asio::io_context relay_io(1);
  // The relay's context must outlive a SIGUSR1 drain (which leaves it with nothing to do) so that
  // SIGTERM can still reach it; released once the relay has shut down.
  auto relay_work = asio::make_work_guard(relay_io);

  std::unique_ptr<controlplane::ControlPlane> control_plane;
  if (config.has_role("controlplane")) {
    control_plane = std::make_unique<controlplane::ControlPlane>(config, clock, random, registry, logger);
    if (auto ok = control_plane->start(io); !ok) {
      std::cerr << "inkwired: " << ok.error() << "\n";
      return 1;
    }
    logger->info("inkwired control plane: api port {}{}, schema version {}", control_plane->api_port(),
                 control_plane->metrics_port() ? ", metrics port " + std::to_string(control_plane->metrics_port()) : "",
                 control_plane->schema_version());
  }
  std::unique_ptr<relay::Relay> relay;
  if (config.has_role("relay")) {
    relay = std::make_unique<relay::Relay>(config, clock, random, *registry, logger);
    if (auto ok = relay->start(relay_io); !ok) {
      std::cerr << "inkwired: " << ok.error() << "\n";
      return 1;
    }
    if (relay->port() != 0) logger->info("inkwired relay: agents on port {}", relay->port());
  }
  // The edge shares the relay's thread: requests reach the relay's seam without a thread hop.
  std::unique_ptr<edge::Edge> edge;
  if (config.has_role("edge")) {
    edge = std::make_unique<edge::Edge>(config, *relay, clock, *registry, logger);
    if (auto ok = edge->start(relay_io); !ok) {
      std::cerr << "inkwired: " << ok.error() << "\n";
      return 1;
    }
    logger->info("inkwired edge: https port {} (agents and third parties, by SNI){}", edge->https_port(),
                 edge->http_port() ? ", http port " + std::to_string(edge->http_port()) : "");
  }
  // SIGHUP: the edge reloads the zone certificate (it also notices changed files by itself).
  asio::signal_set reload_signal(io, SIGHUP);
  std::function<void()> wait_for_reload_signal = [&] {
    reload_signal.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      if (edge) {
        logger->info("SIGHUP: reloading the zone certificate");
        edge->reload_certificates();
      }
      wait_for_reload_signal();
    });
  };
  wait_for_reload_signal();

  // A node without the control plane still serves /metrics and /healthz for its operator.
  controlplane::Router metrics_router;
  std::unique_ptr<controlplane::HttpServer> metrics_server;
  if (!control_plane && !config.metrics.listen.empty()) {
    namespace http = boost::beast::http;
    metrics_router.add(http::verb::get, "/metrics",
                       [&registry](controlplane::RequestContext& ctx) -> asio::awaitable<controlplane::HttpResponse> {
                         prometheus::TextSerializer serializer;
                         controlplane::HttpResponse res{http::status::ok, ctx.request.version()};
                         res.set(http::field::content_type, "text/plain; version=0.0.4");
                         res.body() = serializer.Serialize(registry->Collect());
                         res.keep_alive(ctx.request.keep_alive());
                         res.prepare_payload();
                         co_return res;
                       });
    metrics_router.add(http::verb::get, "/healthz",
                       [](controlplane::RequestContext& ctx) -> asio::awaitable<controlplane::HttpResponse> {
                         co_return controlplane::json_response(ctx.request, 200, R"({"status":"ok"})");
                       });
    metrics_server = std::make_unique<controlplane::HttpServer>(io, config.api, metrics_router, *registry, logger,
                                                                "metrics");
    if (auto ok = metrics_server->listen(config.metrics.listen); !ok) {
      std::cerr << "inkwired: " << ok.error() << "\n";
      return 1;
    }
    metrics_server->start();
    logger->info("inkwired metrics on port {}", metrics_server->port());
  }

  // Graceful, then forced: stop accepting; API connections finish their current request within
  // api.shutdown_grace_seconds; agent sessions finish posts and bridges within
  // relay.drain_timeout_seconds and get GOAWAY; then whatever is left is closed. No io.stop():
  // every coroutine ends on its own.
  // SIGUSR1 (the operator's drain request): the relay drains as on SIGTERM — no new agents,
  // in-flight posts and bridges finish, then GOAWAY — but the process and the control plane stay up,
  // so agents move to another relay before maintenance. SIGTERM still ends the process afterwards.
  asio::signal_set drain_signal(io, SIGUSR1);
  std::function<void()> wait_for_drain_signal = [&] {
    drain_signal.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      if (relay) {
        logger->info("SIGUSR1: draining the relay's agent sessions (the process keeps running)");
        asio::post(relay_io, [&] { relay->begin_drain(); });
      }
      wait_for_drain_signal();
    });
  };
  wait_for_drain_signal();

  std::atomic<bool> relay_drained{relay == nullptr};
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    logger->info("signal {}: draining", signo);
    drain_signal.cancel();
    reload_signal.cancel();
    if (control_plane) control_plane->stop();
    if (metrics_server) {
      metrics_server->stop();
      metrics_server->close_all();
    }
    if (relay) {
      asio::post(relay_io, [&] {
        if (edge) edge->begin_drain();
        relay->begin_drain();
        asio::co_spawn(
            relay_io,
            [&]() -> asio::awaitable<void> {
              asio::steady_timer timer(relay_io);
              // Sessions close themselves within the drain timeout plus the 1 s GOAWAY close.
              const auto deadline = std::chrono::steady_clock::now() +
                                    std::chrono::seconds(config.relay.drain_timeout_seconds + 2);
              // Public requests in flight finish within edge.shutdown_grace_seconds.
              const auto edge_deadline = std::chrono::steady_clock::now() +
                                         std::chrono::seconds(config.edge.shutdown_grace_seconds);
              while (edge && edge->open_connections() > 0 && std::chrono::steady_clock::now() < edge_deadline) {
                timer.expires_after(std::chrono::milliseconds(50));
                co_await timer.async_wait(asio::use_awaitable);
              }
              if (edge) {
                if (edge->open_connections() > 0)
                  logger->warn("closing {} public connection(s) that outlived the drain", edge->open_connections());
                edge->close_all();
              }
              while (relay->active_sessions() > 0 && std::chrono::steady_clock::now() < deadline) {
                timer.expires_after(std::chrono::milliseconds(50));
                co_await timer.async_wait(asio::use_awaitable);
              }
              if (relay->active_sessions() > 0)
                logger->warn("closing {} agent session(s) that outlived the drain", relay->active_sessions());
              relay->close_all();
              relay_work.reset();
              relay_drained = true;
            },
            asio::detached);
      });
    }
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          asio::steady_timer timer(io);
          const auto deadline =
              std::chrono::steady_clock::now() + std::chrono::seconds(config.api.shutdown_grace_seconds);
          while (control_plane && control_plane->active_connections() > 0 &&
                 std::chrono::steady_clock::now() < deadline) {
            timer.expires_after(std::chrono::milliseconds(50));
            co_await timer.async_wait(asio::use_awaitable);
          }
          if (control_plane) {
            if (control_plane->active_connections() > 0)
              logger->warn("closing {} connection(s) that outlived the grace period",
                           control_plane->active_connections());
            control_plane->close_all();
          }
          // The signal set lives on this context: keep it alive until the relay is done.
          while (!relay_drained) {
            timer.expires_after(std::chrono::milliseconds(50));
            co_await timer.async_wait(asio::use_awaitable);
          }
        },
        asio::detached);
  });

  std::vector<std::thread> threads;
  std::thread relay_thread;
  if (relay) {
    relay_thread = std::thread([&] { relay_io.run(); });
  } else {
    relay_work.reset();
  }
  for (int i = 1; i < config.api.threads; ++i) threads.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  if (relay_thread.joinable()) relay_thread.join();
  logger->info("inkwired stopped");
  return 0;
}

}  // namespace inkwire
