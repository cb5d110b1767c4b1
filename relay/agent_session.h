#pragma once
// One agent connection: TLS, then HTTP/2 (server role) driven by proto::H2Session from memory
// buffers. One coroutine reads (TLS -> H2Session::receive -> act on events), one writes (coalesces
// everything the session wants to send into one buffer and writes it whole), one keeps time (hello
// timeout, intake idle 204s, PINGs, drain deadlines). All three run on the relay's executor, so the
// session's state needs no locks.
//
// Streams (PROTOCOL.md §4.2): hello, intake, response post, ws/tcp bridge. A session says hello
// once and is then bound to that tunnel; it owns the tunnel until a newer hello supersedes it.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <vector>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "common/config.h"
#include "common/logging.h"
#include "common/tls_socket.h"
#include "common/random_source.h"
#include "common/uuid.h"
#include "proto/h2_session.h"
#include "relay/bridge_stream.h"
#include "relay/exchange.h"
#include "relay/relay_metrics.h"

namespace inkwire::controlplane {
class PgSessionRepository;
}

namespace inkwire::relay {

class ConnectionFacts;
class SessionRegistry;
class TunnelDirectory;

// What every session shares (owned by the relay server).
struct SessionContext {
  const RelayConfig& config;
  SessionRegistry& registry;
  TunnelDirectory& directory;
  ConnectionFacts& facts;
  RandomSource& random;
  RelayMetrics& metrics;
  Logger logger;
  // One read buffer for every session of the relay's thread: TlsSocket writes into it only inside
  // a synchronous SSL_read, and the bytes are handed to H2Session before the coroutine suspends.
  std::vector<std::uint8_t> read_buffer = std::vector<std::uint8_t>(16 * 1024);
};

class AgentSession : public std::enable_shared_from_this<AgentSession> {
 public:
  AgentSession(SessionContext& context, boost::asio::ip::tcp::socket socket, SSL_CTX* tls, std::string peer_ip,
               std::uint64_t id);
  ~AgentSession();

  // Handshake, then serve until the connection ends. Co_spawn it on the relay's executor.
  boost::asio::awaitable<void> run();

  std::uint64_t id() const { return id_; }
  const std::string& peer_ip() const { return peer_ip_; }
  const std::optional<Uuid>& tunnel_id() const { return tunnel_id_; }
  const Uuid& organization_id() const { return organization_id_; }

  // ---- Called by the registry ----
  // Can take an envelope now: owns its tunnel, not draining or displaced, an intake is parked.
  bool can_deliver() const;
  void deliver(const std::shared_ptr<Exchange>& exchange);
  // A newer hello took the tunnel (§4.11, A2): parked and later intakes get 401
  // intake-superseded; posts and bridges in flight may finish; then GOAWAY 0x1201 and close.
  void supersede();
  // The tunnel was deleted: GOAWAY and close now.
  void close_now(std::string_view why);
  // Drain (§4.10, A18): stop taking requests, let posts and bridges finish until `deadline`, then
  // GOAWAY and close.
  void begin_drain(std::chrono::steady_clock::time_point deadline);
  // The edge told the third party (101): answer the bridge CONNECT 200 and start pumping.
  void bridge_accepted(Exchange& exchange);
  // The third party went away: reset the stream carrying the exchange, if any.
  void cancel_stream(std::int32_t stream_id);
  // Abrupt close, for shutdown.
  void force_close();
  bool finished() const { return closed_; }

 private:
  enum class StreamKind : std::uint8_t { unknown, hello, intake, post, bridge, refused };
  struct StreamCtx {
    StreamKind kind = StreamKind::unknown;
    int slot = -1;                                 // intake
    std::chrono::steady_clock::time_point parked_at;  // intake
    std::shared_ptr<Exchange> exchange;            // intake being delivered, post, bridge
    bool envelope_sent = false;                    // intake: the 200 HEADERS went out
    std::uint64_t body_bytes = 0;                  // post: bytes received so far
    bool replied = false;                          // a response was submitted
    std::unique_ptr<BridgeStream> bridge;          // bridge
  };

  boost::asio::awaitable<bool> handshake();
  boost::asio::awaitable<void> write_loop();
  boost::asio::awaitable<void> timer_loop();
  void wake_writer();
  void reschedule_timer(std::chrono::steady_clock::time_point when);
  void housekeeping(std::chrono::steady_clock::time_point now);

  void handle_events();
  void on_request(proto::H2RequestHeaders& request);
  void on_data(proto::H2Data& data);
  void on_closed(const proto::H2StreamClosed& closed);

  boost::asio::awaitable<void> handle_hello(std::int32_t stream_id, proto::H2Headers headers);
  void handle_intake(std::int32_t stream_id, const proto::H2Headers& headers);
  void handle_post(std::int32_t stream_id, std::string_view request_id, proto::H2RequestHeaders& request);
  void handle_bridge(std::int32_t stream_id, proto::RouteKind kind, std::string_view bridge_id,
                     const proto::H2Headers& headers);
  bool authorised_stream(const proto::H2Headers& headers) const;

  void reply(std::int32_t stream_id, int status, std::string_view body = {},
             std::vector<proto::H2Header> extra = {});
  void reply_json_detail(std::int32_t stream_id, int status, std::string_view detail,
                         std::string_view reason = {});
  void park(std::int32_t stream_id, int slot);
  void unpark(std::int32_t stream_id);
  void pump_intake(std::int32_t stream_id);
  void pump_bridge(std::int32_t stream_id);
  void settle_post_credit(std::int32_t stream_id);
  void release_owner();
  void maybe_finish_displaced();
  std::size_t active_work() const;
  void goaway_and_close(std::uint32_t code, std::string_view debug);
  // RST_STREAM; agents_fault says whether it counts against the misbehaviour budget.
  void reset(std::int32_t stream_id, std::uint32_t code, bool agents_fault);
  void end_session(std::string_view why);

  SessionContext& ctx_;
  TlsSocket stream_;
  std::string peer_ip_;
  std::uint64_t id_;
  std::unique_ptr<proto::H2Session> h2_;
  boost::asio::steady_timer write_wake_;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point timer_at_;
  std::chrono::steady_clock::time_point started_at_;

  // Binding after hello.
  std::optional<Uuid> tunnel_id_;
  Uuid organization_id_;
  std::string secret_;       // as presented at hello (A4); compared in constant time
  std::string owner_token_;  // A3
  bool hello_started_ = false;
  bool owner_ = false;
  bool superseded_ = false;
  bool draining_ = false;
  bool peer_goaway_ = false;
  bool closing_ = false;  // GOAWAY queued: close once written
  bool closed_ = false;
  bool counted_in_org_ = false;
  std::chrono::steady_clock::time_point drain_deadline_;
  std::chrono::steady_clock::time_point close_deadline_;

  std::unordered_map<std::int32_t, StreamCtx> streams_;
  std::vector<std::int32_t> parked_;              // intake streams, oldest first (a few dozen at most)
  std::unordered_map<int, std::int32_t> slots_;   // x-pool-slot -> stream
  std::size_t open_posts_ = 0;
  std::size_t open_bridges_ = 0;

  // Misbehaviour accounting (relay.max_resets_per_minute): nghttp2 1.52 has no "glitch" limiter.
  std::chrono::steady_clock::time_point glitch_window_start_;
  std::uint64_t glitches_at_window_start_ = 0;
  std::uint64_t own_resets_ = 0;  // RST_STREAMs the relay sent for its own reasons
  bool check_glitches();

  // Liveness.
  std::uint64_t ping_seq_ = 0;
  std::optional<std::chrono::steady_clock::time_point> ping_sent_at_;
  std::chrono::steady_clock::time_point next_ping_at_;
};

}  // namespace inkwire::relay
