#include "proto/path_check.h"

#include <cstdint>
#include <string>

namespace inkwire::proto {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads the escape "%XX" at s[i]; -1 when it is not a well-formed escape.
int escape_at(std::string_view s, std::size_t i) {
  if (i + 3 > s.size() || s[i] != '%') return -1;
  const int hi = hex_value(s[i + 1]);
  const int lo = hex_value(s[i + 2]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// decodeURIComponent semantics: every '%' must start "%XX"; escaped bytes >= 0x80 must form one
// well-formed UTF-8 sequence (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF) made
// entirely of escapes. Raw (unescaped) bytes are copied as they are. nullopt on any error.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '%') {
      out.push_back(s[i++]);
      continue;
    }
    const int lead = escape_at(s, i);
    if (lead < 0) return std::nullopt;
    i += 3;
    if (lead < 0x80) {
      out.push_back(static_cast<char>(lead));
      continue;
    }
    int more = 0;
    int lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
    if (lead >= 0xC2 && lead <= 0xDF) {
      more = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      more = 2;
      if (lead == 0xE0) lo = 0xA0;  // overlong
      if (lead == 0xED) hi = 0x9F;  // UTF-16 surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      more = 3;
      if (lead == 0xF0) lo = 0x90;  // overlong
      if (lead == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(lead));
    for (int k = 0; k < more; ++k) {
      const int cont = escape_at(s, i);
      if (cont < lo || cont > hi) return std::nullopt;
      out.push_back(static_cast<char>(cont));
      i += 3;
      lo = 0x80;
      hi = 0xBF;
    }
  }
  return out;
}

bool contains_encoded_separator(std::string_view path) {
  for (std::size_t i = 0; i + 2 < path.size(); ++i) {
    if (path[i] != '%') continue;
    const char a = path[i + 1];
    const char b = path[i + 2];
    if ((a == '2' && (b == 'f' || b == 'F')) || (a == '5' && (b == 'c' || b == 'C'))) return true;
  }
  return false;
}

std::optional<std::string_view> bad_segment(std::string_view decoded) {
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = decoded.find('/', start);
    const std::string_view segment =
        decoded.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (segment == "." || segment == "..") return "dot segment";
    for (const char c : segment) {
      const auto byte = static_cast<std::uint8_t>(c);
      if (c == '\\') return "backslash in path";
      if (byte < 0x20 || byte == 0x7F) return "control character in path";
    }
    if (slash == std::string_view::npos) return std::nullopt;
    start = slash + 1;
  }
}

}  // namespace

std::optional<std::string_view> invalid_path_reason(std::string_view inkbox_path) {
  const std::string_view path = inkbox_path.substr(0, inkbox_path.find('?'));
  // An encoded '/' or '\' would become a separator only after the origin decodes it, hiding a
  // traversal from the segment check below.
  if (contains_encoded_separator(path)) return "encoded path separator";
  auto once = percent_decode(path);
  if (!once) return "malformed percent-encoding";
  if (*once != path) {
    // Double encoding is allowed only if a second decode is a no-op; a third layer is never legit
    // and is how "%252e%252e" smuggles "..".
    auto twice = percent_decode(*once);
    if (!twice) return "malformed percent-encoding";
    if (*twice != *once) return "multiply percent-encoded path";
  }
  return bad_segment(*once);
}

}  // namespace inkwire::proto
