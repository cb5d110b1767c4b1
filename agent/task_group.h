#pragma once
// Coroutines started by one connection, and a join() that waits for all of them: the passthrough
// plaintext service runs on a stream, settings and forwarder it only borrows, so it may return
// only once nothing it started can touch them any more (structured concurrency without
// parallel_group, whose set of tasks is fixed up front).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstddef>
#include <utility>

namespace inkwire::agent {

class TaskGroup {
 public:
  explicit TaskGroup(boost::asio::any_io_executor executor) : executor_(executor), all_done_(executor) {}
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  // Starts `task()` (a callable returning awaitable<void>) on the group's executor. An exception
  // escaping the task ends only that task: the group still counts it as finished.
  template <typename Task>
  void spawn(Task task) {
    ++running_;
    boost::asio::co_spawn(
        executor_,
        [this, task = std::move(task)]() mutable -> boost::asio::awaitable<void> {
          try {
            co_await task();
          } catch (...) {
          }
          if (--running_ == 0) all_done_.cancel();
        },
        boost::asio::detached);
  }

  // Returns once every spawned task has finished (the caller must have told them to end).
  boost::asio::awaitable<void> join() {
    while (running_ > 0) {
      all_done_.expires_at(boost::asio::steady_timer::time_point::max());
      co_await all_done_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
  }

  std::size_t running() const { return running_; }

 private:
  boost::asio::any_io_executor executor_;
  boost::asio::steady_timer all_done_;
  std::size_t running_ = 0;
};

}  // namespace inkwire::agent
