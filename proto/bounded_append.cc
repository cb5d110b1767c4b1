#include "proto/bounded_append.h"

#include <algorithm>
#include <cstring>

namespace inkwire::proto {

std::size_t bounded_append(std::vector<std::uint8_t>& buffer, std::size_t& read, std::size_t capacity,
                           std::span<const std::uint8_t> bytes) {
  const std::size_t live = buffer.size() - read;
  const std::size_t take = std::min(bytes.size(), capacity - live);
  if (take == 0) return 0;
  if (read == buffer.size()) {
    buffer.clear();
    read = 0;
  } else if (read > 0 && (read >= live || buffer.size() + take > capacity)) {
    // Compact when the dead prefix is at least as big as what has to move (so moving is paid for by
    // bytes already decoded), or when growing would hold more than the bound in memory.
    std::memmove(buffer.data(), buffer.data() + read, live);
    buffer.resize(live);
    read = 0;
  }
  // Grow geometrically but never past the bound (plain vector growth could double past it).
  if (buffer.size() + take > buffer.capacity())
    buffer.reserve(std::min(capacity, std::max(buffer.size() + take, 2 * buffer.capacity())));
  buffer.insert(buffer.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(take));
  return take;
}

}  // namespace inkwire::proto
