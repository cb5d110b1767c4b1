#pragma once
// A blocking HTTP/2-over-TLS client for integration tests: it drives the relay the way the Inkbox
// SDK agents do (PROTOCOL.md §4.1-§4.9), but every step is explicit so a test can also misbehave
// (withhold credit, reset, GOAWAY, drop the socket). The socket and the H2Session live on a
// background io thread owned by the agent; the public methods post work there and wait, each wait
// bounded by a timeout, so a hung relay fails the test instead of hanging it.
//
// Use from one test thread. Streams are identified by their HTTP/2 stream id; request() and the
// data-plane shorthands return -1 when the stream could not be opened (see last_error()).

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.h"
#include "proto/h2_session.h"

namespace inkwire::testing {

struct AgentOptions {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::string ca_file;  // PEM trust anchors for the server; empty = do not verify
  std::string sni;      // empty = send no SNI; also the name verified when ca_file is set
  std::string authority;  // :authority on every stream; empty = host
  // Offered ALPN list. connect() fails unless the server selects h2, whatever is offered.
  std::vector<std::string> alpn = {"h2"};
  // false: received DATA is credited (consume) only when a test takes it with read_data().
  bool auto_credit = true;
  // Python SDK behaviour (§4.1): even with auto_credit, bridge streams opened with open_bridge()
  // are credited only as read_data() takes their bytes.
  bool manual_credit_bridges = false;
  uint32_t initial_window_size = 65535;  // our SETTINGS_INITIAL_WINDOW_SIZE
  uint32_t connection_window = 0;        // extra connection credit at start (the SDKs send none)
  std::chrono::milliseconds timeout{5000};  // default bound for every wait
};

// A snapshot of one stream, as seen by the client.
struct StreamState {
  int status = 0;
  proto::H2Headers headers;
  bool headers_received = false;
  std::string body;           // DATA received so far and not yet taken by read_data()
  size_t received_total = 0;  // every DATA byte received on the stream, taken or not
  bool ended = false;         // END_STREAM received
  bool closed = false;        // the stream is gone (both ends done, reset, or refused)
  uint32_t error_code = 0;    // with closed: 0 = clean, else the RST_STREAM/refusal code
  bool reset_by_peer = false;

  std::optional<std::string> header(std::string_view name) const;  // first value
  std::vector<std::string> header_values(std::string_view name) const;
};

class TestAgent {
 public:
  using Timeout = std::optional<std::chrono::milliseconds>;  // nullopt = options.timeout

  // TCP + TLS (ALPN h2 only; fails unless the server selected h2), then the connection preface
  // and our SETTINGS. The error is one line saying which step failed.
  static Expected<std::unique_ptr<TestAgent>, std::string> connect(const AgentOptions& options);
  ~TestAgent();  // closes abruptly and joins the io thread
  TestAgent(const TestAgent&) = delete;
  TestAgent& operator=(const TestAgent&) = delete;

  // :scheme https, :authority from the options. body nullopt + end_stream: END_STREAM on HEADERS.
  // A body is sent as DATA (queued past the H2Session's buffer limit, so any size works); with
  // end_stream it is followed by END_STREAM, else the stream stays open for send_data().
  int32_t request(std::string_view method, std::string_view path, const proto::H2Headers& headers,
                  std::optional<std::string> body,
                  std::optional<std::string> protocol = std::nullopt, bool end_stream = true);
  // Waits (bounded) until the H2Session has accepted every queued byte of the stream, which is
  // what backpressure looks like from here. false on timeout (the bytes stay queued), or when
  // the stream or connection is gone.
  bool send_data(int32_t stream, std::string_view bytes, bool end_stream, Timeout t = {});
  void end_stream(int32_t stream);  // after whatever is queued
  void reset(int32_t stream, uint32_t code);
  void goaway(uint32_t code, std::string debug_data = {});
  void ping(uint64_t opaque);

  // Each returns the stream's state once the condition holds (wait_headers also when the stream
  // closed without headers) or once the connection is gone, so check the flags; nullopt on timeout.
  std::optional<StreamState> wait_headers(int32_t stream, Timeout t = {});
  std::optional<StreamState> wait_end(int32_t stream, Timeout t = {});  // END_STREAM or closed
  std::optional<StreamState> wait_closed_stream(int32_t stream, Timeout t = {});
  // Until received_total >= total_bytes (or the stream ended/closed first).
  std::optional<StreamState> wait_received(int32_t stream, size_t total_bytes, Timeout t = {});
  // Takes every byte received and not yet taken, once there are at least min_bytes of them or the
  // stream has ended or closed (then possibly fewer). Taken bytes are credited back to the server
  // on manually credited streams. nullopt on timeout (nothing is taken).
  std::optional<std::string> read_data(int32_t stream, size_t min_bytes, Timeout t = {});
  StreamState state(int32_t stream) const;  // a default StreamState for an unknown id

  // Connection level.
  bool wait_disconnected(Timeout t = {});  // the transport is gone (either side closed it)
  bool connected() const;
  // After a disconnect: whether the server's TLS close_notify arrived before the TCP close.
  bool peer_sent_close_notify() const;
  bool wait_goaway(Timeout t = {});
  std::optional<proto::H2GoAwayReceived> goaway_received() const;
  bool wait_settings(Timeout t = {});
  std::optional<proto::H2SettingsReceived> server_settings() const;  // the latest received
  bool wait_ping_ack(uint64_t opaque, Timeout t = {});
  // A fatal HTTP/2 error from the server's bytes (the session then queued its own GOAWAY).
  std::optional<std::string> session_error() const;
  // Why the last request()/send_data()/shorthand failed ("" when none did).
  std::string last_error() const;
  const AgentOptions& options() const;

  // Shuts the TCP socket without GOAWAY or close_notify (a killed agent). rst: abortive close
  // (SO_LINGER 0) instead of FIN.
  void close_abruptly(bool rst = false);
  // TLS close_notify, then the TCP close (what the Python SDK's aclose() does, §4.10). Waits up
  // to the timeout for the server's close_notify before closing anyway.
  void close_tls();

  // Data-plane shorthands; request headers exactly as in PROTOCOL.md §4.2.
  struct HelloReply {
    int status = 0;
    std::string body;
    boost::json::value json;  // null when the body is not JSON
    std::string owner_token;
    int default_pool_size = 0;
  };
  // POST /_system/hello and wait for the whole reply; nullopt on timeout.
  std::optional<HelloReply> hello(std::string_view tunnel_id, std::string_view secret,
                                  std::optional<int> pool_size = {}, Timeout t = {});
  int32_t open_intake(std::string_view tunnel_id, std::string_view owner_token, int slot);
  // inkbox_h_headers: names WITHOUT the inkbox-h- prefix (lowercased here, as the SDKs do).
  // extra: appended after them (e.g. a top-level inkbox-reason). END_STREAM on HEADERS when body
  // is empty.
  int32_t post_response(std::string_view tunnel_id, std::string_view secret,
                        std::string_view request_id, int status,
                        const proto::H2Headers& inkbox_h_headers, std::string body,
                        const proto::H2Headers& extra = {});
  // Extended CONNECT /_system/ws/{id} (:protocol inkbox-tunnel-ws) or /_system/tcp/{id}
  // (:protocol inkbox-tunnel-tcp). The stream stays open; read with read_data().
  int32_t open_bridge(bool ws, std::string_view tunnel_id, std::string_view secret,
                      std::string_view bridge_id);

  // Server PINGs are acknowledged by nghttp2 itself.

 private:
  struct Impl;
  explicit TestAgent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace inkwire::testing
