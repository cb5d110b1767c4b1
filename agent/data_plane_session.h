#pragma once
// One data-plane connection of the agent (PROTOCOL.md §4): TLS + HTTP/2 to the relay, hello, the
// intake pool, and one task per envelope that forwards it to the local upstream and posts the
// answer back, streaming the body. One reader, one coalescing writer, one timer for PINGs (every
// 20 s, 10 s for the ACK, as the TS SDK). The reconnect loop around it is TunnelRuntime.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "agent/envelope.h"
#include "agent/http_forwarder.h"
#include "agent/tunnel_stream.h"
#include "common/logging.h"
#include "common/random_source.h"
#include "common/tls_socket.h"
#include "inkwire/handler.h"
#include "proto/h2_session.h"

namespace inkwire::agent {

struct SessionSettings {
  std::string host;       // the data-plane host to dial (name or IP literal)
  std::string port = "443";
  std::string authority;  // :authority, the zone as the server gave it (host[:port])
  std::string tunnel_id;
  std::string secret;
  int pool_size = 4;
  std::string public_host;
  std::uint64_t max_inbound_body_bytes = 32 * 1024 * 1024;
  std::uint64_t max_outbound_body_bytes = 32 * 1024 * 1024;
  std::chrono::seconds ping_interval{20};
  std::chrono::seconds ping_timeout{10};
  std::chrono::seconds connect_timeout{10};
  // After close() or a drain GOAWAY: how long in-flight requests and WebSocket sessions may go on.
  std::chrono::seconds drain_timeout{30};
};

// How a session ended, which decides what the reconnect loop does (§4.10).
enum class SessionEnd {
  transient,    // connection lost, protocol error, hello 5xx/409...: back off and reconnect
  normal,       // the server closed cleanly after a GOAWAY (drain): reconnect at once
  auth_failed,  // hello 401/403: terminal
  superseded,   // §9 superseded signals: terminal
  closed,       // close() was called
};

struct SessionResult {
  SessionEnd end = SessionEnd::transient;
  std::string detail;  // one line for the status callback and logs
  bool was_connected = false;  // the hello succeeded (resets the backoff)
  bool draining = false;       // returned early: the session still finishes its in-flight work
};

// One line per request for the console (`inkwire connect`) and the library's callback.
struct RequestRecord {
  std::string method;
  std::string path;
  int status = 0;
  std::chrono::steady_clock::duration duration{};
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
};

// Where envelopes go (PROTOCOL.md §6.1): a forward_to upstream and/or in-process handlers, and for
// a passthrough tunnel the TLS terminator. Owned by the runtime; sessions only point at it.
struct Dispatch {
  HttpForwarder* forwarder = nullptr;           // forward_to (URL mode)
  const HttpHandler* http_handler = nullptr;    // wins over forwarder for webhooks
  const WebSocketHandler* ws_handler = nullptr; // wins over forwarder for ws-upgrade
  struct PassthroughService* passthrough = nullptr;
};

class DataPlaneSession : public std::enable_shared_from_this<DataPlaneSession>, public StreamOwner {
 public:
  DataPlaneSession(boost::asio::any_io_executor executor, const SessionSettings& settings, SSL_CTX* tls,
                   const Dispatch& dispatch, Logger logger);
  ~DataPlaneSession() override;

  boost::asio::awaitable<SessionResult> run();
  // Graceful: GOAWAY, in-flight requests finish (bounded by the response deadline), then close.
  void close();
  std::function<void()> on_connected;
  std::function<void(const RequestRecord&)> on_request;
  // The session that took over from this draining one: answers are posted over it once it is up.
  void set_successor(std::weak_ptr<DataPlaneSession> next) { successor_ = std::move(next); }

  // ---- For the tasks that handle envelopes (http_exchange, websocket_forwarder) ----
  // Opens /_system/response/{request_id} (§4.7) with the status, headers and reason. The body, if
  // any, is written to the returned stream and finished with finish_sending(); its own reply (the
  // relay's 200) can be awaited with wait_headers(). Null when the connection is gone.
  std::shared_ptr<TunnelStream> open_post(const Envelope& envelope, int status, std::string_view reason,
                                          const std::vector<proto::HeaderField>& headers,
                                          std::optional<std::uint64_t> content_length, bool empty_body);
  // A short text answer (errors): the whole post in one go.
  boost::asio::awaitable<void> post_simple(const Envelope& envelope, int status, std::string_view reason,
                                           std::string_view body);
  // CONNECT /_system/ws/{id} or /_system/tcp/{id} with the bridge's :protocol and headers (§4.2).
  enum class BridgeKind { ws, tcp };
  std::shared_ptr<TunnelStream> open_bridge(BridgeKind kind, const std::string& id);
  const SessionSettings& settings() const { return settings_; }
  std::chrono::steady_clock::time_point response_deadline(const Envelope& envelope) const;
  const Logger& logger() const { return logger_; }
  boost::asio::any_io_executor executor() const { return executor_; }

  // StreamOwner
  proto::H2Session* h2() override { return ended_ ? nullptr : h2_.get(); }
  void wake_writer() override { write_wake_.cancel(); }

 private:
  enum class StreamKind { hello, intake, post, bridge };
  struct StreamState {
    StreamKind kind = StreamKind::intake;
    int slot = 0;
    int status = 0;
    proto::H2Headers headers;
    std::string body;     // hello and non-200 intake replies (small, bounded)
    bool ended = false;   // END_STREAM received
    std::shared_ptr<TunnelStream> channel;  // a 200 intake's body, a post, a bridge
  };

  boost::asio::awaitable<bool> connect_transport();
  boost::asio::awaitable<void> read_loop();
  boost::asio::awaitable<void> write_loop();
  boost::asio::awaitable<void> timer_loop();
  void handle_events();
  void on_response_headers(proto::H2ResponseHeaders&& headers);
  void on_data(proto::H2Data&& data);
  void on_stream_closed(const proto::H2StreamClosed& closed);
  void stream_complete(std::int32_t id, StreamState& stream);
  void hello_complete(StreamState& stream);
  void envelope_arrived(std::int32_t id, StreamState& stream, bool end_stream);
  void park(int slot);
  void end_session(SessionEnd end, std::string detail);
  boost::asio::awaitable<void> handle_envelope(std::shared_ptr<Envelope> envelope);
  std::shared_ptr<TunnelStream> track(std::int32_t id, StreamKind kind);
  std::weak_ptr<StreamOwner> weak_owner() { return std::static_pointer_cast<StreamOwner>(shared_from_this()); }

  boost::asio::any_io_executor executor_;
  const SessionSettings& settings_;
  SSL_CTX* tls_;
  const Dispatch& dispatch_;
  Logger logger_;
  std::unique_ptr<TlsSocket> stream_;
  std::unique_ptr<proto::H2Session> h2_;
  boost::asio::steady_timer write_wake_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer outcome_wake_;  // run() waits on it for the end or a drain
  std::unordered_map<std::int32_t, StreamState> streams_;
  std::string owner_token_;
  int pool_ = 1;
  double response_deadline_seconds_ = 30;
  bool connected_ = false;
  bool ended_ = false;
  bool closing_ = false;
  bool draining_ = false;
  std::chrono::steady_clock::time_point close_deadline_ = std::chrono::steady_clock::time_point::max();
  std::weak_ptr<DataPlaneSession> successor_;
  std::optional<SessionResult> result_;
  std::optional<std::chrono::steady_clock::time_point> ping_sent_at_;
  std::chrono::steady_clock::time_point next_ping_at_;
  std::uint64_t ping_opaque_ = 0;
  int in_flight_ = 0;
  bool busy_since_trim_ = false;  // requests since the last malloc_trim (done at an idle PING tick)
  SecureRandom random_;  // WebSocket keys and masks
};

}  // namespace inkwire::agent
