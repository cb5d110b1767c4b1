#pragma once
// The request the agent sends to its `forward_to` upstream (PROTOCOL.md §6.3): the joined URL's
// origin-form target, Host, X-Forwarded-Host, X-Forwarded-Proto: https, X-Forwarded-For and
// Forwarded only when the client address is known, then the third party's headers minus the
// hop-by-hop set and the forwarding fields set here. Shared by the edge-mode envelope path
// (data_plane_session.cc) and the passthrough plaintext service (§6.5, which knows no client IP).
// Pure: no I/O.
#include <span>
#include <string>
#include <string_view>

#include "agent/http_forwarder.h"
#include "proto/forward_target.h"
#include "proto/header_rules.h"

namespace inkwire::agent {

// True for a (lowercase) request field the agent never passes on: the request hop-by-hop set of
// §4.6 rule 3, the forwarding fields it writes itself (§6.3), the framing fields the forwarder
// derives from the body (content-length; transfer-encoding is hop-by-hop), `expect` (the body is
// sent whole, so there is nothing to wait for), `proxy-connection`, `http2-settings`, and HTTP/2
// pseudo-header fields (names starting with ':'), which have no HTTP/1.1 form.
bool is_unforwarded_request_header(std::string_view lowercase_name);

// True for a (lowercase) response field a response post never carries (§4.7): the response
// hop-by-hop set, and the framing the post states itself (content-length).
bool is_unposted_response_header(std::string_view lowercase_name);

struct UpstreamRequestInput {
  std::string_view method;
  // The third party's path and query, undecoded (already checked with proto::invalid_path_reason).
  std::string_view path;
  // Lowercase names, in arrival order.
  std::span<const proto::HeaderField> headers;
  std::string body;
  std::string_view public_host;    // X-Forwarded-Host
  std::string_view forwarded_for;  // client IP; empty in passthrough (§6.5): no X-Forwarded-For
};

// Builds the upstream request. Several `cookie` fields (HTTP/2 splits them, RFC 9113 §8.2.3) are
// joined with "; " into one at the place of the first, since an HTTP/1.1 request carries one
// Cookie field (RFC 6265 §5.4). The body is sent for every method but GET and HEAD, as the TS SDK
// does.
UpstreamRequest build_upstream_request(const proto::ForwardTarget& target, UpstreamRequestInput input);

}  // namespace inkwire::agent
