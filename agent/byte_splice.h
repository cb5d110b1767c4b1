#pragma once
// A byte splice between two streams, as a reverse proxy does after a WebSocket upgrade (PROTOCOL.md
// §6.5): what one side sends is written to the other, unchanged, one bounded chunk at a time, so
// memory stays flat whatever the peers do. When one direction ends (EOF or error), the other
// stream's sending side is finished (half-close) and the remaining direction gets a short linger
// to end as well; then both streams are closed.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "common/byte_stream.h"

namespace inkwire::agent {

struct SpliceLimits {
  // No byte moved either way for this long: both streams are cut.
  std::chrono::steady_clock::duration idle_timeout = std::chrono::minutes(10);
  // One write taking longer than this (its reader stopped taking bytes): both streams are cut.
  std::chrono::steady_clock::duration send_timeout = std::chrono::seconds(60);
  // After one direction ended, how long the other has to end before both are cut.
  std::chrono::steady_clock::duration linger = std::chrono::seconds(5);
};

struct SpliceResult {
  std::uint64_t a_to_b = 0;  // bytes written to b, `a_first` included
  std::uint64_t b_to_a = 0;
  bool timed_out = false;  // cut by idle_timeout or send_timeout
};

// `a_first` are bytes already read from `a` that go to `b` before anything else (and likewise
// `b_first`); both must stay valid until the call returns. Returns once both directions have ended
// and both streams are closed. Both streams must run on the calling coroutine's executor; each may
// be read and written at the same time (one reader, one writer).
boost::asio::awaitable<SpliceResult> splice_bytes(ByteStream& a, std::string_view a_first, ByteStream& b,
                                                  std::string_view b_first, const SpliceLimits& limits);

}  // namespace inkwire::agent
