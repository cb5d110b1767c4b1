#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace inkwire {

// base64url without padding (RFC 4648 §5): secrets and tokens that travel in headers and URLs.
std::string base64url_encode(std::span<const std::uint8_t> bytes);
// Standard base64 with '=' padding (RFC 4648 §4).
std::string base64_encode(std::span<const std::uint8_t> bytes);
// Strict standard base64 decode: padding required, no whitespace; nullopt on any bad input.
std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text);
// Lowercase hex.
std::string hex_encode(std::span<const std::uint8_t> bytes);

inline std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace inkwire
