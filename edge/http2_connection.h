#pragma once
// One public HTTP/2 connection (TLS, ALPN h2): proto::H2Session driven from memory, one reader,
// one coalescing writer, and one small coroutine per request stream that dispatches it through
// the relay's seam, submits the agent's answer and streams the body. RFC 8441 extended CONNECT
// with :protocol websocket becomes a ws-upgrade, bridged with proto::PublicWebSocket over the
// stream's DATA.
//
// Defences: nghttp2's own flood limits (RST_STREAM token bucket = Rapid Reset, CONTINUATION cap,
// SETTINGS and ACK floods), a header-list cap, 100 concurrent streams, a per-connection budget of
// glitches (rejected frames, resets) per minute, the idle deadline when no stream is open, and a
// send deadline for a client that stops reading.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/byte_stream.h"
#include "edge/connection_watchdog.h"
#include "edge/edge_context.h"
#include "edge/error_page.h"
#include "edge/public_connection.h"
#include "edge/tunnel_gateway.h"
#include "proto/h2_session.h"
#include "proto/public_websocket.h"
#include "relay/exchange.h"

namespace inkwire::edge {

class Http2Connection final : public PublicConnection, public std::enable_shared_from_this<Http2Connection> {
 public:
  Http2Connection(EdgeContext& ctx, boost::asio::any_io_executor executor, std::unique_ptr<ByteStream> stream,
                  std::string sni, std::string client_ip);
  ~Http2Connection() override;
  boost::asio::awaitable<void> run() override;
  void drain() override;
  void force_close() override;

 private:
  struct Stream;
  boost::asio::awaitable<void> write_loop();
  boost::asio::awaitable<void> serve_stream(std::int32_t id);
  boost::asio::awaitable<bool> stream_wait(Stream& stream);
  boost::asio::awaitable<void> respond_error(Stream& stream, const EdgeError& error);
  boost::asio::awaitable<void> send_response(Stream& stream, relay::ResponseHead head);
  boost::asio::awaitable<void> run_websocket(Stream& stream, relay::ResponseHead head);
  boost::asio::awaitable<bool> send_body(Stream& stream, std::string_view bytes);
  void handle_events();
  void on_request(proto::H2RequestHeaders&& headers);
  void on_data(proto::H2Data&& data);
  void on_stream_closed(const proto::H2StreamClosed& closed);
  void attach_body(Stream& stream);
  void flush_ws_to_agent(Stream& stream);
  void wake_stream(std::int32_t id);
  void wake_writer() { write_wake_.cancel(); }
  bool check_glitches();
  void go_away(std::uint32_t code, std::string_view why);
  void finish(Stream& stream);
  void update_idle();

  EdgeContext& ctx_;
  std::unique_ptr<ByteStream> stream_;
  std::string sni_;
  std::string client_ip_;
  std::unique_ptr<proto::H2Session> h2_;
  boost::asio::steady_timer write_wake_;
  ConnectionWatchdog idle_watchdog_;
  ConnectionWatchdog send_watchdog_;
  std::map<std::int32_t, std::unique_ptr<Stream>> streams_;
  bool closed_ = false;
  bool closing_ = false;  // GOAWAY sent: the writer ends once the session has nothing left
  std::chrono::steady_clock::time_point glitch_window_start_;
  std::uint64_t glitches_at_window_start_ = 0;
};

}  // namespace inkwire::edge
