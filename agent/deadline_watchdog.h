#pragma once
// One deadline for a connection of the passthrough plaintext service, re-armed as it moves between
// phases (idle between requests, reading a request, writing). When it passes, the callback runs
// once (it closes the stream or sends GOAWAY), which ends the pending read or write with an error.
// One timer and one small coroutine per connection instead of a timer raced against every read.
// (The edge has its own; the agent library does not depend on the edge's.)
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>

namespace inkwire::agent {

class DeadlineWatchdog {
 public:
  using Clock = std::chrono::steady_clock;
  explicit DeadlineWatchdog(boost::asio::any_io_executor executor) : timer_(std::move(executor)) {}

  void set_after(Clock::duration after) { set_at(Clock::now() + after); }
  void set_at(Clock::time_point at);
  void clear() { deadline_ = Clock::time_point::max(); }
  // Ends run(); the callback will not be called any more.
  void stop();
  bool expired() const { return expired_; }
  Clock::time_point deadline() const { return deadline_; }

  // Called at the first deadline that passes; run() keeps going after it (a callback may arm a
  // later deadline, e.g. GOAWAY first and a hard close a moment later). Set before run().
  std::function<void()> on_expired;
  // Runs until stop(). (No std::function parameter: GCC 12 destroys a prvalue argument of a
  // coroutine twice, PR 100611.)
  boost::asio::awaitable<void> run();

 private:
  boost::asio::steady_timer timer_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool stopped_ = false;
  bool expired_ = false;
};

}  // namespace inkwire::agent
