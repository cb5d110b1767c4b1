// TunnelStream without a connection: what it holds while a reader lags behind the DATA, and how
// reads end (END_STREAM → EOF, a reset → an error).
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <vector>

#include "agent/tunnel_stream.h"

namespace inkwire::agent {
namespace {

namespace asio = boost::asio;

// No HTTP/2 session behind it: credits and resets go nowhere.
class NoConnection final : public StreamOwner {
 public:
  proto::H2Session* h2() override { return nullptr; }
  void wake_writer() override {}
};

TEST(TunnelStream, ALaggingReaderDoesNotMakeItHoldTheWholeBody) {
  asio::io_context io;
  auto owner = std::make_shared<NoConnection>();
  auto stream = std::make_shared<TunnelStream>(io.get_executor(), owner, 1);
  std::size_t most_held = 0;
  std::uint64_t read_total = 0;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    const std::vector<std::uint8_t> chunk(64 * 1024, 'x');
    std::vector<std::uint8_t> buffer(60 * 1024);
    // 64 MiB arrive in 64 KiB pieces; the reader takes 60 KiB after each, so it never catches up.
    for (int i = 0; i < 1024; ++i) {
      stream->on_data(chunk, false);
      auto [ec, n] = co_await stream->read_some(buffer);
      EXPECT_FALSE(ec);
      read_total += n;
      most_held = std::max(most_held, stream->held_bytes());
    }
    stream->on_data({}, true);
    for (;;) {
      auto [ec, n] = co_await stream->read_some(buffer);
      if (ec) {
        EXPECT_EQ(ec, asio::error::eof);
        break;
      }
      read_total += n;
    }
  }, asio::detached);
  io.run();
  EXPECT_EQ(read_total, 1024u * 64 * 1024);
  // The unread backlog reaches 4 MiB here (4 KiB a round); the read prefix must not add the
  // other 60 MiB.
  EXPECT_LT(most_held, 5u * 1024 * 1024) << "held " << most_held << " bytes";
}

TEST(TunnelStream, AResetEndsReadsWithAnError) {
  asio::io_context io;
  auto owner = std::make_shared<NoConnection>();
  auto stream = std::make_shared<TunnelStream>(io.get_executor(), owner, 3);
  boost::system::error_code seen;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    std::vector<std::uint8_t> buffer(16);
    auto [ec, n] = co_await stream->read_some(buffer);
    seen = ec;
  }, asio::detached);
  io.poll();
  stream->on_closed(true);
  io.run();
  EXPECT_EQ(seen, asio::error::connection_reset);
}

}  // namespace
}  // namespace inkwire::agent
