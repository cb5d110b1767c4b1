#pragma once
// The HTTP/2 side of the passthrough plaintext service (PROTOCOL.md §6.5): proto::H2Session in the
// server role, driven from memory by one reader and one coalescing writer, and one coroutine per
// request stream. A stream's body is gathered (the upstream request is sent whole), the request
// goes to the upstream over HTTP/1.1 through the HttpForwarder, and the answer streams back as
// DATA under the client's flow control.
//
// Advertised: MAX_CONCURRENT_STREAMS 100, ENABLE_CONNECT_PROTOCOL 1 (RFC 8441). A body over
// max_inbound_body_bytes gets a 413 (when nothing was answered yet) and RST_STREAM(NO_ERROR), as
// RFC 9113 §8.1 allows for a request the server stops reading. Bounds: the header list
// (max_header_bytes), 100 streams, each stream's body (the cap), nghttp2's flood limits, the idle
// deadline when no stream is open (GOAWAY), and a send deadline for a client that stops reading.
//
// An extended CONNECT with `:protocol websocket` gets §6.4's handshake with the upstream (a key of
// our own); on its 101 the stream is answered 200 and becomes a tunnel: DATA payload bytes go to
// the upstream socket, credited back only once written there, and the upstream's bytes come back
// as DATA under the client's flow control. END_STREAM and the upstream's FIN map onto each other.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/deadline_watchdog.h"
#include "agent/plaintext_forwarding.h"
#include "agent/plaintext_server.h"
#include "agent/task_group.h"
#include "common/random_source.h"
#include "proto/h2_session.h"

namespace inkwire::agent {

class PlaintextH2Connection {
 public:
  PlaintextH2Connection(boost::asio::any_io_executor executor, ByteStream& stream,
                        const PlaintextServerSettings& settings, HttpForwarder& forwarder, Logger logger);
  ~PlaintextH2Connection();
  // Serves until the client closes, GOAWAY after idling, or an error; returns once every stream
  // task, the writer and the watchdogs have ended, with the stream closed.
  boost::asio::awaitable<void> run();

 private:
  struct Stream;
  class TunnelBytes;  // a tunnel stream seen as a ByteStream, for the splice

  boost::asio::awaitable<void> write_loop();
  boost::asio::awaitable<void> serve_stream(std::int32_t id);
  boost::asio::awaitable<void> serve_request(Stream& stream);
  boost::asio::awaitable<void> serve_websocket_connect(Stream& stream);
  boost::asio::awaitable<void> send_response(Stream& stream, UpstreamExchange& exchange);
  boost::asio::awaitable<void> respond_failure(Stream& stream, const PlaintextFailure& failure);
  boost::asio::awaitable<bool> send_body(Stream& stream, std::string_view bytes);
  boost::asio::awaitable<bool> stream_wait(Stream& stream);
  void handle_events();
  void on_request(proto::H2RequestHeaders&& headers);
  void on_data(proto::H2Data&& data);
  void on_stream_closed(const proto::H2StreamClosed& closed);
  void wake_stream(std::int32_t id);
  // Credits the tunnel bytes the splice has taken (and so written upstream) since the last call.
  void credit_tunnel(Stream& stream);
  void wake_writer() { write_wake_.cancel(); }
  void go_away(std::uint32_t code);
  void force_close();
  void update_idle();

  ByteStream& stream_;
  const PlaintextServerSettings& settings_;
  HttpForwarder& forwarder_;
  Logger logger_;
  std::unique_ptr<proto::H2Session> h2_;
  boost::asio::steady_timer write_wake_;
  DeadlineWatchdog idle_watchdog_;
  DeadlineWatchdog send_watchdog_;
  TaskGroup tasks_;
  std::map<std::int32_t, std::unique_ptr<Stream>> streams_;
  std::uint64_t buffered_body_bytes_ = 0;  // request bodies held by all streams
  // Streams to reset (NO_ERROR) once their response HEADERS have been serialized (write_loop).
  SecureRandom random_;  // Sec-WebSocket-Key toward the upstream
  bool closed_ = false;   // the transport is gone: nothing more is read or written
  bool closing_ = false;  // GOAWAY sent or received: no new streams; the writer ends when done
};

}  // namespace inkwire::agent
