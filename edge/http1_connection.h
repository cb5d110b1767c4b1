#pragma once
// One public HTTP/1.1 connection (over TLS, or plain TCP when tunnels are served on the HTTP
// listener): requests one after another (keep-alive, no pipelining beyond what the buffer holds),
// each turned into an envelope through the relay's seam and answered from the agent's response
// post, with bodies streamed both ways through bounded pipes. A WebSocket upgrade turns the
// connection into a bridge until either side closes.
//
// Defences (house rule 6): a head deadline from its first byte (slowloris), an idle deadline
// between requests, a minimum body rate, a send deadline for clients that stop reading, the
// strict head checks of proto/http1_request_head (smuggling), and Beast's limits for the rest.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>

#include "common/byte_stream.h"
#include "edge/connection_watchdog.h"
#include "edge/edge_context.h"
#include "edge/error_page.h"
#include "edge/public_connection.h"
#include "edge/tunnel_gateway.h"
#include "proto/http1_request_head.h"
#include "proto/public_websocket.h"
#include "relay/exchange.h"

namespace inkwire::edge {

class Http1Connection final : public PublicConnection, public std::enable_shared_from_this<Http1Connection> {
 public:
  // `sni` is the ClientHello's name for a TLS connection (requests must carry a matching Host, else
  // 421); empty on the plain listener. `serve_tunnels` false: plain HTTP answered with 308.
  Http1Connection(EdgeContext& ctx, boost::asio::any_io_executor executor, std::unique_ptr<ByteStream> stream,
                  std::string sni, std::string client_ip, bool tls, bool serve_tunnels);
  boost::asio::awaitable<void> run() override;
  void drain() override;
  void force_close() override;

 private:
  struct Request;  // one request's state (http1_connection.cc)

  enum class Outcome { keep_alive, close };
  boost::asio::awaitable<bool> read_head(std::size_t& head_size);
  boost::asio::awaitable<bool> read_more();
  boost::asio::awaitable<Outcome> handle_request(std::size_t head_size);
  boost::asio::awaitable<Outcome> forward(Request& request);
  boost::asio::awaitable<bool> pump_request_body(Request& request, std::shared_ptr<relay::Exchange> exchange);
  boost::asio::awaitable<Outcome> send_response(Request& request, relay::Exchange& exchange, relay::ResponseHead head);
  boost::asio::awaitable<Outcome> run_websocket(Request& request, std::shared_ptr<relay::Exchange> exchange,
                                                relay::ResponseHead head);
  // The WebSocket after the 101: this coroutine is the only writer (to the client and to the
  // agent's pipe); websocket_reader() only reads the client and feeds the codec.
  boost::asio::awaitable<void> websocket_loop(Request& request, relay::Exchange& exchange);
  boost::asio::awaitable<void> websocket_reader();
  boost::asio::awaitable<Outcome> send_error(Request& request, const EdgeError& error, bool keep_alive);
  boost::asio::awaitable<Outcome> send_redirect(Request& request);
  boost::asio::awaitable<bool> write(std::string_view bytes);
  void finish(Request& request);
  void on_timeout(std::string_view kind);

  EdgeContext& ctx_;
  std::unique_ptr<ByteStream> stream_;
  std::string sni_;
  std::string client_ip_;
  bool tls_;
  bool serve_tunnels_;
  ConnectionWatchdog watchdog_;
  std::string in_;            // bytes read and not yet consumed start at in_off_
  std::unique_ptr<std::uint8_t[]> read_buffer_;  // scratch for one read (allocated at the first read)
  std::size_t in_off_ = 0;
  bool closed_ = false;
  bool draining_ = false;
  bool idle_ = false;         // between requests, no byte of the next one read yet
  // WebSocket state, shared by websocket_loop() and websocket_reader() (same executor).
  std::unique_ptr<proto::PublicWebSocket> ws_;
  std::unique_ptr<boost::asio::steady_timer> ws_wake_;    // wakes the loop
  std::unique_ptr<boost::asio::steady_timer> reader_wake_;  // wakes a reader paused for backpressure
  bool ws_done_ = false;
  std::uint64_t ws_bytes_in_ = 0;
  std::string ws_to_agent_;  // codec output the agent's pipe had no room for yet
  bool client_read_failed_ = false;  // the client's side ended without a CLOSE
  std::chrono::steady_clock::time_point last_client_bytes_;  // keepalive
  bool writing_ = false;      // a write is in progress (WebSocket: two directions share the stream)
};

}  // namespace inkwire::edge
