#pragma once
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "common/logging.h"

namespace inkwire::controlplane {

// LISTENs on PostgreSQL channels over a dedicated connection and calls `on_notification` (on the
// listener's executor) for each NOTIFY. The connection's socket is watched with Asio, so no thread
// blocks; a lost connection is reopened with backoff, and `on_reconnect` then tells the owner that
// notifications may have been missed (caches should be dropped).
class PgListener {
 public:
  using Callback = std::function<void(const std::string& channel, const std::string& payload)>;

  PgListener(std::string url, std::vector<std::string> channels, Callback on_notification,
             std::function<void()> on_reconnect, Logger logger);

  // Runs until stop(); co_spawn it on the executor that should receive the callbacks.
  boost::asio::awaitable<void> run();
  void stop();

 private:
  std::string url_;
  std::vector<std::string> channels_;
  Callback on_notification_;
  std::function<void()> on_reconnect_;
  Logger logger_;
  std::atomic<bool> stopping_{false};
  std::function<void()> cancel_;  // cancels the current wait (set while run() waits)
  std::mutex cancel_mutex_;
};

}  // namespace inkwire::controlplane
