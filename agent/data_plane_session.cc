#include "agent/data_plane_session.h"

#include <malloc.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <charconv>

#include "agent/handler_exchange.h"
#include "agent/http_exchange.h"
#include "agent/tcp_bridge.h"
#include "agent/websocket_forwarder.h"

namespace inkwire::agent {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxWrite = 256 * 1024;
// Hello and non-200 intake replies are small JSON; anything larger is cut (never buffered whole).
constexpr std::size_t kMaxControlReply = 64 * 1024;

const std::string* find(const proto::H2Headers& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (h.name == name) return &h.value;
  }
  return nullptr;
}

}  // namespace

DataPlaneSession::DataPlaneSession(asio::any_io_executor executor, const SessionSettings& settings, SSL_CTX* tls,
                                   const Dispatch& dispatch, Logger logger)
    : executor_(executor),
      settings_(settings),
      tls_(tls),
      dispatch_(dispatch),
      logger_(std::move(logger)),
      write_wake_(executor),
      timer_(executor),
      outcome_wake_(executor) {}

DataPlaneSession::~DataPlaneSession() {
  ended_ = true;  // the streams below must not reach back into a session that is going away
  for (auto& [id, s] : streams_) {
    if (s.channel) s.channel->on_connection_end();
  }
  streams_.clear();
}

void DataPlaneSession::end_session(SessionEnd end, std::string detail) {
  if (!result_) result_ = SessionResult{end, std::move(detail), connected_};
  ended_ = true;
  if (stream_) stream_->close();
  timer_.cancel();
  outcome_wake_.cancel();
  wake_writer();
  for (auto& [id, s] : streams_) {
    if (s.channel) s.channel->on_connection_end();
  }
}

void DataPlaneSession::close() {
  if (ended_ || closing_) return;
  closing_ = true;
  close_deadline_ = SteadyClock::now() + settings_.drain_timeout;
  timer_.cancel();
  if (!result_) result_ = SessionResult{SessionEnd::closed, "closed", connected_};
  if (h2_) {
    (void)h2_->goaway(proto::kH2NoError);
    wake_writer();
  }
  if (in_flight_ == 0) end_session(SessionEnd::closed, "closed");
}

asio::awaitable<bool> DataPlaneSession::connect_transport() {
  asio::ip::tcp::resolver resolver(executor_);
  auto [rec, endpoints] = co_await resolver.async_resolve(settings_.host, settings_.port,
                                                          asio::as_tuple(asio::use_awaitable));
  if (rec) {
    result_ = SessionResult{SessionEnd::transient, "cannot resolve " + settings_.host + ": " + rec.message()};
    co_return false;
  }
  asio::ip::tcp::socket socket(executor_);
  timer_.expires_after(settings_.connect_timeout);
  bool timed_out = false;
  timer_.async_wait([&socket, &timed_out](const boost::system::error_code& ec) {
    if (!ec) {
      timed_out = true;
      boost::system::error_code ignored;
      socket.close(ignored);
    }
  });
  auto [cec, endpoint] = co_await asio::async_connect(socket, endpoints, asio::as_tuple(asio::use_awaitable));
  if (cec) {
    timer_.cancel();
    result_ = SessionResult{SessionEnd::transient, "cannot connect to " + settings_.authority + ": " +
                                                       (timed_out ? std::string("timed out") : cec.message())};
    co_return false;
  }
  boost::system::error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  socket.set_option(asio::socket_base::keep_alive(true), ignored);
  stream_ = std::make_unique<TlsSocket>(std::move(socket), tls_, TlsSocket::Client{settings_.host});
  const auto hec = co_await stream_->handshake();
  timer_.cancel();
  if (hec) {
    result_ = SessionResult{SessionEnd::transient, "TLS handshake with " + settings_.authority + " failed: " +
                                                       (timed_out ? std::string("timed out") : hec.message())};
    co_return false;
  }
  if (stream_->alpn() != "h2") {
    result_ = SessionResult{SessionEnd::transient, "the server did not select ALPN h2"};
    co_return false;
  }
  co_return true;
}

asio::awaitable<SessionResult> DataPlaneSession::run() {
  auto self = shared_from_this();
  if (!co_await connect_transport()) {
    if (stream_) stream_->close();
    co_return result_.value_or(SessionResult{SessionEnd::transient, "connect failed"});
  }
  proto::H2Settings h2settings;
  h2settings.max_concurrent_streams = 100;
  h2settings.initial_window_size = 1024 * 1024;
  h2settings.connection_window = 16 * 1024 * 1024;
  // The relay answers with at least 256; nghttp2 assumes 100 until its SETTINGS arrive.
  h2settings.assumed_peer_max_concurrent_streams = 100;
  auto h2 = proto::H2Session::create(proto::H2Session::Role::client, h2settings);
  if (!h2) {
    stream_->close();
    co_return SessionResult{SessionEnd::transient, "cannot create an HTTP/2 session: " + h2.error().detail};
  }
  h2_ = std::move(*h2);
  // Hello (§4.3).
  proto::H2Headers hello{{"x-tunnel-id", settings_.tunnel_id},
                         {"x-tunnel-secret", settings_.secret},
                         {"content-length", "0"},
                         {"x-pool-size", std::to_string(settings_.pool_size)}};
  auto hello_stream = h2_->submit_request("POST", "https", settings_.authority, "/_system/hello", hello, true);
  if (!hello_stream) {
    stream_->close();
    co_return SessionResult{SessionEnd::transient, "cannot send hello: " + hello_stream.error().detail};
  }
  streams_[*hello_stream].kind = StreamKind::hello;
  asio::co_spawn(executor_, [self] { return self->write_loop(); }, asio::detached);
  next_ping_at_ = SteadyClock::now() + settings_.ping_interval;
  asio::co_spawn(executor_, [self] { return self->timer_loop(); }, asio::detached);
  wake_writer();
  asio::co_spawn(executor_, [self] { return self->read_loop(); }, asio::detached);
  // Returns when the session ends, or early when the relay starts a drain (GOAWAY NO_ERROR) with
  // requests still in flight: the runtime then connects the next session at once while this one
  // finishes them (make-before-break), and their answers move to the new one once it is up.
  while (!ended_ && !draining_) {
    outcome_wake_.expires_at(SteadyClock::time_point::max());
    co_await outcome_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (!ended_) co_return SessionResult{SessionEnd::normal, result_ ? result_->detail : "draining", true, true};
  // Tasks still running see ended_ and finish on their own; they hold `self`.
  co_return result_.value_or(SessionResult{SessionEnd::transient, "session ended"});
}

asio::awaitable<void> DataPlaneSession::read_loop() {
  auto self = shared_from_this();
  std::vector<std::uint8_t> buffer(kReadChunk);
  while (!ended_) {
    auto [ec, n] = co_await stream_->read_some(buffer);
    if (ec || ended_) {
      if (!ended_) end_session(closing_ ? SessionEnd::closed : SessionEnd::transient,
                               ec == asio::error::eof ? "the server closed the connection" : ec.message());
      break;
    }
    auto received = h2_->receive(std::span(buffer.data(), n));
    handle_events();
    if (!received) {
      end_session(SessionEnd::transient, "HTTP/2 error: " + received.error().detail);
      break;
    }
    wake_writer();
  }
}

asio::awaitable<void> DataPlaneSession::write_loop() {
  auto self = shared_from_this();
  std::string out;
  while (!ended_) {
    out.clear();
    if (h2_->want_write()) {
      auto produced = h2_->produce(out, kMaxWrite);
      if (!produced) {
        end_session(SessionEnd::transient, "HTTP/2 error while sending: " + produced.error().detail);
        break;
      }
    }
    handle_events();
    if (!out.empty()) {
      if (co_await stream_->write_all(out)) {
        end_session(SessionEnd::transient, "write failed");
        break;
      }
      continue;
    }
    if (h2_->should_close()) {
      end_session(result_ ? result_->end : SessionEnd::normal, result_ ? result_->detail : "closed by the server");
      break;
    }
    write_wake_.expires_at(SteadyClock::time_point::max());
    co_await write_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> DataPlaneSession::timer_loop() {
  auto self = shared_from_this();
  while (!ended_) {
    auto at = next_ping_at_;
    if (ping_sent_at_) at = std::min(at, *ping_sent_at_ + settings_.ping_timeout);
    if (closing_) at = std::min(at, close_deadline_);
    timer_.expires_at(at);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ended_) break;
    const auto now = SteadyClock::now();
    if (closing_ && now >= close_deadline_) {
      // Requests (or WebSocket sessions) still running after the drain bound are cut.
      logger_->info("agent: {} request(s) still in flight after {} s; closing the connection", in_flight_,
                    settings_.drain_timeout.count());
      end_session(result_ ? result_->end : SessionEnd::closed, result_ ? result_->detail : "closed");
      break;
    }
    if (ping_sent_at_ && now >= *ping_sent_at_ + settings_.ping_timeout) {
      end_session(SessionEnd::transient, "no PING acknowledgement within " +
                                             std::to_string(settings_.ping_timeout.count()) + " s");
      break;
    }
    if (now >= next_ping_at_ && connected_) {
      if (in_flight_ == 0 && busy_since_trim_) {
        // Idle after traffic: give the allocator's free pages back (a burst of large bodies would
        // otherwise keep ~10 MiB of freed heap resident in an agent that then idles for hours).
        busy_since_trim_ = false;
        ::malloc_trim(0);
      }
      if (!ping_sent_at_) {
        (void)h2_->ping(++ping_opaque_);
        ping_sent_at_ = now;
        wake_writer();
      }
      next_ping_at_ = now + settings_.ping_interval;
    } else if (now >= next_ping_at_) {
      next_ping_at_ = now + settings_.ping_interval;
    }
  }
}

void DataPlaneSession::handle_events() {
  while (auto event = h2_->next_event()) {
    if (auto* headers = std::get_if<proto::H2ResponseHeaders>(&*event)) {
      on_response_headers(std::move(*headers));
    } else if (auto* data = std::get_if<proto::H2Data>(&*event)) {
      on_data(std::move(*data));
    } else if (auto* closed = std::get_if<proto::H2StreamClosed>(&*event)) {
      on_stream_closed(*closed);
    } else if (auto* writable = std::get_if<proto::H2StreamWritable>(&*event)) {
      if (auto it = streams_.find(writable->stream_id); it != streams_.end() && it->second.channel) {
        it->second.channel->on_writable();
      }
    } else if (auto* goaway = std::get_if<proto::H2GoAwayReceived>(&*event)) {
      // §4.10 / §9: NO_ERROR is a drain (reconnect now, in-flight posts finish here); 0x1201 means
      // another agent took the tunnel over.
      if (goaway->error_code == proto::kH2Superseded) {
        result_ = SessionResult{SessionEnd::superseded, "superseded by another agent", connected_};
      } else if (!result_) {
        result_ = SessionResult{goaway->error_code == proto::kH2NoError ? SessionEnd::normal : SessionEnd::transient,
                                "the server sent GOAWAY (code " + std::to_string(goaway->error_code) + ")",
                                connected_};
      }
      closing_ = true;
      close_deadline_ = SteadyClock::now() + settings_.drain_timeout;
      timer_.cancel();  // the timer loop now also watches the drain bound
      if (in_flight_ == 0) {
        end_session(result_->end, result_->detail);
      } else if (result_->end == SessionEnd::normal && connected_) {
        draining_ = true;
        outcome_wake_.cancel();
      }
    } else if (std::holds_alternative<proto::H2PingAcked>(*event)) {
      ping_sent_at_.reset();
    }
  }
}

std::shared_ptr<TunnelStream> DataPlaneSession::track(std::int32_t id, StreamKind kind) {
  StreamState& s = streams_[id];
  s.kind = kind;
  s.channel = std::make_shared<TunnelStream>(executor_, weak_owner(), id);
  return s.channel;
}

void DataPlaneSession::on_response_headers(proto::H2ResponseHeaders&& headers) {
  auto it = streams_.find(headers.stream_id);
  if (it == streams_.end()) return;
  StreamState& s = it->second;
  s.status = headers.status;
  if (s.channel) {
    s.channel->on_headers(headers.status, std::move(headers.headers), headers.end_stream);
    if (headers.end_stream) s.ended = true;
    return;
  }
  s.headers = std::move(headers.headers);
  if (s.kind == StreamKind::intake && s.status == 200) {
    envelope_arrived(headers.stream_id, s, headers.end_stream);
    return;
  }
  if (headers.end_stream) {
    s.ended = true;
    stream_complete(headers.stream_id, s);
  }
}

void DataPlaneSession::on_data(proto::H2Data&& data) {
  auto it = streams_.find(data.stream_id);
  if (it == streams_.end()) {
    (void)h2_->consume(data.stream_id, data.bytes.size());
    return;
  }
  StreamState& s = it->second;
  if (s.kind == StreamKind::post) {
    // The relay's answer to a post is a status; its few body bytes are nobody's to read.
    (void)h2_->consume(data.stream_id, data.bytes.size());
    s.channel->on_data({}, data.end_stream);
    if (data.end_stream) s.ended = true;
    return;
  }
  if (s.channel) {
    // Credited as the task reads it (TunnelStream), so a slow upstream holds the relay back.
    s.channel->on_data(data.bytes, data.end_stream);
    if (data.end_stream) s.ended = true;
    return;
  }
  (void)h2_->consume(data.stream_id, data.bytes.size());
  if (s.body.size() + data.bytes.size() <= kMaxControlReply) {
    s.body.append(reinterpret_cast<const char*>(data.bytes.data()), data.bytes.size());
  }
  if (data.end_stream) {
    s.ended = true;
    stream_complete(data.stream_id, s);
  }
}

void DataPlaneSession::on_stream_closed(const proto::H2StreamClosed& closed) {
  auto it = streams_.find(closed.stream_id);
  if (it == streams_.end()) return;
  StreamState& s = it->second;
  if (s.channel) {
    s.channel->on_closed(closed.error_code != 0);
    streams_.erase(it);
    return;
  }
  if (s.kind == StreamKind::intake && !s.ended) {
    // Reset by the server before it delivered anything (§4.5 step 5): park again at once.
    const int slot = s.slot;
    streams_.erase(it);
    if (!ended_ && !closing_) park(slot);
    return;
  }
  if (s.kind == StreamKind::hello && !s.ended) {
    end_session(SessionEnd::transient, "the hello stream was reset");
    return;
  }
  streams_.erase(it);
}

void DataPlaneSession::park(int slot) {
  proto::H2Headers headers{{"x-tunnel-id", settings_.tunnel_id},
                           {"x-owner-token", owner_token_},
                           {"x-pool-slot", std::to_string(slot)},
                           {"content-length", "0"}};
  auto id = h2_->submit_request("POST", "https", settings_.authority, "/_system/intake", headers, true);
  if (!id) {
    end_session(SessionEnd::transient, "cannot park an intake: " + id.error().detail);
    return;
  }
  StreamState& s = streams_[*id];
  s.kind = StreamKind::intake;
  s.slot = slot;
  wake_writer();
}

void DataPlaneSession::hello_complete(StreamState& stream) {
  if (stream.status == 401 || stream.status == 403) {
    end_session(SessionEnd::auth_failed, "hello refused with " + std::to_string(stream.status) + ": " + stream.body);
    return;
  }
  if (stream.status != 200) {
    end_session(SessionEnd::transient, "hello answered " + std::to_string(stream.status));
    return;
  }
  boost::system::error_code ec;
  auto json = boost::json::parse(stream.body, ec);
  const auto* obj = !ec ? json.if_object() : nullptr;
  const auto* token = obj ? obj->if_contains("owner_token") : nullptr;
  if (!token || !token->is_string() || token->as_string().empty()) {
    end_session(SessionEnd::transient, "hello reply without an owner token");
    return;
  }
  owner_token_ = std::string(token->as_string());
  pool_ = settings_.pool_size;
  if (const auto* size = obj->if_contains("default_pool_size"); size && size->is_int64() && size->as_int64() > 0) {
    pool_ = static_cast<int>(std::min<std::int64_t>(size->as_int64(), 32));
  }
  if (const auto* deadline = obj->if_contains("response_deadline_seconds"); deadline && deadline->is_number()) {
    const double value = deadline->to_number<double>();
    if (value > 0) response_deadline_seconds_ = value;
  }
  connected_ = true;
  logger_->info("agent: connected to {} (pool {})", settings_.authority, pool_);
  if (on_connected) on_connected();
  for (int slot = 0; slot < pool_; ++slot) park(slot);
}

void DataPlaneSession::envelope_arrived(std::int32_t id, StreamState& s, bool end_stream) {
  const int slot = s.slot;
  auto envelope = std::make_shared<Envelope>(parse_envelope(std::move(s.headers)));
  s.headers.clear();
  // The body streams in on the same HTTP/2 stream; the slot is parked again at once (the relay
  // unparked this stream when it delivered), so the pool stays full while the body arrives.
  envelope->body = std::make_shared<TunnelStream>(executor_, weak_owner(), id);
  envelope->body->on_headers(200, {}, end_stream);
  envelope->body->mark_sent_end();
  s.channel = envelope->body;
  if (end_stream) s.ended = true;
  if (!closing_ && !ended_) park(slot);
  if (envelope->request_id.empty()) return;  // what the SDKs do: nothing can be posted back
  ++in_flight_;
  asio::co_spawn(executor_, [self = shared_from_this(), envelope] { return self->handle_envelope(envelope); },
                 asio::detached);
}

void DataPlaneSession::stream_complete(std::int32_t id, StreamState& s) {
  if (s.kind == StreamKind::hello) {
    hello_complete(s);
    streams_.erase(id);
    return;
  }
  // A non-200 intake reply (200s are envelopes, handled as their headers arrive).
  const int slot = s.slot;
  const std::string* reason = find(s.headers, "inkbox-reason");
  if (s.status == 401) {
    const bool superseded = reason && *reason == "intake-superseded";
    end_session(superseded ? SessionEnd::superseded : SessionEnd::transient,
                superseded ? "superseded by another agent" : "intake refused (401)");
    return;
  }
  streams_.erase(id);
  if (!closing_ && !ended_) park(slot);  // 204 (idle) and anything else: park again at once
}

std::chrono::steady_clock::time_point DataPlaneSession::response_deadline(const Envelope& envelope) const {
  return envelope.received + std::chrono::milliseconds(static_cast<std::int64_t>(response_deadline_seconds_ * 1000));
}

std::shared_ptr<TunnelStream> DataPlaneSession::open_post(const Envelope& envelope, int status, std::string_view reason,
                                                          const std::vector<proto::HeaderField>& headers,
                                                          std::optional<std::uint64_t> content_length,
                                                          bool empty_body) {
  // Draining: once the next connection is up, answers go over it, so this one can be released.
  if (draining_) {
    if (auto next = successor_.lock(); next && next->connected_ && !next->ended_ && !next->closing_) {
      return next->open_post(envelope, status, reason, headers, content_length, empty_body);
    }
  }
  if (ended_) return nullptr;
  proto::H2Headers fields;
  fields.reserve(headers.size() + 6);
  fields.push_back({"x-tunnel-id", settings_.tunnel_id});
  fields.push_back({"x-tunnel-secret", settings_.secret});
  fields.push_back({"inkbox-status", std::to_string(status)});
  fields.push_back({"inkbox-request-id", envelope.request_id});
  if (content_length) fields.push_back({"content-length", std::to_string(*content_length)});
  for (const auto& h : headers) {
    if (!proto::is_valid_field_value(h.value, true) || !proto::is_token(h.name)) continue;
    fields.push_back({"inkbox-h-" + h.name, h.value});
  }
  if (!reason.empty()) fields.push_back({"inkbox-reason", std::string(reason)});
  auto id = h2_->submit_request("POST", "https", settings_.authority, "/_system/response/" + envelope.request_id,
                                fields, empty_body);
  if (!id) {
    logger_->warn("agent: cannot post the response for {}: {}", envelope.request_id, id.error().detail);
    return nullptr;
  }
  wake_writer();
  auto post = track(*id, StreamKind::post);
  envelope.answer = post;
  return post;
}

asio::awaitable<void> DataPlaneSession::post_simple(const Envelope& envelope, int status, std::string_view reason,
                                                    std::string_view body) {
  std::vector<proto::HeaderField> headers;
  if (!body.empty()) headers.push_back({"content-type", "text/plain; charset=utf-8"});
  auto post = open_post(envelope, status, reason, headers, body.size(), body.empty());
  if (!post || body.empty()) co_return;
  const auto written = co_await post->write_all(body);
  if (!written) post->finish_sending();
}

std::shared_ptr<TunnelStream> DataPlaneSession::open_bridge(BridgeKind kind, const std::string& id) {
  if (ended_) return nullptr;
  const bool ws = kind == BridgeKind::ws;
  proto::H2Headers headers{{"sec-websocket-version", "13"}};
  if (!ws) headers.push_back({"sec-websocket-protocol", "inkbox-tunnel-tcp"});
  headers.push_back({"x-tunnel-id", settings_.tunnel_id});
  headers.push_back({"x-tunnel-secret", settings_.secret});
  headers.push_back({ws ? "inkbox-ws-id" : "inkbox-tcp-id", id});
  const std::string path = (ws ? "/_system/ws/" : "/_system/tcp/") + id;
  std::optional<std::string> protocol(ws ? "inkbox-tunnel-ws" : "inkbox-tunnel-tcp");
  auto stream = h2_->submit_request("CONNECT", "https", settings_.authority, path, headers, false, protocol);
  if (!stream) {
    logger_->warn("agent: cannot open the bridge {}: {}", path, stream.error().detail);
    return nullptr;
  }
  wake_writer();
  return track(*stream, StreamKind::bridge);
}

asio::awaitable<void> DataPlaneSession::handle_envelope(std::shared_ptr<Envelope> envelope) {
  auto self = shared_from_this();
  const auto started = SteadyClock::now();
  ExchangeOutcome outcome;
  const Dispatch& to = dispatch_;
  if (envelope->kind == "tcp-stream") {
    if (to.passthrough && to.forwarder) {
      envelope->method = "TLS";
      envelope->path = envelope->sni_host.empty() ? settings_.public_host : envelope->sni_host;
      outcome = co_await forward_tcp(*this, *to.passthrough, *to.forwarder, random_, *envelope);
    } else {
      // §4.9: never for an edge tunnel; logged and dropped, no bridge.
      logger_->info("agent: dropped a tcp-stream envelope (this agent serves an edge tunnel)");
    }
  } else if (to.passthrough) {
    // §4.9: webhook and ws-upgrade never go to a passthrough tunnel.
    logger_->info("agent: dropped a {} envelope (this agent serves a passthrough tunnel)",
                  envelope->kind.empty() ? "webhook" : envelope->kind);
    co_await post_simple(*envelope, 502, "wrong-route-kind", "this tunnel is passthrough");
    outcome.status = 502;
  } else if (envelope->kind == "ws-upgrade") {
    if (to.ws_handler) {
      outcome = co_await serve_with_ws_handler(*this, *to.ws_handler, random_, *envelope);
    } else if (to.forwarder) {
      outcome = co_await forward_websocket(*this, to.forwarder->dialer(), random_, *envelope, WebSocketLimits{});
    } else {
      co_await post_simple(*envelope, 501, "ws-not-supported", "this agent takes no WebSockets");
      outcome.status = 501;
    }
  } else if (to.http_handler) {
    outcome = co_await serve_with_handler(*this, *to.http_handler, *envelope);
  } else if (to.forwarder) {
    outcome = co_await forward_http(*this, *to.forwarder, *envelope);
  }
  // A body still arriving (the answer did not need all of it) is cut with RST_STREAM — after the
  // relay has taken the answer: nghttp2 sends RST_STREAM ahead of a new stream's HEADERS, and an
  // intake reset before the post would fail the request (or put it back in the queue).
  if (!envelope->body->input_ended() && envelope->answer && !ended_) {
    (void)co_await envelope->answer->wait_headers(SteadyClock::now() + std::chrono::seconds(5));
  }
  envelope->body->close();  // unread body bytes are credited back
  envelope->answer.reset();
  if (outcome.status != 0 && on_request) {
    RequestRecord record;
    record.method = envelope->method;
    record.path = envelope->path;
    record.status = outcome.status;
    record.duration = SteadyClock::now() - started;
    record.bytes_in = outcome.bytes_in;
    record.bytes_out = outcome.bytes_out;
    on_request(record);
  }
  busy_since_trim_ = true;
  if (--in_flight_ == 0 && closing_ && !ended_) end_session(result_ ? result_->end : SessionEnd::closed, "closed");
}

}  // namespace inkwire::agent
