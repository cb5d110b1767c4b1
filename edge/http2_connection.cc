#include "edge/http2_connection.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>

#include "proto/header_rules.h"
#include "proto/response_post.h"
#include "proto/ws_handshake.h"

namespace inkwire::edge {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kMaxWrite = 256 * 1024;
constexpr std::size_t kBodyChunk = 64 * 1024;
}  // namespace

struct Http2Connection::Stream {
  explicit Stream(asio::any_io_executor executor) : wake(std::move(executor)) {}
  std::int32_t id = 0;
  proto::H2RequestHeaders request;
  SteadyClock::time_point started = SteadyClock::now();
  std::shared_ptr<relay::Exchange> exchange;
  std::string tunnel;
  std::string accept;
  std::string_view protocol = "h2";
  // Request DATA that arrived before the exchange existed (the tunnel lookup is asynchronous);
  // bounded by the stream's receive window.
  std::string early_body;
  bool request_ended = false;  // END_STREAM from the client
  std::uint64_t body_bytes = 0;
  bool closed = false;         // the h2 stream is gone (reset or both ends done)
  bool reset_by_peer = false;
  std::unique_ptr<proto::PublicWebSocket> ws;
  std::size_t ws_owed_credit = 0;  // client DATA bytes not yet credited back (to_agent pipe full)
  int status = 0;
  std::uint64_t bytes_out = 0;
  std::string_view error_code;
  asio::steady_timer wake;
};

Http2Connection::Http2Connection(EdgeContext& ctx, asio::any_io_executor executor, std::unique_ptr<ByteStream> stream,
                                 std::string sni, std::string client_ip)
    : ctx_(ctx),
      stream_(std::move(stream)),
      sni_(std::move(sni)),
      client_ip_(std::move(client_ip)),
      write_wake_(executor),
      idle_watchdog_(executor),
      send_watchdog_(executor) {}

Http2Connection::~Http2Connection() = default;

void Http2Connection::drain() {
  if (!h2_ || closing_) return;
  go_away(proto::kH2NoError, "draining");
}

void Http2Connection::force_close() {
  closed_ = true;
  idle_watchdog_.stop();
  send_watchdog_.stop();
  stream_->close();
  wake_writer();
}

void Http2Connection::go_away(std::uint32_t code, std::string_view why) {
  if (closing_) return;
  closing_ = true;
  (void)h2_->goaway(code, why);
  ctx_.metrics.h2_goaways_sent.Increment();
  // In-flight streams may finish; the idle deadline bounds how long that may take.
  idle_watchdog_.set(std::chrono::seconds(ctx_.config.shutdown_grace_seconds + 1), "drain");
  wake_writer();
}

void Http2Connection::update_idle() {
  if (closing_) return;
  if (streams_.empty()) {
    idle_watchdog_.set(std::chrono::seconds(ctx_.config.idle_timeout_seconds), "idle");
  } else {
    idle_watchdog_.clear();
  }
}

asio::awaitable<void> Http2Connection::run() {
  auto self = shared_from_this();
  proto::H2Settings settings;
  settings.max_concurrent_streams = static_cast<std::uint32_t>(ctx_.config.h2_max_concurrent_streams);
  settings.initial_window_size = static_cast<std::uint32_t>(ctx_.config.h2_stream_window_bytes);
  settings.max_header_list_size = static_cast<std::uint32_t>(ctx_.config.h2_max_header_list_bytes);
  settings.enable_connect_protocol = true;
  settings.header_table_size = static_cast<std::uint32_t>(ctx_.config.h2_header_table_bytes);
  // Uploads on several streams share the connection window: room for four full stream windows.
  settings.connection_window = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(4 * ctx_.config.h2_stream_window_bytes, 16 * 1024 * 1024));
  settings.reset_burst = static_cast<std::uint64_t>(ctx_.config.h2_reset_burst);
  settings.reset_rate_per_second = static_cast<std::uint64_t>(ctx_.config.h2_reset_rate_per_second);
  settings.max_continuations = static_cast<std::size_t>(ctx_.config.h2_max_continuations);
  // Public clients are not bound by PROTOCOL.md §4.1's agent limits on what we send them.
  settings.max_send_header_fields = 1000;
  settings.max_send_header_list_size = 256 * 1024;
  auto h2 = proto::H2Session::create(proto::H2Session::Role::server, settings);
  if (!h2) {
    ctx_.logger->error("edge: cannot create an HTTP/2 session: {}", h2.error().detail);
    stream_->close();
    co_return;
  }
  h2_ = std::move(*h2);
  glitch_window_start_ = SteadyClock::now();
  const auto on_expired = [self](std::string_view kind) {
    self->ctx_.metrics.timeout(kind).Increment();
    if (kind == "idle" && !self->closing_) {
      self->go_away(proto::kH2NoError, "idle");
      return;
    }
    self->force_close();
  };
  idle_watchdog_.on_expired = on_expired;
  send_watchdog_.on_expired = on_expired;
  asio::co_spawn(write_wake_.get_executor(), [self] { return self->idle_watchdog_.run(); }, asio::detached);
  asio::co_spawn(write_wake_.get_executor(), [self] { return self->send_watchdog_.run(); }, asio::detached);
  update_idle();
  asio::co_spawn(write_wake_.get_executor(), [self]() { return self->write_loop(); }, asio::detached);
  wake_writer();
  std::vector<std::uint8_t> buffer(kReadChunk);
  while (!closed_) {
    auto [ec, n] = co_await stream_->read_some(buffer);
    if (ec || closed_) break;
    auto received = h2_->receive(std::span(buffer.data(), n));
    if (!received) {
      ctx_.metrics.h2_protocol_errors.Increment();
      ctx_.logger->debug("edge: HTTP/2 error from {}: {}", client_ip_, received.error().detail);
      closing_ = true;
      handle_events();
      wake_writer();
      break;
    }
    handle_events();
    if (!check_glitches()) break;
    wake_writer();
  }
  // Lingering close: keep reading until the client closes or the idle deadline passes, so that
  // the GOAWAY is not lost to a RST answering unread input.
  if (!closed_ && closing_) {
    idle_watchdog_.set(std::chrono::seconds(1), "close");
    while (!closed_ && stream_->is_open()) {
      auto [ec, n] = co_await stream_->read_some(buffer);
      if (ec) break;
    }
  }
  closed_ = true;
  idle_watchdog_.stop();
  send_watchdog_.stop();
  for (auto& [id, stream] : streams_) {
    stream->closed = true;
    if (stream->exchange) stream->exchange->cancel();
    stream->wake.cancel();
  }
  wake_writer();
  stream_->close();
}

bool Http2Connection::check_glitches() {
  const auto& stats = h2_->stats();
  const std::uint64_t glitches = stats.protocol_errors + stats.resets_received + stats.flood_errors +
                                 stats.oversized_header_blocks;
  const auto now = SteadyClock::now();
  if (now - glitch_window_start_ >= std::chrono::minutes(1)) {
    glitch_window_start_ = now;
    glitches_at_window_start_ = glitches;
    return true;
  }
  if (glitches - glitches_at_window_start_ > static_cast<std::uint64_t>(ctx_.config.h2_max_glitches_per_minute)) {
    ctx_.metrics.h2_protocol_errors.Increment();
    ctx_.logger->info("edge: {} exceeded the HTTP/2 misbehaviour budget; closing", client_ip_);
    (void)h2_->terminate(proto::kH2EnhanceYourCalm);
    closing_ = true;
    wake_writer();
    return false;
  }
  return true;
}

asio::awaitable<void> Http2Connection::write_loop() {
  auto self = shared_from_this();
  std::string out;
  while (!closed_) {
    out.clear();
    if (h2_->want_write()) {
      auto produced = h2_->produce(out, kMaxWrite);
      if (!produced) break;
    }
    handle_events();
    if (!out.empty()) {
      send_watchdog_.set(std::chrono::seconds(ctx_.config.send_timeout_seconds), "send");
      const auto ec = co_await stream_->write_all(out);
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
    stream_->finish_sending();
  }
}

void Http2Connection::handle_events() {
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

void Http2Connection::wake_stream(std::int32_t id) {
  if (auto it = streams_.find(id); it != streams_.end()) it->second->wake.cancel();
}

void Http2Connection::on_request(proto::H2RequestHeaders&& headers) {
  if (closing_ || closed_) {
    (void)h2_->reset_stream(headers.stream_id, proto::kH2RefusedStream);
    return;
  }
  auto stream = std::make_unique<Stream>(write_wake_.get_executor());
  stream->id = headers.stream_id;
  stream->request_ended = headers.end_stream;
  stream->request = std::move(headers);
  const std::int32_t id = stream->id;
  streams_.emplace(id, std::move(stream));
  update_idle();
  ctx_.metrics.request("h2").Increment();
  asio::co_spawn(write_wake_.get_executor(),
                 [self = shared_from_this(), id]() { return self->serve_stream(id); }, asio::detached);
}

void Http2Connection::on_data(proto::H2Data&& data) {
  auto it = streams_.find(data.stream_id);
  if (it == streams_.end()) {
    (void)h2_->consume(data.stream_id, data.bytes.size());
    return;
  }
  Stream& s = *it->second;
  if (s.request.method == "CONNECT" && !s.ws) {
    // Bytes before the WebSocket is accepted mean nothing yet; they are dropped (and credited).
    (void)h2_->consume(s.id, data.bytes.size());
    if (data.end_stream) s.request_ended = true;
    s.wake.cancel();
    return;
  }
  if (s.ws) {
    // WebSocket frames from the client: decoded now, credited back once the agent's pipe has room.
    s.ws->feed_from_client(data.bytes);
    flush_ws_to_agent(s);
    if (s.exchange && s.exchange->to_agent().size() < ctx_.config.h2_stream_window_bytes) {
      (void)h2_->consume(s.id, data.bytes.size() + s.ws_owed_credit);
      s.ws_owed_credit = 0;
    } else {
      s.ws_owed_credit += data.bytes.size();
    }
    if (data.end_stream) {
      s.request_ended = true;
      if (!s.ws->client_close_received()) s.ws->client_gone();
      flush_ws_to_agent(s);
    }
    s.wake.cancel();
    return;
  }
  s.body_bytes += data.bytes.size();
  if (s.body_bytes > ctx_.config.max_request_body_bytes) {
    // Over the cap mid-stream: the answer can only be a reset (413 if nothing was answered yet
    // is sent by the stream task, which sees the flag).
    s.error_code = error_code::body_too_large;
    (void)h2_->consume(s.id, data.bytes.size());
    if (s.exchange) s.exchange->cancel();  // response() returns at once; the task answers 413
    s.wake.cancel();
    return;
  }
  if (s.exchange && !s.exchange->request_body().reader_closed()) {
    s.exchange->request_body().push(data.bytes);
  } else if (!s.exchange) {
    s.early_body.append(reinterpret_cast<const char*>(data.bytes.data()), data.bytes.size());
  } else {
    (void)h2_->consume(s.id, data.bytes.size());
  }
  if (data.end_stream) {
    s.request_ended = true;
    if (s.exchange) s.exchange->request_body().finish();
  }
  s.wake.cancel();
}

void Http2Connection::on_stream_closed(const proto::H2StreamClosed& closed) {
  auto it = streams_.find(closed.stream_id);
  if (it == streams_.end()) return;
  Stream& s = *it->second;
  s.closed = true;
  s.reset_by_peer = closed.reset_by_peer || closed.error_code != 0;
  s.wake.cancel();
}

void Http2Connection::attach_body(Stream& s) {
  relay::BytePipe& body = s.exchange->request_body();
  body.on_consumed = [weak = weak_from_this(), id = s.id](std::size_t n) {
    if (auto self = weak.lock(); self && self->h2_ && !self->closed_) {
      (void)self->h2_->consume(id, n);
      self->wake_writer();
    }
  };
  if (!s.early_body.empty()) {
    body.push(std::span(reinterpret_cast<const std::uint8_t*>(s.early_body.data()), s.early_body.size()));
    std::string().swap(s.early_body);
  }
  if (s.request_ended) body.finish();
}

void Http2Connection::flush_ws_to_agent(Stream& s) {
  if (!s.exchange || s.ws->pending_to_agent() == 0) return;
  const std::string bytes = s.ws->take_to_agent();
  // Bounded by the client's stream window: credit comes back only as the pipe drains.
  s.exchange->to_agent().push(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

asio::awaitable<bool> Http2Connection::stream_wait(Stream& s) {
  s.wake.expires_at(SteadyClock::time_point::max());
  co_await s.wake.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return !s.closed && !closed_;
}

asio::awaitable<void> Http2Connection::serve_stream(std::int32_t id) {
  auto self = shared_from_this();
  auto it = streams_.find(id);
  if (it == streams_.end()) co_return;
  Stream& s = *it->second;
  const proto::H2RequestHeaders& req = s.request;
  for (const auto& field : req.headers) {
    if (field.name == "accept") s.accept = field.value;
  }
  // The authority must name the connection's SNI (a coalesced connection for another name, or a
  // forged one, would otherwise reach a tunnel whose certificate the client never checked).
  const std::string authority = host_without_port(req.authority);
  bool bad_host = false;
  for (const auto& field : req.headers) {
    if (field.name == "host" && !req.authority.empty() && host_without_port(field.value) != authority) bad_host = true;
  }
  relay::InboundCall call;
  bool websocket = false;
  if (bad_host || (req.path.empty() && req.method != "CONNECT")) {
    co_await respond_error(s, EdgeError{400, error_code::bad_request});
  } else if (authority != sni_) {
    co_await respond_error(s, EdgeError{421, error_code::misdirected});
  } else if (req.method == "CONNECT" && req.protocol != "websocket") {
    co_await respond_error(s, EdgeError{405, error_code::method_not_allowed});
  } else {
    websocket = req.method == "CONNECT";
    auto target = co_await resolve_tunnel(ctx_, req.authority, true);
    if (!target) {
      co_await respond_error(s, target.error());
    } else {
      s.tunnel = target->name;
      std::optional<std::uint64_t> announced;
      for (const auto& field : req.headers) {
        if (field.name == "content-length") {
          std::uint64_t v = 0;
          auto [p, ec] = std::from_chars(field.value.data(), field.value.data() + field.value.size(), v);
          if (ec == std::errc()) announced = v;
        }
      }
      if (announced && *announced > ctx_.config.max_request_body_bytes) {
        co_await respond_error(s, EdgeError{413, error_code::body_too_large});
      } else {
        call.tunnel_id = target->route.id;
        call.kind = websocket ? proto::RouteKind::ws_upgrade : proto::RouteKind::webhook;
        call.request.method = websocket ? "GET" : req.method;
        call.request.target = req.path;
        call.request.headers.reserve(req.headers.size());
        for (const auto& field : req.headers) call.request.headers.emplace_back(field.name, field.value);
        call.request.client_ip = client_ip_;
        call.request.sni_host = sni_;
        call.has_body = !websocket && !(s.request_ended && s.early_body.empty());
        auto dispatched = ctx_.registry.dispatch(std::move(call));
        if (!dispatched) {
          co_await respond_error(s, error_for_envelope(dispatched.error()));
        } else {
          s.exchange = *dispatched;
          if (websocket) {
            s.protocol = "ws-h2";
          } else {
            attach_body(s);
          }
          // (No co_await inside a conditional expression: GCC 12 miscompiles it.)
          Expected<relay::ResponseHead, relay::DispatchFailure> head =
              unexpected(relay::DispatchFailure{413, "body-too-large"});
          if (s.error_code != error_code::body_too_large) head = co_await s.exchange->response();
          if (s.error_code == error_code::body_too_large) s.exchange->cancel();
          if (s.closed || closed_) {
            s.exchange->cancel();
          } else if (!head) {
            co_await respond_error(s, s.error_code == error_code::body_too_large
                                          ? EdgeError{413, error_code::body_too_large}
                                          : error_for_failure(head.error()));
          } else if (websocket && head->status == 200) {
            co_await run_websocket(s, std::move(*head));
          } else {
            co_await send_response(s, std::move(*head));
          }
        }
      }
    }
  }
  finish(s);
  streams_.erase(id);
  update_idle();
  wake_writer();
}

asio::awaitable<void> Http2Connection::respond_error(Stream& s, const EdgeError& error) {
  ErrorResponse page = render_error(error, s.accept, retry_after_for(ctx_, error));
  const bool head_only = s.request.method == "HEAD";
  std::vector<proto::H2Header> headers;
  headers.reserve(page.headers.size() + 1);
  for (auto& field : page.headers) headers.push_back({std::move(field.name), std::move(field.value)});
  headers.push_back({"content-length", std::to_string(page.body.size())});
  s.status = page.status;
  s.error_code = error.code;
  if (s.closed || closed_) co_return;
  if (!h2_->submit_response(s.id, page.status, headers, head_only || page.body.empty())) co_return;
  if (!head_only && !page.body.empty()) {
    if (co_await send_body(s, page.body)) (void)h2_->end_stream(s.id);
  }
  // A request body we will not read is refused, so the client stops sending it; but only after the
  // answer has gone out (a reset submitted now would make nghttp2 drop the answer).
  if (!s.request_ended) (void)h2_->reset_after_response(s.id);
  wake_writer();
}

asio::awaitable<bool> Http2Connection::send_body(Stream& s, std::string_view bytes) {
  while (!bytes.empty()) {
    if (s.closed || closed_) co_return false;
    auto taken = h2_->write_data(s.id, bytes);
    if (!taken) co_return false;
    bytes.remove_prefix(*taken);
    s.bytes_out += *taken;
    wake_writer();
    if (!bytes.empty() && !co_await stream_wait(s)) co_return false;
  }
  co_return true;
}

asio::awaitable<void> Http2Connection::send_response(Stream& s, relay::ResponseHead head) {
  relay::BytePipe& body = s.exchange->response_body();
  if (head.status < 200) {
    body.close_reader();
    co_await respond_error(s, EdgeError{502, error_code::bad_agent_response});
    co_return;
  }
  const bool has_body = proto::response_has_body(s.request.method, head.status);
  std::vector<proto::H2Header> headers;
  headers.reserve(head.headers.size() + 1);
  for (auto& field : head.headers) headers.push_back({std::move(field.name), std::move(field.value)});
  if (has_body && head.body_length) headers.push_back({"content-length", std::to_string(*head.body_length)});
  s.status = head.status;
  const bool empty = !has_body || (head.body_length && *head.body_length == 0);
  if (empty) body.close_reader();
  if (!h2_->submit_response(s.id, head.status, headers, empty)) {
    body.close_reader();
    s.exchange->cancel();
    co_return;
  }
  wake_writer();
  if (empty) co_return;
  for (;;) {
    relay::PipeRead piece = co_await body.read(kBodyChunk);
    if (!piece.bytes.empty()) {
      if (!co_await send_body(s, piece.bytes)) {
        body.close_reader();
        s.exchange->cancel();
        co_return;
      }
      continue;
    }
    if (piece.end == relay::PipeEnd::finished) {
      (void)h2_->end_stream(s.id);
    } else {
      (void)h2_->reset_stream(s.id, proto::kH2InternalError);  // the agent went away mid-body
    }
    wake_writer();
    co_return;
  }
}

asio::awaitable<void> Http2Connection::run_websocket(Stream& s, relay::ResponseHead head) {
  s.exchange->response_body().close_reader();
  std::vector<std::pair<std::string, std::string>> request_headers;
  for (const auto& field : s.request.headers) request_headers.emplace_back(field.name, field.value);
  auto accept = proto::prepare_ws_accept(std::move(head.headers), proto::offered_subprotocols(request_headers), "");
  if (!accept) {
    s.exchange->cancel();
    co_await respond_error(s, EdgeError{accept.error().third_party_status, error_code::bad_agent_response});
    co_return;
  }
  auto bridged = co_await s.exchange->bridge();
  if (s.closed || closed_) {
    s.exchange->cancel();
    co_return;
  }
  if (!bridged) {
    co_await respond_error(s, error_for_failure(bridged.error()));
    co_return;
  }
  std::vector<proto::H2Header> headers;
  for (auto& field : accept->headers) headers.push_back({std::move(field.name), std::move(field.value)});
  if (!h2_->submit_response(s.id, 200, headers, false)) {
    s.exchange->cancel();
    co_return;
  }
  s.status = 200;
  s.exchange->accept_bridge();
  TunnelSeries& series = ctx_.metrics.tunnel(s.tunnel);
  series.websockets_open->Increment();
  proto::PublicWebSocketLimits limits;
  limits.max_message_bytes = ctx_.config.max_ws_message_bytes;
  limits.max_frame_payload = ctx_.config.max_ws_message_bytes;
  s.ws = std::make_unique<proto::PublicWebSocket>(limits);
  relay::Exchange& exchange = *s.exchange;
  exchange.to_agent().on_consumed = [weak = weak_from_this(), id = s.id](std::size_t) {
    auto self = weak.lock();
    if (!self || self->closed_) return;
    auto it = self->streams_.find(id);
    if (it == self->streams_.end()) return;
    Stream& st = *it->second;
    if (st.ws_owed_credit > 0 && st.exchange->to_agent().size() < self->ctx_.config.h2_stream_window_bytes) {
      (void)self->h2_->consume(id, st.ws_owed_credit);
      st.ws_owed_credit = 0;
      self->wake_writer();
    }
  };
  exchange.from_agent().on_readable = [weak = weak_from_this(), id = s.id]() {
    if (auto self = weak.lock()) self->wake_stream(id);
  };
  wake_writer();
  // One loop for both directions: client frames are decoded in on_data (which wakes us), agent
  // messages are taken here; every output is flushed before waiting again.
  while (!s.closed && !closed_) {
    flush_ws_to_agent(s);
    if (exchange.from_agent().size() > 0 || exchange.from_agent().at_end()) {
      relay::PipeRead piece = co_await exchange.from_agent().read(kBodyChunk);
      if (!piece.bytes.empty()) {
        s.ws->feed_from_agent(std::span(reinterpret_cast<const std::uint8_t*>(piece.bytes.data()), piece.bytes.size()));
      } else if (piece.end == relay::PipeEnd::finished) {
        s.ws->agent_finished(exchange.agent_close_code());
      } else {
        s.ws->agent_failed();
      }
    }
    if (s.ws->pending_to_client() > 0) {
      const std::string bytes = s.ws->take_to_client();
      if (!co_await send_body(s, bytes)) break;
    }
    if (s.ws->finished() || (s.ws->agent_ended() && s.ws->client_close_sent())) break;
    if (s.ws->client_close_received() && s.ws->agent_close_sent()) break;
    if (exchange.from_agent().size() > 0 || exchange.from_agent().at_end()) continue;
    if (!co_await stream_wait(s)) break;
  }
  if (!s.ws->agent_ended() && !s.ws->agent_close_sent()) s.ws->client_gone();
  flush_ws_to_agent(s);
  exchange.to_agent().finish();
  exchange.from_agent().on_readable = nullptr;
  exchange.to_agent().on_consumed = nullptr;
  if (!s.closed && !closed_) {
    (void)h2_->end_stream(s.id);
    if (!s.request_ended) (void)h2_->reset_after_response(s.id);  // after the last frames, not instead
  }
  if (s.ws_owed_credit > 0 && !closed_) (void)h2_->consume(s.id, s.ws_owed_credit);
  series.websockets_open->Decrement();
  wake_writer();
}

void Http2Connection::finish(Stream& s) {
  AccessRecord record;
  record.protocol = s.protocol;
  record.tunnel = s.tunnel;
  record.method = s.request.method;
  record.target = s.request.path;
  record.status = s.status;
  record.bytes_in = s.body_bytes;
  record.bytes_out = s.bytes_out;
  record.started = s.started;
  record.client_ip = client_ip_;
  record.error_code = s.error_code;
  record_access(ctx_, record);
}

}  // namespace inkwire::edge
