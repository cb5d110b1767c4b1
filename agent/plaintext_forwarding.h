#pragma once
// What the HTTP/1.1 and HTTP/2 sides of the passthrough plaintext service (PROTOCOL.md §6.5) share:
// the checks a parsed request passes before it is forwarded, the upstream request itself (§6.3's
// header injection without X-Forwarded-For), and the mapping of forwarder failures to the status
// the third party gets.
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string_view>

#include "agent/http_forwarder.h"
#include "agent/plaintext_request.h"
#include "agent/plaintext_server.h"
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

// The refusal given to WebSocket requests (HTTP/1.1 Upgrade, HTTP/2 extended CONNECT) until
// WebSocket bridging lands in passthrough mode: 501.
PlaintextFailure websocket_not_supported();

// Sends `request` (its body moved out) to the upstream and waits for the response head, at most
// settings.response_deadline from now: 504 on that deadline, 502 when the upstream cannot be
// reached or fails, 502 when its announced body is over max_outbound_body_bytes or its status is
// not a final one (a 1xx or 101 cannot be relayed as the answer).
boost::asio::awaitable<Expected<std::unique_ptr<UpstreamExchange>, PlaintextFailure>> forward_request(
    ParsedRequest& request, const PlaintextServerSettings& settings, HttpForwarder& forwarder, const Logger& logger);

}  // namespace inkwire::agent
