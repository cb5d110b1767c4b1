#include "proto/h2_field_rules.h"

#include "proto/header_rules.h"

namespace inkwire::proto {

// The character classes live in header_rules (shared with the envelope builder); this file only
// phrases the §4.1 verdict for one field about to be submitted to nghttp2.

std::string_view h2_value_problem(std::string_view value) {
  if (!value.empty()) {
    const char first = value.front();
    const char last = value.back();
    if (first == ' ' || first == '\t' || last == ' ' || last == '\t') {
      return "field value has leading or trailing whitespace";
    }
  }
  if (!is_valid_field_value(value, false)) return "field value has a control character";
  if (!is_valid_utf8(value)) return "field value is not valid UTF-8";
  return {};
}

std::string_view h2_field_problem(std::string_view name, std::string_view value) {
  if (name.empty()) return "empty field name";
  for (unsigned char c : name) {
    if (c >= 'A' && c <= 'Z') return "field name has uppercase letters";
  }
  if (!is_token(name)) return "field name is not a token";
  if (is_connection_specific(name, value)) {
    return name == "te" ? "te other than \"trailers\"" : "connection-specific field";
  }
  return h2_value_problem(value);
}

}  // namespace inkwire::proto
