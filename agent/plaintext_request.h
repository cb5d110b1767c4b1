#pragma once
// The request shape the passthrough plaintext service (PROTOCOL.md §6.5) builds from a third
// party's decrypted HTTP/1.1 bytes or HTTP/2 header list, before it is forwarded upstream. The
// conformance vectors in protocol-fixtures/h1_envelope_reference and h2_transcode_reference pin
// this shape down; tests/unit/agent/plaintext_request_test.cc replays them. Pure: no I/O.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.h"
#include "proto/h2_session.h"
#include "proto/header_rules.h"

namespace inkwire::agent {

struct ParsedRequest {
  std::string method;  // as sent (methods are case-sensitive)
  std::string path;    // the request target as sent: path and query, undecoded
  // Lowercase names, OWS-trimmed values, in arrival order. HTTP/1.1 framing fields
  // (transfer-encoding, content-length) stay here; they are dropped when the request is forwarded.
  // For HTTP/2 the pseudo-header fields come first, as received.
  std::vector<proto::HeaderField> headers;
  std::string body;  // de-chunked
  // HTTP/1.1 `Upgrade: websocket` with the upgrade connection option, or an HTTP/2 extended
  // CONNECT with `:protocol websocket` (RFC 8441).
  bool is_websocket = false;
};

// Why a request is refused: the status to answer and a short static kebab-case reason for logs.
struct RequestError {
  int status = 400;
  std::string_view reason;

  bool operator==(const RequestError&) const = default;
};

struct Http1Limits {
  std::size_t max_header_bytes = 64 * 1024;       // the request head, and the trailer section
  std::uint64_t max_body_bytes = 32 * 1024 * 1024;  // over it: 413
};

// One whole HTTP/1.x request at the start of `bytes` (bytes after it are ignored), parsed with
// Http1RequestParser. A request cut short is refused with reason "incomplete-request".
Expected<ParsedRequest, RequestError> parse_http1_request(std::string_view bytes, const Http1Limits& limits);

// An HTTP/2 request header list, pseudo-header fields first (nghttp2 has already enforced RFC 9113
// §8.3's rules on the wire; these checks make the function safe on any list): :method is
// required, and :path unless the request is a plain CONNECT. Names are lowercased.
Expected<ParsedRequest, RequestError> parse_h2_request(std::span<const proto::HeaderField> fields);

// The header list of a request as proto::H2Session reports it: :method, :scheme, :authority,
// :path and :protocol (those present) followed by the regular fields.
std::vector<proto::HeaderField> h2_request_fields(const proto::H2RequestHeaders& request);

}  // namespace inkwire::agent
