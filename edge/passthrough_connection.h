#pragma once
// A third party's TLS connection to a passthrough tunnel (PROTOCOL.md §4.9): the edge never
// terminates it. The ClientHello was only peeked at, so every byte the client sent — the
// ClientHello first — goes to the agent through a tcp-stream bridge, and the agent's bytes come
// back unchanged. The agent presents its own certificate.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>

#include "edge/connection_watchdog.h"
#include "edge/edge_context.h"
#include "edge/public_connection.h"
#include "edge/tunnel_gateway.h"
#include "relay/exchange.h"

namespace inkwire::edge {

class PassthroughConnection final : public PublicConnection,
                                    public std::enable_shared_from_this<PassthroughConnection> {
 public:
  PassthroughConnection(EdgeContext& ctx, boost::asio::ip::tcp::socket socket, TunnelTarget target, std::string sni,
                        std::string client_ip);
  boost::asio::awaitable<void> run() override;
  void drain() override {}  // a raw byte stream has no request boundary: it runs until it ends or is forced
  void force_close() override;

 private:
  boost::asio::awaitable<void> client_to_agent(relay::Exchange& exchange);
  boost::asio::awaitable<void> agent_to_client(relay::Exchange& exchange);
  void one_direction_done();

  EdgeContext& ctx_;
  boost::asio::ip::tcp::socket socket_;
  TunnelTarget target_;
  std::string sni_;
  std::string client_ip_;
  ConnectionWatchdog watchdog_;
  std::shared_ptr<relay::Exchange> exchange_;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
  int directions_done_ = 0;
};

}  // namespace inkwire::edge
