#include "agent/deadline_watchdog.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace inkwire::agent {

namespace asio = boost::asio;

void DeadlineWatchdog::set_at(Clock::time_point at) {
  const bool earlier = at < deadline_;
  deadline_ = at;
  if (earlier) timer_.cancel();  // the loop in run() re-arms at the new, earlier time
}

void DeadlineWatchdog::stop() {
  stopped_ = true;
  on_expired = nullptr;  // it may hold what owns this watchdog: no cycle past the end
  timer_.cancel();
}

asio::awaitable<void> DeadlineWatchdog::run() {
  while (!stopped_) {
    timer_.expires_at(deadline_);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopped_) break;
    if (Clock::now() >= deadline_) {
      expired_ = true;
      deadline_ = Clock::time_point::max();  // disarmed unless the callback sets a new one
      if (on_expired) on_expired();
    }
  }
}

}  // namespace inkwire::agent
