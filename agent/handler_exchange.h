#pragma once
// Envelopes served by in-process handlers (PROTOCOL.md §6.6) instead of a forward_to URL: the
// HTTP handler gets the request (body as a stream) and a context whose cancellation fires at the
// response deadline, when a 504 has already gone out; the WebSocket handler gets a session it
// accepts (opening the bridge) or rejects.
#include <boost/asio/awaitable.hpp>

#include "agent/data_plane_session.h"
#include "agent/envelope.h"
#include "agent/http_exchange.h"
#include "common/random_source.h"
#include "inkwire/handler.h"

namespace inkwire::agent {

boost::asio::awaitable<ExchangeOutcome> serve_with_handler(DataPlaneSession& session, const HttpHandler& handler,
                                                           Envelope& envelope);

boost::asio::awaitable<ExchangeOutcome> serve_with_ws_handler(DataPlaneSession& session,
                                                              const WebSocketHandler& handler, RandomSource& random,
                                                              Envelope& envelope);

}  // namespace inkwire::agent
