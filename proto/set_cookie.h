#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace inkwire::proto {

// Splits one posted `set-cookie` value into the cookies it carries (PROTOCOL.md §4.7, §8 A15).
//
// Why: the Python SDK in URL-forward mode merges repeated upstream Set-Cookie headers into one
// value joined by ", ", yet every cookie must reach the third party as its own header. A split
// happens only at a comma followed by optional whitespace, a cookie-name token and '=', so the
// comma inside "Expires=Wed, 21 Oct 2015 07:28:00 GMT" (followed by " 21 Oct") never splits, and
// neither does a trailing fragment without '=' ("a=1, b" stays one cookie: without a name=value
// pair there is no second cookie to send, so the text stays where the sender put it).
// Each piece is trimmed of optional whitespace; empty pieces are dropped, so an empty value yields
// no cookies at all.
std::vector<std::string> split_set_cookie(std::string_view value);

}  // namespace inkwire::proto
