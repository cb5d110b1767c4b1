#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/expected.h"
#include "proto/header_rules.h"
#include "proto/protocol_constants.h"

// The envelope: the header list of the intake's 200 reply that carries one third-party request to
// the agent (PROTOCOL.md §4.6). Sans-IO: the edge parses the request, this decides what the agent
// may see, and the relay writes the result onto the parked intake stream.
namespace inkwire::proto {

// A third-party request as the edge received it, before any filtering.
struct InboundRequest {
  std::string method;
  std::string target;  // origin-form path plus optional ?query, raw, never normalised
  std::vector<std::pair<std::string, std::string>> headers;  // as received: any case, in order
  std::string client_ip;  // the peer address; brackets, a zone id or an IPv4-mapped form are fine
  std::string sni_host;   // empty when the client sent no SNI
};

// Every limit here is a public-facing bound (DESIGN.md house rule 6); the defaults are §8 A14's.
struct EnvelopeLimits {
  // Forwarded inkbox-h-* fields, after dropping and cookie joining (§4.6 rule 7). 100 keeps the
  // whole reply far below Node's 128-field reset.
  std::size_t max_fields = 100;
  // Sum of name + value bytes over the forwarded fields (names without the inkbox-h- prefix).
  std::size_t max_header_bytes = 32 * 1024;
  // The request target, which travels as inkbox-path outside the budget above. 8 KiB is what
  // common servers accept; with 32 KiB of headers it keeps the list within §4.1's 64 KiB.
  std::size_t max_target_bytes = 8 * 1024;
  // §8 A16: the SDKs' HTTP clients decompress upstream bodies but keep content-encoding, so the
  // edge asks upstreams for identity (and sends it even when the third party sent nothing, because
  // those clients would otherwise ask for gzip on their own).
  bool force_identity_encoding = true;
};

struct EnvelopeError {
  enum class Code {
    method_not_allowed,  // 405: CONNECT (outside a WebSocket handshake), TRACE, TRACK
    bad_method,          // 400: not a token
    bad_path,            // 400: not origin form, control bytes, malformed percent-escape (A35)
    uri_too_long,        // 414: target over EnvelopeLimits::max_target_bytes
    bad_header_name,     // 400: a name that is not a token
    bad_header_value,    // 400: CR, LF, NUL, another control byte, or invalid UTF-8 (A14)
    too_many_headers,    // 431: more than EnvelopeLimits::max_fields forwarded fields
    headers_too_large,   // 431: more than EnvelopeLimits::max_header_bytes, or over §4.1's budget
    internal,            // 500: the caller passed an unusable request or bridge id
  };
  Code code;
  int http_status;          // what the edge answers the third party
  std::string_view reason;  // short, static storage, safe to log
  std::string header_name;  // the lowercased offending header when there is one and it is a token
};

// Builds the envelope's header list for one request, in this order: inkbox-request-id,
// inkbox-route-kind, inkbox-method, inkbox-path, inkbox-ws-id | inkbox-tcp-id, inkbox-sni-host,
// inkbox-forwarded-for, then the forwarded inkbox-h-* fields (§4.6 rules 1–7).
//
// `bridge_id` is the ws id for ws-upgrade and the tcp id for tcp-stream (ignored for webhook); it
// and `request_id` must be URL-path-safe (RFC 3986 unreserved characters, 1–128 bytes) because
// the agent puts them into /_system/... paths.
// ws-upgrade always says method GET (an HTTP/2 extended CONNECT is a WebSocket GET to the agent).
// tcp-stream carries neither method, path nor forwarded headers, so the request's method, target
// and headers are ignored for it.
// On success the list satisfies every §4.1 rule with room left for :status and content-length.
Expected<std::vector<HeaderField>, EnvelopeError> build_envelope_headers(const InboundRequest& request,
                                                                         RouteKind kind,
                                                                         std::string_view request_id,
                                                                         std::string_view bridge_id,
                                                                         const EnvelopeLimits& limits = {});

}  // namespace inkwire::proto
