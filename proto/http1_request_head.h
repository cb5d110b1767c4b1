#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/expected.h"

// Strict checks of a third party's HTTP/1.x request head (RFC 9112), run by the public edge over the
// raw head bytes before Boost.Beast's parser sees them. Beast is lenient where leniency lets a
// request be framed two ways (request smuggling): it takes "Transfer-Encoding: gzip, chunked" as
// chunked, tolerates bare LF line ends and obs-fold, and trims whitespace before a field's colon.
// A front end that frames a body differently from the program behind it is how smuggling works, so
// everything that could be read two ways is refused here, with the status the edge answers.
//
// Sans-IO and allocation-free: both functions are one pass over their input.
namespace inkwire::proto {

// Where the head ends: the offset just past the blank line that ends it, or npos when more bytes
// are needed. The end is the first LF followed by an empty line ("\n" or "\r\n"), so a head with
// bare LF line ends ("\n\n", "\n\r\n") is found too — and then refused by check_request_head —
// instead of leaving the edge waiting for a "\r\n\r\n" that never comes.
//
// `from` lets a reader resume the scan as bytes arrive instead of rescanning the whole buffer:
// after a miss over `n` bytes, call again with from = n < 2 ? 0 : n - 2 (the terminator is at most
// 3 bytes long, so a match completed by new bytes starts at n - 2 or later).
std::size_t find_request_head_end(std::string_view bytes, std::size_t from = 0);

// A refusal: the status the edge answers with and a short static kebab-case reason, safe to log.
struct RequestHeadError {
  int status = 400;
  std::string_view reason;

  bool operator==(const RequestHeadError&) const = default;
};

// What the edge needs to know about an accepted head, so that it never rescans the fields.
struct RequestHeadFacts {
  // Views into the `head` passed to check_request_head: valid as long as those bytes are.
  std::string_view method;  // a token, case as sent (methods are case-sensitive)
  std::string_view target;  // non-empty, no control bytes, no SP; not otherwise checked (see
                            // request_target_error for what may be forwarded)
  std::string_view host;    // the Host value, OWS-trimmed; empty when absent (HTTP/1.0 only)
  bool http10 = false;      // HTTP/1.0; otherwise HTTP/1.1

  // Body framing, agreed with Beast's: at most one of the two is set; neither means no body.
  bool chunked = false;
  std::optional<std::uint64_t> content_length;

  // Connection options (comma-separated, case-insensitive, from every Connection field).
  bool connection_close = false;
  bool connection_keep_alive = false;
  bool connection_upgrade = false;
  // A WebSocket upgrade request: HTTP/1.1, an Upgrade field listing "websocket" and the "upgrade"
  // connection option (RFC 9110 §7.8: Upgrade without that option, or in HTTP/1.0, is ignored).
  // The handshake fields themselves (key, version) are the caller's to check.
  bool has_upgrade_websocket = false;
  // An Upgrade field lists "h2c", whatever the version or Connection say. The edge never upgrades
  // to cleartext HTTP/2; this is flagged so that it can refuse or strip it (h2c smuggling runs on
  // proxies that pass the upgrade through to a backend that honours it).
  bool upgrade_h2c = false;
  // "Expect: 100-continue" on HTTP/1.1 (RFC 9110 §10.1.1: a server ignores it in HTTP/1.0).
  bool expect_100_continue = false;

  std::size_t field_count = 0;  // header lines after the request line

  // Whether the connection may carry another request after this one's response (RFC 9112 §9.3).
  bool persistent() const { return !connection_close && (!http10 || connection_keep_alive); }
};

// Checks a whole head: from the request line through the blank line that ends it (exactly
// bytes[0, find_request_head_end(bytes)) of what the client sent). Refuses, with 400 unless said
// otherwise:
//   * NUL anywhere, bare LF, CR not followed by LF; a head that is not exactly one complete head;
//   * a request line other than `method SP target SP HTTP/d.d` with a token method and a target
//     free of control bytes and SP; a version other than 1.0 and 1.1 → 505;
//   * obs-fold, no colon, an empty or non-token name, whitespace before the colon, a value with a
//     control byte other than HTAB, or DEL;
//   * Content-Length with Transfer-Encoding; more than one Content-Length, a list in it (even
//     "5, 5"), or a value other than 1-19 ASCII digits;
//   * Transfer-Encoding other than one field saying exactly "chunked" (any case), or on HTTP/1.0;
//   * HTTP/1.1 without Host, or more than one Host;
//   * Expect other than 100-continue → 417.
// O(head.size()), no allocation.
Expected<RequestHeadFacts, RequestHeadError> check_request_head(std::string_view head);

}  // namespace inkwire::proto
