#pragma once
// Reads a connection's TLS ClientHello without consuming it (MSG_PEEK), so that the connection
// can afterwards be handed whole to the relay, to OpenSSL, or byte for byte to a passthrough
// agent. Bounded in bytes (max_bytes) and time (deadline).
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <vector>

#include "proto/client_hello.h"

namespace inkwire::edge {

struct PeekOutcome {
  proto::ClientHelloResult hello;  // need_more here means the peer closed or the deadline passed
  bool timed_out = false;
  bool closed = false;  // EOF or a socket error before the ClientHello was complete
};

boost::asio::awaitable<PeekOutcome> peek_client_hello(boost::asio::ip::tcp::socket& socket, std::size_t max_bytes,
                                                      std::chrono::steady_clock::time_point deadline);

}  // namespace inkwire::edge
