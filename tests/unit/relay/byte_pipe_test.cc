// BytePipe: the bounded pipe between the edge and an agent stream. No sockets: an io_context runs
// the awaiting sides.
#include "relay/byte_pipe.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <string>

namespace inkwire::relay {
namespace {

namespace asio = boost::asio;

std::span<const std::uint8_t> bytes(std::string_view s) {
  return std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

TEST(BytePipeTest, WriteSomeTakesOnlyWhatFits) {
  asio::io_context io;
  BytePipe pipe(io.get_executor(), 4);
  EXPECT_EQ(pipe.write_some(std::string_view("abcdef")), 4u);
  EXPECT_EQ(pipe.room(), 0u);
  EXPECT_EQ(pipe.write_some(std::string_view("x")), 0u);
  pipe.take(3);
  EXPECT_EQ(pipe.room(), 3u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(pipe.peek().data()), pipe.size()), "d");
}

TEST(BytePipeTest, PushIgnoresCapacityBecauseAWindowBoundsIt) {
  asio::io_context io;
  BytePipe pipe(io.get_executor(), 4);
  pipe.push(bytes("0123456789"));
  EXPECT_EQ(pipe.size(), 10u);
  EXPECT_EQ(pipe.room(), 0u);
}

TEST(BytePipeTest, TakingReportsConsumedBytesAndWakesTheWriter) {
  asio::io_context io;
  BytePipe pipe(io.get_executor(), 8);
  std::size_t consumed = 0;
  int writable = 0;
  pipe.on_consumed = [&](std::size_t n) { consumed += n; };
  pipe.on_writable = [&] { ++writable; };
  pipe.push(bytes("hello"));
  pipe.take(2);
  pipe.take(10);  // more than there is: takes the rest
  EXPECT_EQ(consumed, 5u);
  EXPECT_EQ(writable, 2);
  EXPECT_EQ(pipe.bytes_read(), 5u);
}

TEST(BytePipeTest, FinishedPipeReadsToTheEndThenReportsIt) {
  asio::io_context io;
  BytePipe pipe(io.get_executor(), 64);
  pipe.push(bytes("abc"));
  pipe.finish();
  pipe.abort();  // a late failure must not take a complete body away
  std::string got;
  PipeEnd end = PipeEnd::open;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto r = co_await pipe.read(2);
          got += r.bytes;
          if (r.bytes.empty()) {
            end = r.end;
            co_return;
          }
        }
      },
      asio::detached);
  io.run();
  EXPECT_EQ(got, "abc");
  EXPECT_EQ(end, PipeEnd::finished);
}

TEST(BytePipeTest, AbortDropsBufferedBytesAndCreditsThem) {
  asio::io_context io;
  BytePipe pipe(io.get_executor(), 64);
  std::size_t consumed = 0;
  pipe.on_consumed = [&](std::size_t n) { consumed += n; };
  pipe.push(bytes("abcdef"));
  pipe.abort();
  EXPECT_EQ(pipe.size(), 0u);
  EXPECT_EQ(consumed, 6u) << "an HTTP/2 window those bytes held must reopen";
  EXPECT_EQ(pipe.end(), PipeEnd::aborted);
}

TEST(BytePipeTest, BytesPushedAfterTheEndAreCreditedNotKept) {
  // A third party that left aborts the response body while the agent is still sending it: those
  // bytes must reopen the window they arrived in, or the session's connection window shrinks.
  asio::io_context io;
  BytePipe pipe(io.get_executor(), 64);
  std::size_t consumed = 0;
  pipe.on_consumed = [&](std::size_t n) { consumed += n; };
  pipe.abort();
  pipe.push(bytes("0123456789"));
  EXPECT_EQ(consumed, 10u);
  EXPECT_EQ(pipe.size(), 0u);
}

TEST(BytePipeTest, ClosedReaderSwallowsWritesAndCreditsPushes) {
  asio::io_context io;
  BytePipe pipe(io.get_executor(), 4);
  std::size_t consumed = 0;
  pipe.on_consumed = [&](std::size_t n) { consumed += n; };
  pipe.push(bytes("ab"));
  pipe.close_reader();
  EXPECT_EQ(consumed, 2u);
  EXPECT_EQ(pipe.write_some(std::string_view("123456")), 6u) << "nobody reads: accepted and dropped";
  pipe.push(bytes("xyz"));
  EXPECT_EQ(consumed, 5u);
  EXPECT_EQ(pipe.size(), 0u);
}

TEST(BytePipeTest, BlockedWriterResumesAsTheReaderDrains) {
  asio::io_context io;
  BytePipe pipe(io.get_executor(), 3);
  bool wrote = false;
  std::string got;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        wrote = co_await pipe.write("0123456789");
        pipe.finish();
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto r = co_await pipe.read(2);
          if (r.bytes.empty()) co_return;
          EXPECT_LE(pipe.size(), 3u) << "never more than the capacity buffered";
          got += r.bytes;
        }
      },
      asio::detached);
  io.run();
  EXPECT_TRUE(wrote);
  EXPECT_EQ(got, "0123456789");
}

TEST(BytePipeTest, WriterLearnsThatTheReaderLeft) {
  asio::io_context io;
  BytePipe pipe(io.get_executor(), 2);
  bool wrote = true;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { wrote = co_await pipe.write("0123456789"); }, asio::detached);
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> {
        (void)co_await pipe.read(1);
        pipe.close_reader();
      },
      asio::detached);
  io.run();
  EXPECT_FALSE(wrote);
}

}  // namespace
}  // namespace inkwire::relay
