#pragma once
// One deadline per connection, re-armed as the connection moves between phases (waiting for a
// request, reading a head, reading a body, sending). When it passes, the watchdog counts the kind
// of timeout and closes the stream, which ends every pending read and write with an error. One
// timer and one small coroutine per connection, instead of a timer raced against every read.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <string_view>

namespace inkwire::edge {

class ConnectionWatchdog {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  explicit ConnectionWatchdog(boost::asio::any_io_executor executor) : timer_(executor) {}

  // Arms (or moves) the deadline; `kind` names the timeout for metrics and logs (static storage).
  void set(std::chrono::steady_clock::duration after, std::string_view kind) {
    set_at(std::chrono::steady_clock::now() + after, kind);
  }
  void set_at(TimePoint at, std::string_view kind) {
    const bool earlier = at < deadline_;
    deadline_ = at;
    kind_ = kind;
    if (earlier) timer_.cancel();  // the waiting loop re-arms at the new, earlier time
  }
  void clear() { deadline_ = TimePoint::max(); }
  void stop() {
    stopped_ = true;
    on_expired = nullptr;  // it usually holds the connection: the cycle ends here
    timer_.cancel();
  }
  TimePoint deadline() const { return deadline_; }
  std::string_view kind() const { return kind_; }

  // Called once, at the first deadline that passes. Set before run().
  std::function<void(std::string_view)> on_expired;
  // Runs until stop(). (No std::function parameter: GCC 12 destroys a prvalue argument of a
  // coroutine twice, PR 100611.)
  boost::asio::awaitable<void> run();

 private:
  boost::asio::steady_timer timer_;
  TimePoint deadline_ = TimePoint::max();
  std::string_view kind_;
  bool stopped_ = false;
};

}  // namespace inkwire::edge
