#include "agent/plaintext_forwarding.h"

#include "agent/upstream_request_builder.h"
#include "proto/path_check.h"

namespace inkwire::agent {

namespace {

// An upstream's refusal of a WebSocket is relayed with its body up to this size (HTTP/1.1).
constexpr std::size_t kMaxWebSocketRefusalBody = 64 * 1024;
// After one direction of a spliced WebSocket ended, the other has this long to end too.
constexpr auto kWebSocketLinger = std::chrono::seconds(5);

}  // namespace

std::optional<PlaintextFailure> check_request_target(std::string_view path) {
  if (path.empty() || path.front() != '/' || proto::invalid_path_reason(path)) {
    return PlaintextFailure{400, "invalid-path", "invalid path\n"};
  }
  return std::nullopt;
}

PlaintextFailure websocket_refusal(const UpstreamWebSocketRefusal& refusal) {
  if (refusal.status == 504) return PlaintextFailure{504, refusal.reason, "response deadline exceeded\n"};
  if (refusal.reason == "upstream-unreachable") return PlaintextFailure{502, refusal.reason, "upstream unreachable\n"};
  if (refusal.reason == "ws-upstream-refused") {
    return PlaintextFailure{refusal.status, refusal.reason, "the upstream refused the WebSocket\n"};
  }
  return PlaintextFailure{502, refusal.reason, "WebSocket handshake with the upstream failed\n"};
}

UpstreamWebSocketRequest websocket_request(const ParsedRequest& request, const PlaintextServerSettings& settings) {
  UpstreamWebSocketRequest upstream;
  upstream.path = request.path;
  upstream.headers = request.headers;
  upstream.public_host = settings.public_host;
  // §6.5: no client IP in passthrough, so no X-Forwarded-For.
  upstream.max_refusal_body = kMaxWebSocketRefusalBody;
  return upstream;
}

SpliceLimits websocket_splice_limits(const PlaintextServerSettings& settings) {
  SpliceLimits limits;
  limits.idle_timeout = settings.websocket_idle_timeout;
  limits.send_timeout = settings.idle_timeout;
  limits.linger = kWebSocketLinger;
  return limits;
}

boost::asio::awaitable<Expected<std::unique_ptr<UpstreamExchange>, PlaintextFailure>> forward_request(
    ParsedRequest& request, const PlaintextServerSettings& settings, HttpForwarder& forwarder, const Logger& logger) {
  UpstreamRequestInput input;
  input.method = request.method;
  input.path = request.path;
  input.headers = request.headers;
  input.body = std::move(request.body);
  input.public_host = settings.public_host;
  // §6.5: no client IP in passthrough, so neither X-Forwarded-For nor Forwarded.
  const UpstreamRequest upstream_request = build_upstream_request(forwarder.target(), std::move(input));
  const auto deadline = std::chrono::steady_clock::now() + settings.response_deadline;
  auto started = co_await forwarder.start(upstream_request, deadline);
  if (!started) {
    logger->info("agent: passthrough {} {}: {}", request.method, request.path, started.error());
    // The forwarder reports its deadline as "... timed out"; anything else is unreachable or broken.
    if (started.error().find("timed out") != std::string::npos) {
      co_return unexpected(PlaintextFailure{504, "response-deadline-exceeded", "response deadline exceeded\n"});
    }
    co_return unexpected(PlaintextFailure{502, "upstream-unreachable", "upstream unreachable\n"});
  }
  const UpstreamResponseHead& head = (*started)->head();
  if (head.status < 200) {
    logger->info("agent: passthrough {} {}: upstream answered {}", request.method, request.path, head.status);
    co_return unexpected(PlaintextFailure{502, "bad-upstream-response", "bad upstream response\n"});
  }
  if (head.content_length && *head.content_length > settings.max_outbound_body_bytes) {
    co_return unexpected(PlaintextFailure{502, "response-too-large", "response too large\n"});
  }
  co_return std::move(*started);
}

}  // namespace inkwire::agent
