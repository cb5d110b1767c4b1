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
// The same, appended to `out` in place (the bridge encoder writes messages without temporaries).
void append_base64(std::string& out, std::span<const std::uint8_t> bytes);
// Strict standard base64 decode: padding required, no whitespace, no URL alphabet, canonical
// (unused padding bits zero); the bytes, or nullopt on any bad input.
std::optional<std::string> base64_decode(std::string_view text);
// Appends `text` as a JSON string literal (quotes included), escaping '"', '\' and control
// characters; `text` must already be valid UTF-8. Shared by the REST writer and the bridge encoder.
void append_json_string(std::string& out, std::string_view text);
// Lowercase hex.
std::string hex_encode(std::span<const std::uint8_t> bytes);

// Number of code points in valid UTF-8 (limits such as "1000 characters" count these, not bytes).
inline std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

inline std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace inkwire
