#include "edge/connection_watchdog.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace inkwire::edge {

namespace asio = boost::asio;

asio::awaitable<void> ConnectionWatchdog::run() {
  while (!stopped_) {
    timer_.expires_at(deadline_);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopped_) break;
    if (std::chrono::steady_clock::now() >= deadline_) {
      stopped_ = true;
      if (auto callback = std::move(on_expired)) callback(kind_);
      break;
    }
  }
}

}  // namespace inkwire::edge
