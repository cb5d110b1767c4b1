#include "proto/tunnel_state.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <cstdint>
#include <utility>

namespace inkwire::proto {
namespace {

namespace json = boost::json;

using Field = std::optional<std::string> TunnelState::*;

// Sorted by key, which is the order serialize_state_json writes (Python's sort_keys=True).
constexpr std::array<std::pair<std::string_view, Field>, 6> kFields = {{
    {"mode", &TunnelState::mode},
    {"name", &TunnelState::name},
    {"public_host", &TunnelState::public_host},
    {"secret", &TunnelState::secret},
    {"tunnel_id", &TunnelState::tunnel_id},
    {"zone", &TunnelState::zone},
}};

void append_hex4(std::string& out, std::uint32_t unit) {
  static constexpr char kHex[] = "0123456789abcdef";  // Python writes lowercase hex
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(unit >> shift) & 0xF];
}

// Decodes one UTF-8 sequence at s[i]; returns the code point and advances i. Invalid bytes become
// U+FFFD, one byte at a time (Python strings cannot hold invalid UTF-8, so there is no exact match).
std::uint32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto b0 = static_cast<std::uint8_t>(s[i]);
  int more = 0;
  std::uint32_t cp = 0;
  std::uint32_t min = 0;
  if (b0 < 0x80) {
    ++i;
    return b0;
  } else if ((b0 & 0xE0) == 0xC0) {
    more = 1, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    more = 2, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    more = 3, cp = b0 & 0x07, min = 0x10000;
  } else {
    ++i;
    return 0xFFFD;
  }
  if (i + static_cast<std::size_t>(more) >= s.size()) {  // truncated sequence
    ++i;
    return 0xFFFD;
  }
  for (int k = 1; k <= more; ++k) {
    const auto b = static_cast<std::uint8_t>(s[i + static_cast<std::size_t>(k)]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return 0xFFFD;
  }
  i += static_cast<std::size_t>(more) + 1;
  return cp;
}

// json.dumps' ensure_ascii string form.
void append_python_json_string(std::string& out, std::string_view s) {
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    const std::uint32_t cp = next_code_point(s, i);
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (cp >= 0x20 && cp < 0x7F) {
      out += static_cast<char>(cp);
    } else if (cp >= 0x10000) {
      const std::uint32_t v = cp - 0x10000;
      append_hex4(out, 0xD800 + (v >> 10));
      append_hex4(out, 0xDC00 + (v & 0x3FF));
    } else {
      append_hex4(out, cp);  // controls, DEL and other non-ASCII (Python escapes 0x7F too)
    }
  }
  out += '"';
}

}  // namespace

std::optional<TunnelState> parse_state_json(std::string_view text) {
  boost::system::error_code ec;
  const json::value root = json::parse(text, ec);
  if (ec || !root.is_object()) return std::nullopt;
  const json::object& object = root.get_object();
  TunnelState state;
  for (const auto& [key, field] : kFields) {
    const json::value* v = object.if_contains(key);
    if (v != nullptr && v->is_string()) state.*field = std::string(v->get_string());
  }
  return state;
}

std::string serialize_state_json(const TunnelState& state) {
  std::string out = "{";
  bool first = true;
  for (const auto& [key, field] : kFields) {
    const auto& value = state.*field;
    if (!value) continue;
    out += first ? "\n  " : ",\n  ";
    first = false;
    append_python_json_string(out, key);
    out += ": ";
    append_python_json_string(out, *value);
  }
  out += first ? "}" : "\n}";
  return out;
}

}  // namespace inkwire::proto
