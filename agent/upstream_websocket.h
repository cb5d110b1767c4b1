#pragma once
// The client side of a WebSocket handshake with the local `forward_to` upstream (PROTOCOL.md §6.4),
// shared by the data-plane bridge (websocket_forwarder.cc) and the passthrough plaintext service
// (§6.5): dial, send an HTTP/1.1 `GET <joined path>` upgrade with a fresh key, and check the answer
// (status 101, the right Sec-WebSocket-Accept, no extensions, a subprotocol among those offered).
// The checks live once so both paths refuse the same upstreams the same way.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agent/upstream_dialer.h"
#include "common/expected.h"
#include "common/logging.h"
#include "common/random_source.h"
#include "proto/header_rules.h"

namespace inkwire::agent {

struct UpstreamWebSocketRequest {
  std::string_view path;  // the third party's request target, joined to forward_to
  // The third party's fields, lowercase names. Pseudo-header fields (":...") are ignored; the
  // Sec-WebSocket-Protocol offer is passed unchanged; hop-by-hop and handshake fields are dropped.
  std::span<const proto::HeaderField> headers;
  std::string_view public_host;    // X-Forwarded-Host
  std::string_view forwarded_for;  // X-Forwarded-For; empty: none (passthrough has no client IP)
  // A refusal's (non-101) body is read up to this many bytes, within the deadline; 0: not read.
  std::size_t max_refusal_body = 0;
};

struct UpstreamWebSocketAccepted {
  std::unique_ptr<UpstreamSocket> upstream;  // open, its deadline disarmed
  std::string subprotocol;                   // the upstream's choice; empty when it chose none
  // The 101's fields (lowercase names) minus hop-by-hop and handshake ones, except that the chosen
  // sec-websocket-protocol is kept.
  std::vector<proto::HeaderField> headers;
  std::string leftover;  // bytes that came after the 101's head: the upstream's first frames
};

struct UpstreamWebSocketRefusal {
  // The upstream's own final status (ws-upstream-refused), 504 on the deadline, else 502.
  int status = 502;
  std::string_view reason;  // "upstream-unreachable", "ws-handshake-failed" or "ws-upstream-refused"
  // ws-upstream-refused only: the answer's fields minus hop-by-hop and framing ones, and its body
  // when it was read whole (see max_refusal_body).
  std::vector<proto::HeaderField> headers;
  std::optional<std::string> body;
};

// Everything (connect, TLS, request, response head, refusal body) happens before `deadline`.
boost::asio::awaitable<Expected<UpstreamWebSocketAccepted, UpstreamWebSocketRefusal>> upstream_websocket_handshake(
    UpstreamDialer& dialer, RandomSource& random, const UpstreamWebSocketRequest& request,
    std::chrono::steady_clock::time_point deadline, const Logger& logger);

// The fields a WebSocket proxy does not pass on as they are: hop-by-hop, framing, the handshake's
// own, and the X-Forwarded-*/Forwarded ones the agent sets itself. Lowercase `name`.
bool is_hop_or_websocket_handshake_field(std::string_view name);

}  // namespace inkwire::agent
