#include "proto/h2_field_rules.h"

#include <array>
#include <cstdint>

namespace inkwire::proto {
namespace {

bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  return kSpecials.find(static_cast<char>(c)) != std::string_view::npos;
}

// RFC 9113 §8.2.2; hyper-h2 treats each of these as a connection error.
constexpr std::array<std::string_view, 5> kConnectionSpecific = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"};

}  // namespace

bool h2_is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

bool h2_is_valid_utf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0fu;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string_view h2_value_problem(std::string_view value) {
  if (!value.empty()) {
    const char first = value.front();
    const char last = value.back();
    if (first == ' ' || first == '\t' || last == ' ' || last == '\t') {
      return "field value has leading or trailing whitespace";
    }
  }
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return "field value has a control character";
  }
  if (!h2_is_valid_utf8(value)) return "field value is not valid UTF-8";
  return {};
}

std::string_view h2_field_problem(std::string_view name, std::string_view value) {
  if (name.empty()) return "empty field name";
  for (unsigned char c : name) {
    if (c >= 'A' && c <= 'Z') return "field name has uppercase letters";
    if (!is_tchar(c)) return "field name is not a token";
  }
  for (std::string_view bad : kConnectionSpecific) {
    if (name == bad) return "connection-specific field";
  }
  if (name == "te" && value != "trailers") return "te other than \"trailers\"";
  return h2_value_problem(value);
}

}  // namespace inkwire::proto
