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
#include "controlplane/control_plane.h"

namespace inkwire {

namespace asio = boost::asio;

int run_serve(const Config& config) {
  for (const auto& role : config.roles) {
    if (role != "controlplane") {
      std::cerr << "inkwired: role '" << role << "' is not available in this build yet\n";
      return 1;
    }
  }
  auto logger = make_logger("inkwired", config.log.level);
  for (const auto& line : describe_config(config)) logger->info("config {}", line);

  SystemClock clock;
  SecureRandom random;
  auto registry = std::make_shared<prometheus::Registry>();
  asio::io_context io(config.api.threads);
  controlplane::ControlPlane control_plane(config, clock, random, registry, logger);
  if (auto ok = control_plane.start(io); !ok) {
    std::cerr << "inkwired: " << ok.error() << "\n";
    return 1;
  }
  logger->info("inkwired serving: api port {}{}, schema version {}", control_plane.api_port(),
               control_plane.metrics_port() ? ", metrics port " + std::to_string(control_plane.metrics_port()) : "",
               control_plane.schema_version());

  // Graceful, then forced: stop accepting, let connections finish their current request for up
  // to shutdown_grace_seconds, then close what is left. No io.stop(): every coroutine ends on its
  // own, so nothing is left suspended when the objects it uses are destroyed.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    logger->info("signal {}: draining (at most {} s)", signo, config.api.shutdown_grace_seconds);
    control_plane.stop();
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          asio::steady_timer timer(io);
          const auto deadline =
              std::chrono::steady_clock::now() + std::chrono::seconds(config.api.shutdown_grace_seconds);
          while (control_plane.active_connections() > 0 && std::chrono::steady_clock::now() < deadline) {
            timer.expires_after(std::chrono::milliseconds(50));
            co_await timer.async_wait(asio::use_awaitable);
          }
          if (control_plane.active_connections() > 0)
            logger->warn("closing {} connection(s) that outlived the grace period", control_plane.active_connections());
          control_plane.close_all();  // io.run() returns once every coroutine has ended
        },
        asio::detached);
  });

  std::vector<std::thread> threads;
  for (int i = 1; i < config.api.threads; ++i) threads.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  logger->info("inkwired stopped");
  return 0;
}

}  // namespace inkwire
