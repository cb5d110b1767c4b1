#include "agent/plaintext_h2.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <charconv>
#include <cstring>

#include "agent/byte_splice.h"
#include "agent/upstream_websocket.h"
#include "proto/h2_field_rules.h"
#include "proto/response_post.h"

namespace inkwire::agent {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kMaxWrite = 256 * 1024;
constexpr std::size_t kBodyChunk = 64 * 1024;
// Request bodies are gathered whole (the upstream request is written whole) and credited back at
// once, so the windows only set the upload pace; memory is bounded by the body cap per stream and
// by kConnectionBodyFactor caps per connection.
constexpr std::uint32_t kStreamWindow = 1024 * 1024;
constexpr std::uint32_t kConnectionWindow = 4 * 1024 * 1024;
constexpr std::uint64_t kConnectionBodyFactor = 4;
// After GOAWAY for idleness, how long the client has to close before we do.
constexpr auto kCloseGrace = std::chrono::seconds(2);

}  // namespace

struct PlaintextH2Connection::Stream {
  explicit Stream(asio::any_io_executor executor) : wake(executor), send_wake(std::move(executor)) {}
  void wake_all() {
    wake.cancel();
    send_wake.cancel();
  }
  std::int32_t id = 0;
  ParsedRequest request;
  std::optional<RequestError> error;  // the header list was refused
  bool request_ended = false;          // END_STREAM from the client
  bool over_cap = false;               // the body crossed max_inbound_body_bytes
  bool over_budget = false;            // the connection's bodies crossed their budget
  bool closed = false;                 // the h2 stream is gone (reset, or both ends done)
  std::uint64_t body_bytes = 0;        // DATA received
  std::uint64_t held = 0;              // body bytes counted in buffered_body_bytes_
  // A WebSocket (extended CONNECT): its DATA is kept in tunnel_in, uncredited, bounded by the
  // stream window, and credited once the splice has written it upstream.
  bool tunnel = false;
  std::string tunnel_in;  // unread bytes start at tunnel_in_off
  std::size_t tunnel_in_off = 0;
  std::size_t tunnel_taken = 0;  // read by the splice, not yet credited
  asio::steady_timer wake;       // request progress, closure (and, outside a tunnel, window)
  asio::steady_timer send_wake;  // a tunnel's room to send (the splice reads and writes at once)
};

// The tunnel stream's side of the splice. Reads hand out DATA bytes (crediting the previous read's,
// which the splice has written upstream by then); writes wait for room (H2StreamWritable); the end
// of sending is END_STREAM; close() resets the stream unless both sides have ended.
class PlaintextH2Connection::TunnelBytes final : public ByteStream {
 public:
  TunnelBytes(PlaintextH2Connection& connection, Stream& stream) : c_(connection), s_(stream) {}

  asio::awaitable<std::pair<boost::system::error_code, std::size_t>> read_some(std::span<std::uint8_t> buffer) override {
    c_.credit_tunnel(s_);
    for (;;) {
      if (s_.tunnel_in_off < s_.tunnel_in.size()) {
        const std::size_t n = std::min(buffer.size(), s_.tunnel_in.size() - s_.tunnel_in_off);
        std::memcpy(buffer.data(), s_.tunnel_in.data() + s_.tunnel_in_off, n);
        s_.tunnel_in_off += n;
        s_.tunnel_taken += n;
        if (s_.tunnel_in_off == s_.tunnel_in.size()) {
          s_.tunnel_in.clear();
          s_.tunnel_in_off = 0;
        }
        co_return std::pair{boost::system::error_code(), n};
      }
      if (s_.request_ended) co_return std::pair{boost::system::error_code(asio::error::eof), std::size_t{0}};
      if (!is_open()) co_return std::pair{boost::system::error_code(asio::error::operation_aborted), std::size_t{0}};
      // Unbounded here: the splice's idle deadline closes us, which wakes this wait.
      s_.wake.expires_at(SteadyClock::time_point::max());
      co_await s_.wake.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  asio::awaitable<boost::system::error_code> write_all(std::string_view bytes) override {
    while (!bytes.empty()) {
      if (!is_open() || sending_ended_) co_return asio::error::operation_aborted;
      auto taken = c_.h2_->write_data(s_.id, bytes);
      if (!taken) co_return asio::error::broken_pipe;
      bytes.remove_prefix(*taken);
      c_.wake_writer();
      if (bytes.empty()) break;
      // Bounded by the splice's send deadline, which closes us.
      s_.send_wake.expires_at(SteadyClock::time_point::max());
      co_await s_.send_wake.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_return boost::system::error_code();
  }

  void finish_sending() override {
    if (sending_ended_ || !is_open()) return;
    sending_ended_ = true;
    (void)c_.h2_->end_stream(s_.id);  // after the DATA already buffered
    c_.wake_writer();
  }

  void close() override {
    if (aborted_) return;
    aborted_ = true;
    // Both sides ended: the stream closes by itself once our END_STREAM is out (a reset now
    // would drop it). Otherwise the client's side is cut.
    if (!s_.closed && !c_.closed_ && !(sending_ended_ && s_.request_ended)) {
      (void)c_.h2_->reset_stream(s_.id, proto::kH2Cancel);
    }
    s_.wake_all();
    c_.wake_writer();
  }

  bool is_open() const override { return !aborted_ && !s_.closed && !c_.closed_; }

 private:
  PlaintextH2Connection& c_;
  Stream& s_;
  bool sending_ended_ = false;
  bool aborted_ = false;
};

PlaintextH2Connection::PlaintextH2Connection(asio::any_io_executor executor, ByteStream& stream,
                                             const PlaintextServerSettings& settings, HttpForwarder& forwarder,
                                             Logger logger)
    : stream_(stream),
      settings_(settings),
      forwarder_(forwarder),
      logger_(std::move(logger)),
      write_wake_(executor),
      idle_watchdog_(executor),
      send_watchdog_(executor),
      tasks_(executor) {}

PlaintextH2Connection::~PlaintextH2Connection() = default;

void PlaintextH2Connection::go_away(std::uint32_t code) {
  if (closing_ || !h2_) return;
  closing_ = true;
  (void)h2_->goaway(code);
  wake_writer();
}

void PlaintextH2Connection::force_close() {
  closed_ = true;
  stream_.close();
  for (auto& [id, s] : streams_) s->wake_all();
  wake_writer();
}

void PlaintextH2Connection::update_idle() {
  if (closing_) return;
  if (streams_.empty()) {
    idle_watchdog_.set_after(settings_.idle_timeout);
  } else {
    idle_watchdog_.clear();
  }
}

asio::awaitable<void> PlaintextH2Connection::run() {
  proto::H2Settings h2_settings;
  h2_settings.max_concurrent_streams = 100;
  h2_settings.enable_connect_protocol = true;
  h2_settings.initial_window_size = kStreamWindow;
  h2_settings.connection_window = kConnectionWindow;
  h2_settings.max_header_list_size =
      static_cast<std::uint32_t>(std::min<std::size_t>(settings_.max_header_bytes, 16 * 1024 * 1024));
  // Third-party clients are not bound by PROTOCOL.md §4.1's agent limits on what we send them.
  h2_settings.max_send_header_fields = 1000;
  h2_settings.max_send_header_list_size = 256 * 1024;
  auto h2 = proto::H2Session::create(proto::H2Session::Role::server, h2_settings);
  if (!h2) {
    logger_->error("agent: cannot create an HTTP/2 session: {}", h2.error().detail);
    stream_.close();
    co_return;
  }
  h2_ = std::move(*h2);
  idle_watchdog_.on_expired = [this] {
    if (!closing_) {
      go_away(proto::kH2NoError);
      idle_watchdog_.set_after(kCloseGrace);
    } else {
      force_close();
    }
  };
  send_watchdog_.on_expired = [this] { force_close(); };
  tasks_.spawn([this] { return idle_watchdog_.run(); });
  tasks_.spawn([this] { return send_watchdog_.run(); });
  tasks_.spawn([this] { return write_loop(); });
  update_idle();
  wake_writer();
  std::vector<std::uint8_t> buffer(kReadChunk);
  while (!closed_) {
    auto [ec, n] = co_await stream_.read_some(buffer);
    if (ec || closed_) break;
    auto received = h2_->receive(std::span(buffer.data(), n));
    if (!received) {
      logger_->debug("agent: passthrough HTTP/2 error: {}", received.error().detail);
      closing_ = true;
      handle_events();
      wake_writer();
      break;
    }
    handle_events();
    wake_writer();
  }
  // Lingering close: keep reading until the client closes or a moment passes, so that the GOAWAY
  // is not lost to a RST answering unread input.
  if (!closed_ && closing_) {
    idle_watchdog_.set_after(kCloseGrace);
    while (!closed_) {
      auto [ec, n] = co_await stream_.read_some(buffer);
      if (ec) break;
    }
  }
  force_close();
  idle_watchdog_.stop();
  send_watchdog_.stop();
  // Stream tasks waiting on the upstream end within the response deadline (or the forwarder's
  // stall bound); everything else ends at once.
  co_await tasks_.join();
}

asio::awaitable<void> PlaintextH2Connection::write_loop() {
  std::string out;
  while (!closed_) {
    out.clear();
    if (h2_->want_write()) {
      auto produced = h2_->produce(out, kMaxWrite);
      if (!produced) break;
    }
    handle_events();
    if (!out.empty()) {
      send_watchdog_.set_after(settings_.idle_timeout);
      const auto ec = co_await stream_.write_all(out);
      send_watchdog_.clear();
      if (ec) break;
      continue;
    }
    if (h2_->should_close() || (closing_ && !h2_->want_write() && streams_.empty())) break;
    write_wake_.expires_at(SteadyClock::time_point::max());
    co_await write_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (!closed_) {
    closing_ = true;
    stream_.finish_sending();
  }
}

void PlaintextH2Connection::handle_events() {
  while (auto event = h2_->next_event()) {
    if (auto* request = std::get_if<proto::H2RequestHeaders>(&*event)) {
      on_request(std::move(*request));
    } else if (auto* data = std::get_if<proto::H2Data>(&*event)) {
      on_data(std::move(*data));
    } else if (auto* closed = std::get_if<proto::H2StreamClosed>(&*event)) {
      on_stream_closed(*closed);
    } else if (auto* writable = std::get_if<proto::H2StreamWritable>(&*event)) {
      wake_stream(writable->stream_id);
    } else if (std::holds_alternative<proto::H2GoAwayReceived>(*event)) {
      closing_ = true;
    }
  }
}

void PlaintextH2Connection::wake_stream(std::int32_t id) {
  if (auto it = streams_.find(id); it != streams_.end()) it->second->wake_all();
}

void PlaintextH2Connection::credit_tunnel(Stream& s) {
  if (s.tunnel_taken == 0) return;
  (void)h2_->consume(s.id, s.tunnel_taken);
  s.tunnel_taken = 0;
  wake_writer();  // the WINDOW_UPDATE
}

void PlaintextH2Connection::on_request(proto::H2RequestHeaders&& headers) {
  if (closing_ || closed_) {
    (void)h2_->reset_stream(headers.stream_id, proto::kH2RefusedStream);
    return;
  }
  auto stream = std::make_unique<Stream>(write_wake_.get_executor());
  stream->id = headers.stream_id;
  stream->request_ended = headers.end_stream;
  auto parsed = parse_h2_request(h2_request_fields(headers));
  if (parsed) {
    stream->request = std::move(*parsed);
  } else {
    stream->error = parsed.error();
  }
  stream->tunnel = !stream->error && stream->request.is_websocket;
  // An announced length over the cap is refused before any DATA is taken.
  for (const auto& field : stream->request.headers) {
    if (field.name != "content-length") continue;
    std::uint64_t length = 0;
    const auto [end, ec] = std::from_chars(field.value.data(), field.value.data() + field.value.size(), length);
    if (ec == std::errc() && end == field.value.data() + field.value.size() && length > settings_.max_inbound_body_bytes) {
      stream->over_cap = true;
    }
  }
  const std::int32_t id = stream->id;
  streams_.emplace(id, std::move(stream));
  update_idle();
  tasks_.spawn([this, id] { return serve_stream(id); });
}

void PlaintextH2Connection::on_data(proto::H2Data&& data) {
  auto it = streams_.find(data.stream_id);
  if (it != streams_.end() && it->second->tunnel) {
    // Credited as the splice takes it (credit_tunnel); bounded by the stream window meanwhile.
    Stream& t = *it->second;
    t.tunnel_in.append(reinterpret_cast<const char*>(data.bytes.data()), data.bytes.size());
    if (data.end_stream) t.request_ended = true;
    t.wake.cancel();
    return;
  }
  // Credited at once: what is kept is bounded by the caps below, the rest is dropped.
  (void)h2_->consume(data.stream_id, data.bytes.size());
  if (it == streams_.end()) return;
  Stream& s = *it->second;
  if (!s.over_cap && !s.over_budget && !s.error) {
    s.body_bytes += data.bytes.size();
    const std::uint64_t cap = settings_.max_inbound_body_bytes;
    const std::uint64_t budget = cap > UINT64_MAX / kConnectionBodyFactor ? UINT64_MAX : cap * kConnectionBodyFactor;
    if (s.body_bytes > cap || buffered_body_bytes_ + data.bytes.size() > budget) {
      (s.body_bytes > cap ? s.over_cap : s.over_budget) = true;
      buffered_body_bytes_ -= s.held;
      s.held = 0;
      std::string().swap(s.request.body);
    } else {
      s.request.body.append(reinterpret_cast<const char*>(data.bytes.data()), data.bytes.size());
      s.held += data.bytes.size();
      buffered_body_bytes_ += data.bytes.size();
    }
  }
  if (data.end_stream) s.request_ended = true;
  s.wake.cancel();
}

void PlaintextH2Connection::on_stream_closed(const proto::H2StreamClosed& closed) {
  auto it = streams_.find(closed.stream_id);
  if (it == streams_.end()) return;
  it->second->closed = true;
  it->second->wake_all();
}

asio::awaitable<bool> PlaintextH2Connection::stream_wait(Stream& s) {
  // Whatever the stream waits for (body bytes, window to send into) must come within the idle
  // bound; otherwise the stream is given up, so a silent client cannot hold it open forever.
  s.wake.expires_after(settings_.idle_timeout);
  auto [ec] = co_await s.wake.async_wait(asio::as_tuple(asio::use_awaitable));
  if (s.closed || closed_) co_return false;
  if (!ec) {
    (void)h2_->reset_stream(s.id, proto::kH2Cancel);
    wake_writer();
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> PlaintextH2Connection::serve_stream(std::int32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) co_return;
  Stream& s = *it->second;
  co_await serve_request(s);
  buffered_body_bytes_ -= s.held;
  if (s.tunnel) {
    // Tunnel bytes never taken (or taken and not yet credited) reopen the connection window.
    s.tunnel_taken += s.tunnel_in.size() - s.tunnel_in_off;
    credit_tunnel(s);
  }
  streams_.erase(id);
  update_idle();
  wake_writer();
}

asio::awaitable<void> PlaintextH2Connection::serve_request(Stream& s) {
  if (s.error) {
    logger_->debug("agent: passthrough refused an HTTP/2 request: {}", s.error->reason);
    const PlaintextFailure failure{400, s.error->reason, "bad request\n"};
    co_await respond_failure(s, failure);
    co_return;
  }
  if (s.request.is_websocket) {
    co_await serve_websocket_connect(s);
    co_return;
  }
  if (s.request.method == "CONNECT") {
    const PlaintextFailure failure{405, "connect-not-allowed", "CONNECT is not supported\n"};
    co_await respond_failure(s, failure);
    co_return;
  }
  if (auto failure = check_request_target(s.request.path)) {
    co_await respond_failure(s, *failure);
    co_return;
  }
  while (!s.request_ended && !s.over_cap && !s.over_budget) {
    if (!co_await stream_wait(s)) co_return;
  }
  if (s.closed || closed_) co_return;
  if (s.over_cap) {
    const PlaintextFailure failure{413, "request-body-too-large", "request body too large\n"};
    co_await respond_failure(s, failure);
    co_return;
  }
  if (s.over_budget) {
    logger_->info("agent: passthrough HTTP/2: request bodies over the connection's budget; stream reset");
    (void)h2_->reset_stream(s.id, proto::kH2EnhanceYourCalm);
    wake_writer();
    co_return;
  }
  auto started = co_await forward_request(s.request, settings_, forwarder_, logger_);
  if (s.closed || closed_) co_return;  // the exchange ends unread: its upstream connection is dropped
  if (!started) {
    const PlaintextFailure failure = started.error();
    co_await respond_failure(s, failure);
    co_return;
  }
  std::unique_ptr<UpstreamExchange> exchange = std::move(*started);
  co_await send_response(s, *exchange);
}

asio::awaitable<void> PlaintextH2Connection::serve_websocket_connect(Stream& s) {
  if (auto failure = check_request_target(s.request.path)) {
    co_await respond_failure(s, *failure);
    co_return;
  }
  const UpstreamWebSocketRequest upstream_request = websocket_request(s.request, settings_);
  const auto deadline = SteadyClock::now() + settings_.response_deadline;
  auto handshake =
      co_await upstream_websocket_handshake(forwarder_.dialer(), random_, upstream_request, deadline, logger_);
  if (s.closed || closed_) co_return;  // the client gave up: the upstream socket closes with `handshake`
  if (!handshake) {
    PlaintextFailure failure = websocket_refusal(handshake.error());
    // A 2xx would open the tunnel for the client (RFC 8441 §5) over an upstream that refused it.
    if (failure.status < 300) {
      failure = PlaintextFailure{502, "ws-handshake-failed", "WebSocket handshake with the upstream failed\n"};
    }
    co_await respond_failure(s, failure);
    co_return;
  }
  UpstreamWebSocketAccepted& accepted = *handshake;
  std::vector<proto::H2Header> headers;
  for (const auto& field : accepted.headers) {
    if (proto::h2_field_problem(field.name, field.value).empty()) headers.push_back({field.name, field.value});
  }
  // RFC 8441 §5: a 2xx makes the stream a tunnel; no Sec-WebSocket-Accept in HTTP/2.
  if (!h2_->submit_response(s.id, 200, headers, false)) {
    (void)h2_->reset_stream(s.id, proto::kH2InternalError);
    wake_writer();
    co_return;
  }
  wake_writer();
  TunnelBytes tunnel(*this, s);
  const std::string_view client_first;  // the client's DATA is read through `tunnel`
  const SpliceLimits limits = websocket_splice_limits(settings_);
  const SpliceResult result =
      co_await splice_bytes(tunnel, client_first, accepted.upstream->stream(), accepted.leftover, limits);
  logger_->debug("agent: passthrough HTTP/2 WebSocket {} ended: {} bytes in, {} bytes out{}", s.request.path,
                 result.a_to_b, result.b_to_a, result.timed_out ? " (timed out)" : "");
  wake_writer();
}

asio::awaitable<void> PlaintextH2Connection::respond_failure(Stream& s, const PlaintextFailure& failure) {
  if (s.closed || closed_) co_return;
  // A request still being sent is stopped with RST_STREAM(NO_ERROR) after a complete response
  // (RFC 9113 §8.1). nghttp2 drops a stream's queued HEADERS once a reset is queued for it, so
  // the writer submits the reset only after it has serialized the response; DATA could still be
  // queued then and would be lost, so such a response goes without a body.
  const bool will_reset = !s.request_ended;
  const bool with_body = s.request.method != "HEAD" && !will_reset;
  std::vector<proto::H2Header> headers;
  headers.push_back({"content-type", "text/plain; charset=utf-8"});
  headers.push_back({"content-length", std::to_string(with_body ? failure.message.size() : 0)});
  if (!h2_->submit_response(s.id, failure.status, headers, !with_body)) {
    // No answer can be given: the stream must not stay open with the client waiting on it.
    (void)h2_->reset_stream(s.id, proto::kH2InternalError);
    wake_writer();
    co_return;
  }
  if (with_body && co_await send_body(s, failure.message)) (void)h2_->end_stream(s.id);
  // RST_STREAM(NO_ERROR) once the frame with our END_STREAM has gone out (and in a later write),
  // so neither the error body nor the client's read of it is lost to the reset.
  if (will_reset && !s.closed && !closed_) (void)h2_->reset_after_response(s.id);
  wake_writer();
}

asio::awaitable<bool> PlaintextH2Connection::send_body(Stream& s, std::string_view bytes) {
  while (!bytes.empty()) {
    if (s.closed || closed_) co_return false;
    auto taken = h2_->write_data(s.id, bytes);
    if (!taken) co_return false;
    bytes.remove_prefix(*taken);
    wake_writer();
    if (!bytes.empty() && !co_await stream_wait(s)) co_return false;
  }
  co_return true;
}

asio::awaitable<void> PlaintextH2Connection::send_response(Stream& s, UpstreamExchange& exchange) {
  const UpstreamResponseHead& head = exchange.head();
  const bool has_body = proto::response_has_body(s.request.method, head.status);
  std::vector<proto::H2Header> headers;
  headers.reserve(head.headers.size() + 1);
  std::size_t dropped = 0;
  for (const auto& field : head.headers) {
    // Connection-specific or malformed fields would make nghttp2 (or the client) fail the stream.
    if (!proto::h2_field_problem(field.name, field.value).empty()) {
      ++dropped;
      continue;
    }
    headers.push_back({field.name, field.value});
  }
  if (dropped > 0) logger_->debug("agent: passthrough HTTP/2: dropped {} upstream response fields", dropped);
  if (has_body && head.content_length) headers.push_back({"content-length", std::to_string(*head.content_length)});
  const bool empty = !has_body || (head.content_length && *head.content_length == 0);
  if (!h2_->submit_response(s.id, head.status, headers, empty)) {
    const PlaintextFailure failure{502, "bad-upstream-response", "bad upstream response\n"};
    co_await respond_failure(s, failure);
    co_return;
  }
  wake_writer();
  if (empty) co_return;
  std::uint64_t sent = 0;
  for (;;) {
    auto piece = co_await exchange.read_body(kBodyChunk);
    if (s.closed || closed_) co_return;
    if (!piece) {
      logger_->info("agent: passthrough {} {}: {}", s.request.method, s.request.path, piece.error());
      (void)h2_->reset_stream(s.id, proto::kH2InternalError);
      break;
    }
    if (piece->empty()) {
      (void)h2_->end_stream(s.id);
      break;
    }
    sent += piece->size();
    if (sent > settings_.max_outbound_body_bytes) {
      logger_->info("agent: passthrough {} {}: response body over {} bytes", s.request.method, s.request.path,
                    settings_.max_outbound_body_bytes);
      (void)h2_->reset_stream(s.id, proto::kH2InternalError);
      break;
    }
    if (!co_await send_body(s, *piece)) co_return;
    // END_STREAM rides with the last DATA instead of an empty frame of its own.
    if (exchange.finished()) {
      (void)h2_->end_stream(s.id);
      break;
    }
  }
  wake_writer();
}

}  // namespace inkwire::agent
