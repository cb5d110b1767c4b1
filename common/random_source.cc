#include "common/random_source.h"

#include <openssl/rand.h>

#include <cstdlib>

namespace inkwire {

void SecureRandom::fill(std::span<std::uint8_t> out) {
  if (out.empty()) return;
  // RAND_bytes fails only when the OS entropy source is broken; continuing would hand out
  // predictable secrets, so this is one of the few places that aborts.
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) std::abort();
}

}  // namespace inkwire
