#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace inkwire {

using Sha256Digest = std::array<std::uint8_t, 32>;

Sha256Digest sha256(std::span<const std::uint8_t> data);
Sha256Digest sha256(std::string_view text);

// Constant-time comparison (CRYPTO_memcmp): secrets are never compared with memcmp/==.
bool constant_time_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);

}  // namespace inkwire
