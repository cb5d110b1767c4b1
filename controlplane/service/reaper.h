#pragma once
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <mutex>

#include "common/clock.h"
#include "common/expected.h"
#include "common/logging.h"
#include "controlplane/repo/pg/pg_tunnel_repository.h"

namespace inkwire::controlplane {

// Finalises tunnels whose delete grace window has ended (PROTOCOL.md §8 A30): their name is free
// again and GET answers 404. Runs at start and then every interval; safe on several nodes at once.
class Reaper {
 public:
  Reaper(PgTunnelRepository& repo, const Clock& clock, prometheus::Registry& registry, Logger logger);

  // One pass: finalises everything due now (in batches). Returns how many, or -1 on a database error.
  boost::asio::awaitable<int> run_once();

  // Loops until stop(): one pass now, then one per interval.
  boost::asio::awaitable<void> run(std::chrono::seconds interval);
  // Ends run() after the pass in progress (if any); safe from any thread.
  void stop();

 private:
  static constexpr int kBatch = 500;
  PgTunnelRepository& repo_;
  const Clock& clock_;
  Logger logger_;
  prometheus::Counter& runs_;
  prometheus::Counter& failures_;
  prometheus::Counter& finalized_;
  std::atomic<bool> stopping_{false};
  std::mutex timer_mutex_;
  boost::asio::steady_timer* timer_ = nullptr;  // the sleeping run()'s timer, if any
};

}  // namespace inkwire::controlplane
