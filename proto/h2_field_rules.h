#pragma once
// Rules for header fields we send on HTTP/2 (PROTOCOL.md §4.1). One bad field makes a Python agent
// (hyper-h2) drop its whole session, so every field is checked before it reaches nghttp2.

#include <string_view>

namespace inkwire::proto {

// Why the field may not be sent; empty when it may. Names must be lowercase tokens and not
// connection-specific (`te` only as "trailers"); values valid UTF-8 without control characters
// other than tab and without leading or trailing whitespace.
std::string_view h2_field_problem(std::string_view name, std::string_view value);

// Value rules alone (also used for pseudo-header values).
std::string_view h2_value_problem(std::string_view value);

}  // namespace inkwire::proto
