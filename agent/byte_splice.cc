#include "agent/byte_splice.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <memory>

#include "agent/deadline_watchdog.h"
#include "agent/task_group.h"

namespace inkwire::agent {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kChunk = 64 * 1024;

struct SpliceState {
  SpliceState(asio::any_io_executor executor, ByteStream& a, ByteStream& b, const SpliceLimits& l)
      : watchdog(executor), done_wake(executor), streams{&a, &b}, limits(l) {}

  // One deadline covers both the idle bound and each pending write's bound.
  void rearm() {
    Clock::time_point at = last_activity + limits.idle_timeout;
    for (const auto since : writing_since) {
      if (since != Clock::time_point::max()) at = std::min(at, since + limits.send_timeout);
    }
    watchdog.set_at(at);
  }
  void cut() {
    cut_done = true;
    streams[0]->close();
    streams[1]->close();
    done_wake.cancel();
  }

  DeadlineWatchdog watchdog;
  asio::steady_timer done_wake;
  ByteStream* streams[2];
  SpliceLimits limits;
  Clock::time_point last_activity = Clock::now();
  Clock::time_point writing_since[2] = {Clock::time_point::max(), Clock::time_point::max()};
  std::uint64_t moved[2] = {0, 0};
  int ended = 0;
  bool cut_done = false;
  bool timed_out = false;
};

// streams[from] → streams[1 - from], starting with `first`.
asio::awaitable<void> pump(SpliceState& st, int from, std::string_view first) {
  ByteStream& source = *st.streams[from];
  ByteStream& sink = *st.streams[1 - from];
  auto buffer = std::make_unique_for_overwrite<std::uint8_t[]>(kChunk);
  std::string_view out = first;
  for (;;) {
    if (!out.empty()) {
      st.writing_since[from] = Clock::now();
      st.rearm();
      const auto wec = co_await sink.write_all(out);
      st.writing_since[from] = Clock::time_point::max();
      st.last_activity = Clock::now();
      st.rearm();
      if (wec) break;
      st.moved[from] += out.size();
    }
    auto [ec, n] = co_await source.read_some(std::span(buffer.get(), kChunk));
    if (ec) break;
    st.last_activity = Clock::now();
    st.rearm();
    out = std::string_view(reinterpret_cast<const char*>(buffer.get()), n);
  }
  // Our direction is over: tell the sink's peer (FIN, close_notify or END_STREAM), so it can end
  // its own direction in turn.
  if (!st.cut_done) sink.finish_sending();
  ++st.ended;
  st.done_wake.cancel();
}

}  // namespace

asio::awaitable<SpliceResult> splice_bytes(ByteStream& a, std::string_view a_first, ByteStream& b,
                                           std::string_view b_first, const SpliceLimits& limits) {
  auto executor = co_await asio::this_coro::executor;
  SpliceState st(executor, a, b, limits);
  TaskGroup tasks(executor);
  st.watchdog.on_expired = [&st] {
    st.timed_out = true;
    st.cut();
  };
  st.rearm();
  tasks.spawn([&st] { return st.watchdog.run(); });
  tasks.spawn([&st, a_first] { return pump(st, 0, a_first); });
  tasks.spawn([&st, b_first] { return pump(st, 1, b_first); });
  while (st.ended == 0 && !st.cut_done) {
    st.done_wake.expires_at(Clock::time_point::max());
    co_await st.done_wake.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  const auto linger_end = Clock::now() + limits.linger;
  while (st.ended < 2 && !st.cut_done && Clock::now() < linger_end) {
    st.done_wake.expires_at(linger_end);
    co_await st.done_wake.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  // Closing ends whatever still waits on either stream.
  st.cut();
  st.watchdog.stop();
  co_await tasks.join();
  SpliceResult result;
  result.a_to_b = st.moved[0];
  result.b_to_a = st.moved[1];
  result.timed_out = st.timed_out;
  co_return result;
}

}  // namespace inkwire::agent
