#include "controlplane/service/reaper.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace inkwire::controlplane {

Reaper::Reaper(PgTunnelRepository& repo, const Clock& clock, prometheus::Registry& registry, Logger logger)
    : repo_(repo),
      clock_(clock),
      logger_(std::move(logger)),
      runs_(prometheus::BuildCounter()
                .Name("inkwire_reaper_runs_total")
                .Help("Reaper passes")
                .Register(registry)
                .Add({})),
      failures_(prometheus::BuildCounter()
                    .Name("inkwire_reaper_failures_total")
                    .Help("Reaper passes that failed on a database error")
                    .Register(registry)
                    .Add({})),
      finalized_(prometheus::BuildCounter()
                     .Name("inkwire_reaper_finalized_total")
                     .Help("Tunnels finalised after their grace window")
                     .Register(registry)
                     .Add({})) {}

boost::asio::awaitable<int> Reaper::run_once() {
  runs_.Increment();
  int total = 0;
  for (;;) {
    auto r = co_await repo_.finalize_expired(clock_.now(), kBatch);
    if (!r) {
      failures_.Increment();
      logger_->warn("reaper pass failed (database unavailable); will retry");
      co_return -1;
    }
    total += *r;
    finalized_.Increment(*r);
    if (*r < kBatch) break;
  }
  if (total > 0) logger_->info("reaper finalised {} tunnel(s); their names are free again", total);
  co_return total;
}

boost::asio::awaitable<void> Reaper::run(std::chrono::seconds interval) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  {
    std::lock_guard lock(timer_mutex_);
    timer_ = &timer;
  }
  while (!stopping_) {
    co_await run_once();
    timer.expires_after(interval);
    if (stopping_) break;
    boost::system::error_code ec;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }
  std::lock_guard lock(timer_mutex_);
  timer_ = nullptr;
}

void Reaper::stop() {
  stopping_ = true;
  std::lock_guard lock(timer_mutex_);
  if (timer_) boost::asio::post(timer_->get_executor(), [this] {
      std::lock_guard inner(timer_mutex_);
      if (timer_) timer_->cancel();
    });
}

}  // namespace inkwire::controlplane
