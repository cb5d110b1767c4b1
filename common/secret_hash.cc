#include "common/secret_hash.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

namespace inkwire {

Sha256Digest sha256(std::span<const std::uint8_t> data) {
  Sha256Digest out{};
  SHA256(data.data(), data.size(), out.data());
  return out;
}

Sha256Digest sha256(std::string_view text) {
  return sha256(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

bool constant_time_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace inkwire
