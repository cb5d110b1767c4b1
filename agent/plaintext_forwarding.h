#pragma once
// What the HTTP/1.1 and HTTP/2 sides of the passthrough plaintext service (PROTOCOL.md §6.5) share:
// the checks a parsed request passes before it is forwarded, the upstream request itself (§6.3's
// header injection without X-Forwarded-For), and the mapping of forwarder failures to the status
// the third party gets, and the WebSocket pieces both sides share (the upstream handshake's refusals,
// the splice's bounds).
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string_view>

#include "agent/byte_splice.h"
#include "agent/http_forwarder.h"
#include "agent/plaintext_request.h"
#include "agent/plaintext_server.h"
#include "agent/upstream_websocket.h"
#include "common/expected.h"

namespace inkwire::agent {

// A refusal answered by the plaintext service itself: status, a short static reason for logs and
// a one-line text body for the third party.
struct PlaintextFailure {
  int status = 502;
  std::string_view reason;
  std::string_view message;
};

// Checks done before anything is forwarded: an origin-form target ("/..."; the absolute and
// asterisk forms are not forwarded) and §6.2's path check, both 400 `invalid-path`.
std::optional<PlaintextFailure> check_request_target(std::string_view path);

// A WebSocket upgrade (HTTP/1.1) or extended CONNECT (HTTP/2) whose upstream handshake failed:
// the upstream's own status, 504 on the response deadline, else 502.
PlaintextFailure websocket_refusal(const UpstreamWebSocketRefusal& refusal);

// The upstream handshake's request for a third party's WebSocket: §6.4's, without X-Forwarded-For.
UpstreamWebSocketRequest websocket_request(const ParsedRequest& request, const PlaintextServerSettings& settings);

// The bounds of a spliced WebSocket: settings.websocket_idle_timeout without a byte either way,
// idle_timeout for one write, and a 5 s linger after one direction ended.
SpliceLimits websocket_splice_limits(const PlaintextServerSettings& settings);

// Sends `request` (its body moved out) to the upstream and waits for the response head, at most
// settings.response_deadline from now: 504 on that deadline, 502 when the upstream cannot be
// reached or fails, 502 when its announced body is over max_outbound_body_bytes or its status is
// not a final one (a 1xx or 101 cannot be relayed as the answer).
boost::asio::awaitable<Expected<std::unique_ptr<UpstreamExchange>, PlaintextFailure>> forward_request(
    ParsedRequest& request, const PlaintextServerSettings& settings, HttpForwarder& forwarder, const Logger& logger);

}  // namespace inkwire::agent
