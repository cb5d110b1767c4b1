#pragma once
// The passthrough plaintext service (PROTOCOL.md §6.5). In a passthrough tunnel the agent
// terminates the third party's TLS itself; once the handshake is done, the decrypted bytes are
// served here as HTTP/1.1 (ALPN "http/1.1" or none) or HTTP/2 (ALPN "h2"), and each request goes
// to the local `forward_to` upstream over HTTP/1.1 through the HttpForwarder, with §6.3's header
// injection minus X-Forwarded-For and Forwarded (no client IP is known in passthrough).
// WebSocket (HTTP/1.1 Upgrade, HTTP/2 extended CONNECT) gets §6.4's upstream handshake, then the
// bytes are spliced both ways unchanged (client frames are masked, upstream frames are not, as on
// any WebSocket connection, so nothing is re-framed).
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/http_forwarder.h"
#include "common/byte_stream.h"
#include "common/logging.h"

namespace inkwire::agent {

struct PlaintextServerSettings {
  std::string public_host;  // X-Forwarded-Host
  std::uint64_t max_inbound_body_bytes = 32 * 1024 * 1024;   // over it: h1 → 413, h2 → RST_STREAM
  std::uint64_t max_outbound_body_bytes = 32 * 1024 * 1024;  // upstream body over it → 502
  std::chrono::milliseconds response_deadline{30000};        // per request → 504
  std::chrono::seconds idle_timeout{60};                     // keep-alive idle bound; also one write's bound
  // A spliced WebSocket that moves no byte either way for this long is closed (pings count).
  std::chrono::seconds websocket_idle_timeout{600};
  std::size_t max_header_bytes = 64 * 1024;
};

// Serves until the peer closes or a fatal error; never throws for network input. Every wait on the
// third party is bounded by idle_timeout (reads between and within requests, writes it does not
// take); a request waits for its upstream at most response_deadline (then 504), and a response
// body that stalls is bounded by the forwarder. On return every task it started has ended, our
// direction has been finished (close_notify, FIN) and the stream is closed.
//
// The stream, settings, forwarder and logger must outlive the call; all of it runs on the calling
// coroutine's executor, which must be the stream's and the forwarder's (neither is thread-safe).
boost::asio::awaitable<void> serve_plaintext(ByteStream& stream, std::string_view alpn,
                                             const PlaintextServerSettings& settings, HttpForwarder& forwarder,
                                             Logger logger);

}  // namespace inkwire::agent
