#pragma once
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

// Header field syntax shared by the envelope builder (toward the agent) and the response-post
// mapper (toward the third party). Everything here is pure byte inspection.
namespace inkwire::proto {

struct HeaderField {
  std::string name;
  std::string value;

  bool operator==(const HeaderField&) const = default;
};

// What the agent's HTTP/2 stacks accept in one header list (PROTOCOL.md §4.1). hyper-h2 raises a
// connection error from 65,537 bytes on, Node resets the stream at 128 fields including :status.
inline constexpr std::size_t kAgentMaxHeaderListBytes = 65536;
inline constexpr std::size_t kAgentMaxFieldsWithStatus = 127;
// HPACK's per-field overhead, which is how both stacks count the list size (RFC 7541 §4.1).
inline constexpr std::size_t kHpackFieldOverhead = 32;

std::string lowercase_ascii(std::string_view s);
bool iequals_ascii(std::string_view a, std::string_view b);
bool istarts_with_ascii(std::string_view s, std::string_view prefix);

// Strips optional whitespace (SP and HTAB, RFC 9110 §5.6.3) from both ends.
std::string_view trim_ows(std::string_view s);

// RFC 9110 token (tchar+): header names, methods, cookie names, subprotocols.
bool is_token(std::string_view s);

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. Python decodes
// header values this way, so anything it would refuse must not reach an agent.
bool is_valid_utf8(std::string_view s);

// A field value (already trimmed) that every peer accepts: no control characters other than HTAB
// and no DEL. That is stricter than §4.1's "no NUL, CR, LF", but nghttp2 (inside Node) resets a
// stream for any other control byte, which would lose the request just the same.
// `require_utf8` adds the §4.1 rule for values that go to an agent.
bool is_valid_field_value(std::string_view trimmed_value, bool require_utf8);

// Connection-specific fields that HTTP/2 forbids (RFC 9113 §8.2.2; hyper-h2 raises a connection
// error for each). `te` is allowed only with the value "trailers".
bool is_connection_specific(std::string_view lowercase_name, std::string_view value);

// Checks a header list the server is about to send to an agent against every §4.1 rule: lowercase
// token names, no connection-specific fields, trimmed valid values, the 64 KiB list budget and the
// 128-field cap. `:status` is counted for the caller (one field, "200"); `extra_fields` and
// `extra_bytes` reserve room for fields the caller adds later (e.g. content-length). Returns an
// empty view when the list is fine, else a short reason with static storage.
std::string_view agent_header_list_error(std::span<const HeaderField> fields, std::size_t extra_fields = 0,
                                         std::size_t extra_bytes = 0);

}  // namespace inkwire::proto
