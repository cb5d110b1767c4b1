#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace inkwire::proto {

// The input buffer shared by the incremental decoders (WebSocket frames, bridge messages):
// `buffer[read, size)` is live, `buffer[0, read)` already decoded. Appends as much of `bytes` as
// keeps the live part within `capacity` and returns how much it took; the caller decodes and feeds
// the rest later, so memory per stream is bounded whatever the peer sends.
std::size_t bounded_append(std::vector<std::uint8_t>& buffer, std::size_t& read, std::size_t capacity,
                           std::span<const std::uint8_t> bytes);

}  // namespace inkwire::proto
