#include "proto/header_rules.h"

namespace inkwire::proto {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

}  // namespace

std::string lowercase_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool istarts_with_ascii(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals_ascii(s.substr(0, prefix.size()), prefix);
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(static_cast<unsigned char>(c))) return false;
  return true;
}

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t extra = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if (c == 0xE0) {
      extra = 2;
      lo = 0xA0;  // no overlong 3-byte forms
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      extra = 2;
    } else if (c == 0xED) {
      extra = 2;
      hi = 0x9F;  // no UTF-16 surrogates
    } else if (c == 0xF0) {
      extra = 3;
      lo = 0x90;  // no overlong 4-byte forms
    } else if (c >= 0xF1 && c <= 0xF3) {
      extra = 3;
    } else if (c == 0xF4) {
      extra = 3;
      hi = 0x8F;  // nothing above U+10FFFF
    } else {
      return false;  // continuation byte, C0/C1 overlong lead, or F5..FF
    }
    if (static_cast<std::size_t>(end - p) <= extra) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (std::size_t i = 2; i <= extra; ++i)
      if (p[i] < 0x80 || p[i] > 0xBF) return false;
    p += extra + 1;
  }
  return true;
}

bool is_valid_field_value(std::string_view trimmed_value, bool require_utf8) {
  if (!trimmed_value.empty() && (is_ows(trimmed_value.front()) || is_ows(trimmed_value.back()))) return false;
  for (char ch : trimmed_value) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
  }
  return !require_utf8 || is_valid_utf8(trimmed_value);
}

bool is_connection_specific(std::string_view lowercase_name, std::string_view value) {
  if (lowercase_name == "te") return value != "trailers";
  return lowercase_name == "connection" || lowercase_name == "keep-alive" || lowercase_name == "proxy-connection" ||
         lowercase_name == "transfer-encoding" || lowercase_name == "upgrade";
}

std::string_view agent_header_list_error(std::span<const HeaderField> fields, std::size_t extra_fields,
                                         std::size_t extra_bytes) {
  constexpr std::size_t kStatusBytes = std::string_view(":status").size() + 3 + kHpackFieldOverhead;
  if (fields.size() + 1 + extra_fields > kAgentMaxFieldsWithStatus) return "too many header fields for the agent";
  std::size_t total = kStatusBytes + extra_bytes;
  for (const HeaderField& f : fields) {
    if (!is_token(f.name)) return "header name is not a token";
    if (lowercase_ascii(f.name) != f.name) return "header name is not lowercase";
    if (is_connection_specific(f.name, f.value)) return "connection-specific header field";
    if (!is_valid_field_value(f.value, /*require_utf8=*/true)) return "header value is not valid for the agent";
    total += f.name.size() + f.value.size() + kHpackFieldOverhead;
  }
  if (total > kAgentMaxHeaderListBytes) return "header list too large for the agent";
  return {};
}

}  // namespace inkwire::proto
