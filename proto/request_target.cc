#include "proto/request_target.h"

#include "proto/header_rules.h"

namespace inkwire::proto {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> percent_decode_strict(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;  // needs two more characters
    const int hi = hex_value(text[i + 1]);
    const int lo = hex_value(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  // decodeURIComponent turns escapes into UTF-8 and throws when they do not form it; raw
  // characters are already valid UTF-8 here, so checking the whole result is the same test.
  if (!is_valid_utf8(out)) return std::nullopt;
  return out;
}

std::string_view request_target_error(std::string_view target) {
  if (target.empty()) return "empty request target";
  if (target.front() != '/') return "request target is not in origin form";
  for (char ch : target) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7F) return "space or control character in request target";
  }
  if (!is_valid_utf8(target)) return "request target is not valid UTF-8";

  const std::string_view path = target.substr(0, target.find('?'));
  std::optional<std::string> once = percent_decode_strict(path);
  if (!once) return "malformed percent-escape in path";
  if (*once != path && !percent_decode_strict(*once)) return "malformed percent-escape in path";
  return {};
}

}  // namespace inkwire::proto
