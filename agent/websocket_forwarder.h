#pragma once
// A ws-upgrade envelope served by a local WebSocket upstream (PROTOCOL.md §6.4 and §4.8): the
// agent dials forward_to, performs the client handshake and checks it, posts the accept (200)
// or the refusal, opens the bridge CONNECT, then pumps messages both ways — upstream frames
// (unmasked, fragments reassembled, PINGs answered here) become the bridge's length-prefixed JSON
// messages inside masked BINARY frames, and bridge messages become masked client frames.
#include <boost/asio/awaitable.hpp>

#include "agent/data_plane_session.h"
#include "agent/envelope.h"
#include "agent/http_exchange.h"
#include "agent/upstream_dialer.h"
#include "common/random_source.h"

namespace inkwire::agent {

struct WebSocketLimits {
  std::size_t max_message_bytes = 16 * 1024 * 1024;  // §4.8.2 recommendation; larger closes with 1009
  std::chrono::seconds bridge_wait{10};              // for the relay's 200 on the post and the CONNECT
  std::chrono::seconds close_linger{5};              // the other direction's end after one ended
};

boost::asio::awaitable<ExchangeOutcome> forward_websocket(DataPlaneSession& session, UpstreamDialer& dialer,
                                                          RandomSource& random, Envelope& envelope,
                                                          const WebSocketLimits& limits);

}  // namespace inkwire::agent
