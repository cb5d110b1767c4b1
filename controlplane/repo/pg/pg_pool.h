#pragma once
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <pqxx/connection>

#include "common/expected.h"
#include "common/logging.h"


namespace inkwire::controlplane {

struct DbError {
  std::string message;  // for logs; never shown to API clients verbatim
};

// libpqxx 6.4 connections are blocking and not thread-safe, so database work runs on a small
// pool of threads, each borrowing one connection; coroutines await the result without blocking
// an I/O thread. Broken connections are dropped and reopened on next use.
class PgPool {
 public:
  PgPool(std::string url, int size, int statement_timeout_ms, prometheus::Registry& registry, Logger logger);
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // Runs fn(pqxx::connection&) on a database thread and resumes the caller on its own executor.
  // Exceptions thrown by fn (libpqxx errors included) become a DbError.
  template <typename Fn>
  auto run(Fn fn) -> boost::asio::awaitable<Expected<std::invoke_result_t<Fn&, pqxx::connection&>, DbError>> {
    using Result = Expected<std::invoke_result_t<Fn&, pqxx::connection&>, DbError>;
    return boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(Result)>(
        [this](auto handler, Fn work) {
          auto guard = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler));
          boost::asio::post(threads_, [this, work = std::move(work), handler = std::move(handler),
                                       guard = std::move(guard)]() mutable {
            Result result = execute<Result>(work);
            auto executor = guard.get_executor();
            boost::asio::dispatch(executor, [handler = std::move(handler), result = std::move(result)]() mutable {
              std::move(handler)(std::move(result));
            });
          });
        },
        boost::asio::use_awaitable, std::move(fn));
  }

  // Same, but blocks the calling thread (for CLI commands and startup).
  template <typename Fn>
  auto run_blocking(Fn fn) -> Expected<std::invoke_result_t<Fn&, pqxx::connection&>, DbError> {
    return execute<Expected<std::invoke_result_t<Fn&, pqxx::connection&>, DbError>>(fn);
  }

  // Declares a prepared statement on every connection (each learns it before its next use).
  void add_prepared(std::string name, std::string sql);

  // Stops accepting work and joins the threads (outstanding work finishes first).
  void stop();

 private:
  template <typename Result, typename Fn>
  Result execute(Fn& fn) {
    const auto started = std::chrono::steady_clock::now();
    std::string error;
    if (auto conn = acquire(error)) {
      try {
        Result r(fn(*conn));
        release(std::move(conn), false);
        observe(started, true);
        return r;
      } catch (const std::exception& e) {
        error = one_line(e.what());
        release(std::move(conn), true);
      }
    }
    observe(started, false);
    log_error(error);
    return unexpected(DbError{std::move(error)});
  }

  std::unique_ptr<pqxx::connection> acquire(std::string& error);
  // After a failure the connection is kept only if it is still open (a failed statement aborts
  // its transaction but leaves the connection usable).
  void release(std::unique_ptr<pqxx::connection> conn, bool failed);
  void observe(std::chrono::steady_clock::time_point started, bool ok);
  void log_error(const std::string& error);
  void forget(const pqxx::connection* conn);
  // libpq messages span lines ("...\n\tIs the server running..."); logs and CLI errors are one line.
  static std::string one_line(const char* message);

  std::string url_;
  int statement_timeout_ms_;
  Logger logger_;
  boost::asio::thread_pool threads_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  std::vector<std::pair<std::string, std::string>> prepared_;
  std::unordered_map<const pqxx::connection*, std::size_t> prepared_count_;  // how many of prepared_ it knows
  prometheus::Gauge& in_use_;
  prometheus::Gauge& size_gauge_;
  prometheus::Counter& errors_;
  prometheus::Counter& connects_;
  prometheus::Histogram& duration_;
};

}  // namespace inkwire::controlplane
