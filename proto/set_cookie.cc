#include "proto/set_cookie.h"

#include "proto/header_rules.h"

namespace inkwire::proto {

namespace {

// True when the text after a comma (at `pos`) opens a new cookie: OWS, a token, then '='.
bool starts_new_cookie(std::string_view s, std::size_t pos) {
  while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t')) ++pos;
  const std::size_t name_begin = pos;
  while (pos < s.size() && is_token(s.substr(pos, 1))) ++pos;
  return pos > name_begin && pos < s.size() && s[pos] == '=';
}

void push_piece(std::vector<std::string>& out, std::string_view piece) {
  piece = trim_ows(piece);
  if (!piece.empty()) out.emplace_back(piece);
}

}  // namespace

std::vector<std::string> split_set_cookie(std::string_view value) {
  std::vector<std::string> cookies;
  std::size_t start = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == ',' && starts_new_cookie(value, i + 1)) {
      push_piece(cookies, value.substr(start, i - start));
      start = i + 1;
    }
  }
  push_piece(cookies, value.substr(start));
  return cookies;
}

}  // namespace inkwire::proto
