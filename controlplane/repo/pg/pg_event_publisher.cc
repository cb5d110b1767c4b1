#include "controlplane/repo/pg/pg_event_publisher.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <pqxx/pqxx>

namespace inkwire::controlplane {

namespace asio = boost::asio;

namespace {
constexpr const char* kPublish = "events_publish";
constexpr const char* kPrune = "events_prune";
constexpr int kBatch = 1000;
}  // namespace

PgEventPublisher::PgEventPublisher(PgPool& pool, asio::any_io_executor executor, prometheus::Registry& registry,
                                   Logger logger)
    : pool_(pool),
      strand_(asio::make_strand(executor)),
      logger_(std::move(logger)),
      published_(prometheus::BuildCounter()
                     .Name("inkwire_events_published_total")
                     .Help("Tunnel events published with NOTIFY from the outbox")
                     .Register(registry)
                     .Add({})),
      failures_(prometheus::BuildCounter()
                    .Name("inkwire_events_publish_failures_total")
                    .Help("Outbox publish passes that failed on a database error")
                    .Register(registry)
                    .Add({})) {
  // SKIP LOCKED: nodes publishing at once take disjoint batches. The event id is spliced into the
  // payload: ids are assigned at insert, not at commit, so they order one tunnel's events (its
  // changes are serialised by its row lock) but not events of different tunnels.
  pool_.add_prepared(kPublish,
                     "WITH batch AS (SELECT id FROM tunnel_events WHERE published_at IS NULL ORDER BY id LIMIT $1"
                     " FOR UPDATE SKIP LOCKED),"
                     " sent AS (UPDATE tunnel_events e SET published_at = now() FROM batch WHERE e.id = batch.id"
                     " RETURNING e.id, e.channel, e.payload)"
                     " SELECT count(pg_notify(channel, '{\"event_id\":' || id || ',' || substr(payload, 2)))"
                     " FROM (SELECT * FROM sent ORDER BY id) s");
  pool_.add_prepared(kPrune, "DELETE FROM tunnel_events WHERE published_at < now() - interval '1 hour'");
}

void PgEventPublisher::poke() {
  pending_ = true;
  if (running_.exchange(true)) return;  // the running drain will see pending_
  asio::co_spawn(strand_, drain(), asio::detached);
}

asio::awaitable<void> PgEventPublisher::drain() {
  for (;;) {
    pending_ = false;
    const int n = co_await publish_once();
    if (n == kBatch) pending_ = true;  // more may be waiting
    if (pending_ && n >= 0) continue;
    running_ = false;
    // A poke between the check and running_ = false would be lost without this second look.
    if (!pending_ || running_.exchange(true)) co_return;
  }
}

asio::awaitable<int> PgEventPublisher::publish_once() {
  auto r = co_await pool_.run([](pqxx::connection& c) {
    pqxx::work tx(c);
    const int n = tx.exec_prepared1(kPublish, kBatch)[0].as<int>();
    tx.commit();
    return n;
  });
  if (!r) {
    failures_.Increment();
    co_return -1;
  }
  published_.Increment(*r);
  co_return *r;
}

asio::awaitable<void> PgEventPublisher::run(std::chrono::milliseconds interval) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  {
    std::lock_guard lock(timer_mutex_);
    timer_ = &timer;
  }
  auto last_prune = std::chrono::steady_clock::now();
  while (!stopping_) {
    poke();
    if (std::chrono::steady_clock::now() - last_prune > std::chrono::minutes(1)) {
      last_prune = std::chrono::steady_clock::now();
      co_await pool_.run([](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        return tx.exec_prepared(kPrune).affected_rows();
      });
    }
    timer.expires_after(interval);
    if (stopping_) break;
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  std::lock_guard lock(timer_mutex_);
  timer_ = nullptr;
}

void PgEventPublisher::stop() {
  stopping_ = true;
  std::lock_guard lock(timer_mutex_);
  if (timer_)
    asio::post(timer_->get_executor(), [this] {
      std::lock_guard inner(timer_mutex_);
      if (timer_) timer_->cancel();
    });
}

}  // namespace inkwire::controlplane
