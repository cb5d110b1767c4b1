#pragma once
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <mutex>

#include "common/logging.h"
#include "controlplane/repo/pg/pg_pool.h"

namespace inkwire::controlplane {

// Publishes committed rows of the tunnel_events outbox as NOTIFYs, many per transaction, and marks
// them published. Why an outbox: PostgreSQL commits notifying transactions one at a time through
// their WAL flush, which capped creates at ~1/fsync; batching the NOTIFYs restores group commit.
// Triggered right after each local commit (poke) and by a periodic sweep that also catches events
// of nodes that died before publishing; published events are pruned after an hour.
class PgEventPublisher {
 public:
  PgEventPublisher(PgPool& pool, boost::asio::any_io_executor executor, prometheus::Registry& registry, Logger logger);

  // Publish soon; thread-safe and cheap (coalesces with a publish already running).
  void poke();
  // Sweeps every `interval` until stop().
  boost::asio::awaitable<void> run(std::chrono::milliseconds interval);
  void stop();
  // One batch pass; returns the number of events published (-1 on a database error).
  boost::asio::awaitable<int> publish_once();

 private:
  boost::asio::awaitable<void> drain();

  PgPool& pool_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;
  Logger logger_;
  std::atomic<bool> running_{false};
  std::atomic<bool> pending_{false};
  std::atomic<bool> stopping_{false};
  std::mutex timer_mutex_;
  boost::asio::steady_timer* timer_ = nullptr;
  prometheus::Counter& published_;
  prometheus::Counter& failures_;
};

}  // namespace inkwire::controlplane
