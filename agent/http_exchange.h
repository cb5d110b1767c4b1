#pragma once
// A webhook envelope forwarded to the `forward_to` upstream (PROTOCOL.md §6.1-§6.3) and its
// answer posted back (§4.7). Toward our own relay both bodies stream: the request body goes to
// the upstream as it arrives (Content-Length when the third party sent one or the body was
// short enough to be complete at once, else chunked), and the response body is posted as it is
// read, so the agent's memory does not grow with body sizes.
#include <boost/asio/awaitable.hpp>
#include <cstdint>

#include "agent/data_plane_session.h"
#include "agent/envelope.h"
#include "agent/http_forwarder.h"

namespace inkwire::agent {

struct ExchangeOutcome {
  int status = 0;  // what the third party gets (0: nothing was posted)
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
};

boost::asio::awaitable<ExchangeOutcome> forward_http(DataPlaneSession& session, HttpForwarder& forwarder,
                                                     Envelope& envelope);

}  // namespace inkwire::agent
