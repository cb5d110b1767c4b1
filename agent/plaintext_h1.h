#pragma once
// The HTTP/1.1 side of the passthrough plaintext service (PROTOCOL.md §6.5): one coroutine reads
// requests with Http1RequestParser (keep-alive and pipelining, Content-Length and chunked bodies),
// forwards each through the HttpForwarder and writes the upstream's answer back with its own
// framing (Content-Length when known, else chunked; close-delimited for HTTP/1.0 clients).
// Refusals: 400 (bad request, bad path), 413 (body over the cap), 417, 431, 505, then close.
// `Upgrade: websocket`: §6.4's handshake with the upstream; on its 101 the client gets its own 101
// and the connection becomes a byte splice to the upstream until either side ends; any other answer
// is relayed as the response (502 for an invalid handshake, 504 on the response deadline).
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "agent/deadline_watchdog.h"
#include "agent/http1_request_parser.h"
#include "agent/plaintext_forwarding.h"
#include "agent/plaintext_server.h"
#include "common/random_source.h"

namespace inkwire::agent {

class PlaintextH1Connection {
 public:
  PlaintextH1Connection(boost::asio::any_io_executor executor, ByteStream& stream,
                        const PlaintextServerSettings& settings, HttpForwarder& forwarder, Logger logger);
  // Serves requests until the client closes, a timeout or an error; then finishes and closes the
  // stream. Returns only after its watchdog has ended.
  boost::asio::awaitable<void> run();

 private:
  enum class Outcome { keep_alive, close };

  boost::asio::awaitable<Outcome> serve_one();
  boost::asio::awaitable<Outcome> on_head();
  boost::asio::awaitable<Outcome> forward();
  // Serves the whole upgrade request (it has no body); keep_alive only after a refusal that left
  // the connection usable.
  boost::asio::awaitable<Outcome> serve_websocket_upgrade();
  boost::asio::awaitable<Outcome> relay_websocket_refusal(const UpstreamWebSocketRefusal& refusal);
  boost::asio::awaitable<Outcome> send_response(UpstreamExchange& exchange);
  // A text/plain refusal; keep_alive only when the whole request has been read.
  boost::asio::awaitable<Outcome> send_failure(const PlaintextFailure& failure, bool keep_alive);
  boost::asio::awaitable<bool> read_more();
  boost::asio::awaitable<bool> write(std::string_view bytes);
  boost::asio::awaitable<void> lingering_close();
  std::string_view pending() const { return std::string_view(in_).substr(in_off_); }

  ByteStream& stream_;
  const PlaintextServerSettings& settings_;
  HttpForwarder& forwarder_;
  Logger logger_;
  DeadlineWatchdog watchdog_;
  Http1RequestParser parser_;
  std::string in_;  // bytes read and not yet consumed start at in_off_
  std::size_t in_off_ = 0;
  std::unique_ptr<std::uint8_t[]> read_buffer_;
  SecureRandom random_;  // Sec-WebSocket-Key toward the upstream
  bool closed_ = false;  // the stream failed or timed out: nothing more is read or written
  bool head_only_ = false;  // the current request is HEAD
};

}  // namespace inkwire::agent
