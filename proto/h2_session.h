#pragma once
// A sans-IO HTTP/2 session over nghttp2 1.52: bytes in (receive), events out (next_event), bytes
// out (produce). No sockets, no threads: the connection's coroutine moves bytes and acts on events.
// nghttp2 callbacks only record events and counters; they never call out to the owner.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "common/expected.h"

struct nghttp2_session;

namespace inkwire::proto {

// HTTP/2 error codes used by callers (RFC 9113 §7), plus ours.
inline constexpr uint32_t kH2NoError = 0x0;
inline constexpr uint32_t kH2ProtocolError = 0x1;
inline constexpr uint32_t kH2InternalError = 0x2;
inline constexpr uint32_t kH2FlowControlError = 0x3;
inline constexpr uint32_t kH2StreamClosed = 0x5;
inline constexpr uint32_t kH2RefusedStream = 0x7;
inline constexpr uint32_t kH2Cancel = 0x8;
inline constexpr uint32_t kH2EnhanceYourCalm = 0xb;
// PROTOCOL.md §4.11: the GOAWAY code for a displaced ("superseded") session.
inline constexpr uint32_t kH2Superseded = 0x1201;

struct H2Header {
  std::string name;
  std::string value;
};
using H2Headers = std::vector<H2Header>;

struct H2Settings {
  // Advertised in our first SETTINGS frame.
  uint32_t max_concurrent_streams = 256;
  uint32_t initial_window_size = 65535;  // per stream; at most 16 MiB
  uint32_t max_frame_size = 16384;       // 16384 .. 16777215
  // Also enforced on inbound header blocks (name + value + 32 per field).
  uint32_t max_header_list_size = 65536;
  bool enable_connect_protocol = true;  // SETTINGS 0x8 = 1; sent by the server role only
  // SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table the peer's encoder may make us keep.
  uint32_t header_table_size = 4096;
  // Extra connection-level credit granted at start (WINDOW_UPDATE on stream 0); at most 16 MiB.
  uint32_t connection_window = 0;
  // Client role: how many concurrent streams to assume before the server's SETTINGS arrive
  // (nghttp2 assumes 100). 0 keeps nghttp2's default.
  uint32_t assumed_peer_max_concurrent_streams = 0;

  // Outbound bounds. write_data accepts at most this many unsent bytes per stream.
  size_t outbound_buffer_limit = 256 * 1024;
  // What we send is checked against PROTOCOL.md §4.1: the list size is also capped by the peer's
  // SETTINGS_MAX_HEADER_LIST_SIZE; the field count includes pseudo-header fields.
  size_t max_send_header_list_size = 65536;
  size_t max_send_header_fields = 127;

  // Flood defences (nghttp2_option_set_*). The RST_STREAM limiter is a token bucket applied to
  // server sessions only; when it runs dry nghttp2 sends GOAWAY(INTERNAL_ERROR).
  uint64_t reset_burst = 1000;
  uint64_t reset_rate_per_second = 33;
  size_t max_continuations = 8;      // CONTINUATION frames after one HEADERS
  size_t max_settings_entries = 32;  // entries per SETTINGS frame
  size_t max_outbound_ack = 1000;    // queued SETTINGS/PING ACKs before the peer counts as flooding
};

// Events. Header names arrive lowercase (nghttp2 rejects anything else as a stream error).
struct H2RequestHeaders {  // server role
  int32_t stream_id = 0;
  std::string method;
  std::string scheme;
  std::string authority;  // :authority, or the host field when :authority is absent
  std::string path;
  std::string protocol;  // :protocol of an extended CONNECT (RFC 8441); empty when absent
  H2Headers headers;     // regular fields, in arrival order
  bool end_stream = false;
};
struct H2ResponseHeaders {  // client role; 1xx interim responses are dropped
  int32_t stream_id = 0;
  int status = 0;
  H2Headers headers;
  bool end_stream = false;
};
// Consecutive chunks for one stream are merged. A trailer block (unused on the data plane) shows
// up as an empty Data with end_stream. Every byte must be handed back through consume().
struct H2Data {
  int32_t stream_id = 0;
  std::vector<uint8_t> bytes;
  bool end_stream = false;
};
// Once per stream, last. error_code 0 means both sides ended cleanly; otherwise it is the
// RST_STREAM code (either direction), REFUSED_STREAM for a request the peer never took, etc.
struct H2StreamClosed {
  int32_t stream_id = 0;
  uint32_t error_code = 0;
  bool reset_by_peer = false;
};
// write_data refused bytes on this stream earlier and its buffer has drained to half the limit.
struct H2StreamWritable {
  int32_t stream_id = 0;
};
struct H2GoAwayReceived {
  int32_t last_stream_id = 0;
  uint32_t error_code = 0;
  std::string debug_data;
};
struct H2SettingsReceived {  // the peer's settings after this frame was applied
  bool enable_connect_protocol = false;
  uint32_t max_concurrent_streams = 0;
  uint32_t initial_window_size = 0;
  uint32_t max_frame_size = 0;
  uint32_t max_header_list_size = 0;
};
struct H2PingAcked {  // the answer to our ping()
  uint64_t opaque = 0;
};
using H2Event = std::variant<H2RequestHeaders, H2ResponseHeaders, H2Data, H2StreamClosed,
                             H2StreamWritable, H2GoAwayReceived, H2SettingsReceived, H2PingAcked>;

enum class H2ErrorKind {
  invalid_argument,  // bad settings, wrong role, bad status or pseudo-header
  invalid_header,    // a field we were asked to send breaks PROTOCOL.md §4.1
  unknown_stream,    // no such open stream (never existed, or already closed)
  stream_state,      // the stream cannot take this now (already ended, response already sent)
  session_closed,    // GOAWAY sent/received, or the session failed earlier
  bad_preface,       // server: the first bytes were not the HTTP/2 client preface
  flooded,           // the peer flooded us (ACKs, CONTINUATIONs); the session is dead
  protocol,          // any other fatal error from nghttp2
};
struct H2Error {
  H2ErrorKind kind;
  int lib_error = 0;  // nghttp2's negative error code, when it came from nghttp2
  std::string detail;
};

// Per-session counters for metrics (monotonic).
struct H2Stats {
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t streams_opened = 0;  // peer-initiated (HEADERS begun) plus ours (HEADERS sent)
  uint64_t streams_closed = 0;
  uint64_t resets_sent = 0;
  uint64_t resets_received = 0;
  uint64_t goaways_sent = 0;
  uint64_t goaways_received = 0;
  uint64_t pings_received = 0;  // nghttp2 ACKs them by itself
  uint64_t flood_errors = 0;    // library GOAWAY(ENHANCE_YOUR_CALM or INTERNAL_ERROR), FLOODED, ...
  uint64_t protocol_errors = 0;          // frames or header fields nghttp2 rejected
  uint64_t oversized_header_blocks = 0;  // inbound header lists over max_header_list_size
  // Requests the peer reset before the owner popped their headers: their events were withdrawn
  // (rapid reset within one read costs the owner nothing) and their bytes credited back.
  uint64_t requests_dropped_unseen = 0;
};

class H2Session {
 public:
  enum class Role { server, client };

  // Validates settings, creates the nghttp2 session and queues our SETTINGS (the client's
  // connection preface goes out with the first produce()).
  static Expected<std::unique_ptr<H2Session>, H2Error> create(Role role,
                                                              const H2Settings& settings = {});
  ~H2Session();
  // nghttp2 holds `this` as user_data: hold the session by unique_ptr.
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;
  H2Session(H2Session&&) = delete;
  H2Session& operator=(H2Session&&) = delete;

  Role role() const { return role_; }

  // Feeds bytes read from the transport. On a fatal error the session queues a GOAWAY (except on
  // flooding, where nothing more is written), returns the error, and want_read() turns false.
  Expected<size_t, H2Error> receive(std::span<const uint8_t> bytes);
  // Drain after receive() and after produce() too (sending can close streams or free buffer room).
  // A server stream that closes before the owner has popped its H2RequestHeaders is withdrawn:
  // none of its events (headers, data, close) are delivered.
  std::optional<H2Event> next_event();

  // Appends up to max_bytes of serialized frames to out (several frames coalesced).
  Expected<size_t, H2Error> produce(std::string& out, size_t max_bytes = 1 << 20);
  bool want_read() const;
  bool want_write() const;
  // Nothing left to read or write: close the transport. After a GOAWAY (either way) this turns true
  // once no stream is active and the GOAWAY has been written.
  bool should_close() const;

  // Server role. end_stream with bytes already buffered ends the stream after those bytes.
  Expected<Unit, H2Error> submit_response(int32_t stream_id, int status,
                                          std::span<const H2Header> headers, bool end_stream);
  // Client role. Plain CONNECT (no protocol) sends only :method and :authority. The request may be
  // queued by nghttp2 when the peer's MAX_CONCURRENT_STREAMS is reached.
  Expected<int32_t, H2Error> submit_request(std::string_view method, std::string_view scheme,
                                            std::string_view authority, std::string_view path,
                                            std::span<const H2Header> headers, bool end_stream,
                                            std::optional<std::string> protocol = std::nullopt);

  // Buffers bytes for the stream and returns how many were accepted (0..size, bounded by
  // outbound_buffer_limit). Fewer than offered is backpressure: retry after H2StreamWritable.
  Expected<size_t, H2Error> write_data(int32_t stream_id, std::span<const uint8_t> bytes);
  Expected<size_t, H2Error> write_data(int32_t stream_id, std::string_view bytes);
  // END_STREAM after everything buffered. Idempotent.
  Expected<Unit, H2Error> end_stream(int32_t stream_id);
  Expected<Unit, H2Error> reset_stream(int32_t stream_id, uint32_t error_code);
  // Server role, after the response was ended (submit_response with end_stream, or end_stream):
  // the peer may still be sending a request body we will not read. RST_STREAM(NO_ERROR) follows
  // the response if the peer's side is still open then (RFC 9113 §8.1). Calling reset_stream
  // instead would lose the response: nghttp2 drops a stream's queued HEADERS and DATA once a
  // RST_STREAM for it is submitted. The reset is serialized by the produce() after the one that
  // serialized our END_STREAM, so a caller that writes each produce() on its own sends it in a
  // later write: curl 7.88 (Debian 12) fails an upload (exit 92, no status) when the complete
  // response and the reset reach it in one read, and takes the response when they do not.
  Expected<Unit, H2Error> reset_after_response(int32_t stream_id);
  // Graceful: no new peer streams; active ones may finish. last_stream_id defaults to the last
  // peer stream nghttp2 processed.
  Expected<Unit, H2Error> goaway(uint32_t error_code, std::string_view debug_data = {},
                                 std::optional<int32_t> last_stream_id = std::nullopt);
  // Immediate: GOAWAY, then should_close() once it is written.
  Expected<Unit, H2Error> terminate(uint32_t error_code);
  Expected<Unit, H2Error> ping(uint64_t opaque);

  // Credits n received bytes back to the peer (stream and connection windows). Valid after the
  // stream closed too, so bytes taken from a closed stream still reopen the connection window.
  Expected<Unit, H2Error> consume(int32_t stream_id, size_t n);

  size_t outbound_buffered(int32_t stream_id) const;
  // Stream-level send window (-1 if the stream is unknown to nghttp2) and connection-level one;
  // what can actually be sent is the smaller of the two.
  int32_t remote_window(int32_t stream_id) const;
  int32_t connection_remote_window() const;
  // Streams this wrapper tracks (open or awaiting close); returns to 0 when all are closed.
  size_t tracked_streams() const { return streams_.size(); }
  const H2Stats& stats() const { return stats_; }
  // The last message nghttp2 gave its error callback (diagnostics only).
  const std::string& last_library_message() const { return last_library_message_; }

 private:
  struct Stream {
    std::string out;  // accepted, not yet handed to nghttp2; served from out_off
    size_t out_off = 0;
    bool end_requested = false;
    bool provider = false;           // HEADERS went out with a data provider attached
    bool headers_submitted = false;  // server: response submitted; client: always
    bool local_ended = false;        // END_STREAM handed to nghttp2
    bool end_sent = false;           // the frame carrying our END_STREAM was serialized
    bool reset_when_ended = false;   // reset_after_response was asked before end_sent
    bool blocked = false;            // write_data refused bytes since the last H2StreamWritable
    bool reset_by_peer = false;
    bool announced = false;       // the owner knows this stream (events may mention it)
    bool headers_queued = false;  // server: H2RequestHeaders pushed at sequence headers_seq
    uint64_t headers_seq = 0;
    size_t buffered() const { return out.size() - out_off; }
  };
  struct PendingHeaders {  // the one header block being received (blocks never interleave)
    int32_t stream_id = 0;
    int category = 0;
    size_t list_size = 0;
    bool oversized = false;
    std::string method, scheme, authority, path, protocol, status;
    H2Headers fields;
  };
  friend struct H2Callbacks;

  H2Session(Role role, const H2Settings& settings);
  Expected<Unit, H2Error> init();
  H2Error fail(int lib_error, std::string_view what);
  Expected<Unit, H2Error> check_session_open() const;
  Expected<Unit, H2Error> check_fields(std::span<const H2Header> headers, size_t pseudo_count,
                                       size_t pseudo_size) const;
  void close_stream(int32_t stream_id, uint32_t error_code);
  void on_end_sent(int32_t stream_id);
  void reset_if_peer_sending(int32_t stream_id);
  void push_data_end(int32_t stream_id);
  void push_event(H2Event ev) { events_.emplace_back(std::move(ev)); }
  H2Data* open_data_tail(int32_t stream_id);
  void withdraw_events(int32_t stream_id, uint64_t from_seq);
  void credit_dropped_bytes();

  Role role_;
  H2Settings settings_;
  nghttp2_session* session_ = nullptr;
  std::deque<std::optional<H2Event>> events_;  // nullopt: withdrawn (see next_event)
  uint64_t popped_ = 0;                        // sequence number of events_.front()
  size_t dropped_unconsumed_ = 0;              // bytes of withdrawn Data not yet credited
  std::unordered_map<int32_t, Stream> streams_;
  PendingHeaders pending_;
  std::vector<int32_t> resets_due_;  // reset_after_response: END_STREAM out, reset in next produce
  std::string carry_;  // the part of a mem_send chunk that did not fit the last produce()
  size_t carry_off_ = 0;
  bool failed_ = false;        // fatal error: read nothing more
  bool write_closed_ = false;  // flooded: write nothing more either
  bool local_goaway_ = false;  // we submitted a GOAWAY (so a library one is told apart)
  H2Stats stats_;
  std::string last_library_message_;
};

}  // namespace inkwire::proto
