#pragma once
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.h"
#include "proto/header_rules.h"

// The agent's answer to one envelope: POST /_system/response/{request_id} (PROTOCOL.md §4.7).
// Sans-IO: the relay hands over the post's header block, this says what the third party gets.
namespace inkwire::proto {

struct ResponsePost {
  int status = 0;          // inkbox-status, 100..599
  std::string request_id;  // inkbox-request-id, empty when absent; the relay compares it to the path
  // inkbox-reason for the log (§8 A9): top-level first (TS), then inkbox-h-inkbox-reason (Python).
  std::string reason;
  // Headers for the third party, in posted order: inkbox-h- removed, names lowercased, without the
  // response hop-by-hop set, proxy-connection, content-length, transfer-encoding and any inkbox-*
  // name, and with every cookie of a set-cookie field as its own set-cookie (split_set_cookie).
  // content-length is left to the edge, which knows the body (see response_has_body).
  std::vector<HeaderField> headers;
  // Forwarded fields left out because the name is not a token or the value has a control character
  // (they could split an HTTP/1.1 response); worth a log line and a counter.
  std::size_t dropped_invalid = 0;
};

struct PostError {
  enum class Code {
    missing_status,   // no inkbox-status
    bad_status,       // not exactly three digits from 100 to 599 ("200 ", "abc", "99", "600", "")
    repeated_status,  // more than one inkbox-status: there is no right one to pick
  };
  Code code;
  int post_status = 400;         // the relay's reply to the post (§4.7 "Errors")
  int third_party_status = 502;  // what the third party gets instead
  std::string_view reason;       // short, static storage, safe to log
};

// Reads the post's header block. Only inkbox-status, inkbox-request-id, inkbox-reason and the
// inkbox-h-* fields matter here; authentication (x-tunnel-id, x-tunnel-secret) and the body are
// the relay's business. Names are matched without case, though HTTP/2 delivers them lowercase.
Expected<ResponsePost, PostError> parse_response_post(std::span<const HeaderField> post_headers);

// inkbox-status as §4.7 allows it: exactly three ASCII digits, 100 to 599, nothing around them.
std::optional<int> parse_post_status(std::string_view text);

// Whether the third party's response carries a body and a recomputed content-length (§8 A17):
// never for HEAD, for 1xx, 204 or 304 (RFC 9110 §6.4.1). For HEAD and 304 the SDK dropped the
// origin's content-length, so the edge cannot send a truthful one and leaves it out.
bool response_has_body(std::string_view request_method, int status);

}  // namespace inkwire::proto
