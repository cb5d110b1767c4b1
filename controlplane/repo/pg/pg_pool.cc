#include "controlplane/repo/pg/pg_pool.h"

#include <pqxx/connection>

namespace inkwire::controlplane {

PgPool::PgPool(std::string url, int size, int statement_timeout_ms, prometheus::Registry& registry, Logger logger)
    : url_(std::move(url)),
      statement_timeout_ms_(statement_timeout_ms),
      logger_(std::move(logger)),
      threads_(static_cast<std::size_t>(size)),
      in_use_(prometheus::BuildGauge()
                  .Name("inkwire_db_pool_connections_in_use")
                  .Help("Database connections currently running a query")
                  .Register(registry)
                  .Add({})),
      size_gauge_(prometheus::BuildGauge()
                      .Name("inkwire_db_pool_size")
                      .Help("Configured database pool size (threads and connections)")
                      .Register(registry)
                      .Add({})),
      errors_(prometheus::BuildCounter()
                  .Name("inkwire_db_errors_total")
                  .Help("Database operations that failed (connection or SQL errors)")
                  .Register(registry)
                  .Add({})),
      connects_(prometheus::BuildCounter()
                    .Name("inkwire_db_connects_total")
                    .Help("Database connections opened")
                    .Register(registry)
                    .Add({})),
      duration_(prometheus::BuildHistogram()
                    .Name("inkwire_db_operation_duration_seconds")
                    .Help("Time of one database operation, including waiting for a connection")
                    .Register(registry)
                    .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                     0.1, 0.25, 0.5, 1, 2.5, 10})) {
  size_gauge_.Set(size);
}

PgPool::~PgPool() { stop(); }

void PgPool::stop() { threads_.join(); }

std::unique_ptr<pqxx::connection> PgPool::acquire(std::string& error) {
  in_use_.Increment();
  std::unique_ptr<pqxx::connection> conn;
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  try {
    if (!conn) {
      conn = std::make_unique<pqxx::connection>(url_);
      connects_.Increment();
      // Every statement is bounded, so a stuck query cannot hold a pool thread for ever.
      conn->set_variable("statement_timeout", std::to_string(statement_timeout_ms_));
      // Timestamps are read back as ISO text in UTC (pg_time.h relies on both).
      conn->set_variable("TimeZone", "'UTC'");
      conn->set_variable("DateStyle", "'ISO, YMD'");
    }
    // Statements registered since this connection last ran (repositories may be created at any
    // time, e.g. the relay's after the control plane's) are declared before it is used.
    std::lock_guard lock(mutex_);
    auto& done = prepared_count_[conn.get()];
    for (; done < prepared_.size(); ++done) conn->prepare(prepared_[done].first, prepared_[done].second);
    return conn;
  } catch (const std::exception& e) {
    in_use_.Decrement();
    if (conn) forget(conn.get());
    error = "cannot connect to the database: " + one_line(e.what());
    return nullptr;
  }
}

void PgPool::add_prepared(std::string name, std::string sql) {
  std::lock_guard lock(mutex_);
  prepared_.emplace_back(std::move(name), std::move(sql));
}

void PgPool::forget(const pqxx::connection* conn) {
  std::lock_guard lock(mutex_);
  prepared_count_.erase(conn);
}

void PgPool::release(std::unique_ptr<pqxx::connection> conn, bool failed) {
  in_use_.Decrement();
  if (failed && !conn->is_open()) {  // dropped; the next acquire reconnects
    forget(conn.get());
    return;
  }
  std::lock_guard lock(mutex_);
  idle_.push_back(std::move(conn));
}

void PgPool::observe(std::chrono::steady_clock::time_point started, bool ok) {
  duration_.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (!ok) errors_.Increment();
}

std::string PgPool::one_line(const char* message) {
  std::string out;
  bool space = false;
  for (const char* p = message; *p; ++p) {
    const bool ws = *p == '\n' || *p == '\r' || *p == '\t' || *p == ' ';
    if (ws) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(*p);
  }
  return out;
}

void PgPool::log_error(const std::string& error) {
  // libpq error texts do not contain the password; they may name the host and database.
  logger_->error("database operation failed: {}", error);
}

}  // namespace inkwire::controlplane
