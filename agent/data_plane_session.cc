#include "agent/data_plane_session.h"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <charconv>

#include "proto/forward_target.h"
#include "proto/path_check.h"

namespace inkwire::agent {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxWrite = 256 * 1024;

const std::string* find(const proto::H2Headers& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (h.name == name) return &h.value;
  }
  return nullptr;
}

// The request hop-by-hop set (§4.6 rule 3) and the forwarding fields the agent sets itself (§6.3).
bool not_forwarded(std::string_view name) {
  static constexpr std::string_view kSkip[] = {
      "host", "connection", "upgrade", "keep-alive", "te", "trailer", "transfer-encoding", "proxy-authenticate",
      "proxy-authorization", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
      "proxy-connection", "http2-settings", "expect", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
      "forwarded", "content-length"};
  for (auto skip : kSkip) {
    if (name == skip) return true;
  }
  return false;
}

}  // namespace

struct DataPlaneSession::Envelope {
  std::string request_id;
  std::string kind;
  std::string method = "GET";
  std::string path = "/";
  std::string forwarded_for;
  std::vector<proto::HeaderField> forwarded;  // inkbox-h-* without the prefix
  std::string body;
  bool oversized = false;
  SteadyClock::time_point received = SteadyClock::now();
};

DataPlaneSession::DataPlaneSession(asio::any_io_executor executor, const SessionSettings& settings, SSL_CTX* tls,
                                   HttpForwarder& forwarder, Logger logger)
    : executor_(executor),
      settings_(settings),
      tls_(tls),
      forwarder_(forwarder),
      logger_(std::move(logger)),
      write_wake_(executor),
      timer_(executor) {}

DataPlaneSession::~DataPlaneSession() = default;

void DataPlaneSession::end_session(SessionEnd end, std::string detail) {
  if (!result_) result_ = SessionResult{end, std::move(detail), connected_};
  ended_ = true;
  if (stream_) stream_->close();
  timer_.cancel();
  wake_writer();
  for (auto& [id, s] : streams_) {
    if (s.wake) s.wake->cancel();
  }
}

void DataPlaneSession::close() {
  if (ended_ || closing_) return;
  closing_ = true;
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
  // Tasks still running see ended_ and finish on their own; they hold `self`.
  co_return result_.value_or(SessionResult{SessionEnd::transient, "session ended"});
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
    timer_.expires_at(at);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ended_) break;
    const auto now = SteadyClock::now();
    if (ping_sent_at_ && now >= *ping_sent_at_ + settings_.ping_timeout) {
      end_session(SessionEnd::transient, "no PING acknowledgement within " +
                                             std::to_string(settings_.ping_timeout.count()) + " s");
      break;
    }
    if (now >= next_ping_at_ && connected_) {
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
      if (auto it = streams_.find(writable->stream_id); it != streams_.end() && it->second.wake) it->second.wake->cancel();
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
      if (in_flight_ == 0) end_session(result_->end, result_->detail);
    } else if (std::holds_alternative<proto::H2PingAcked>(*event)) {
      ping_sent_at_.reset();
    }
  }
}

void DataPlaneSession::on_response_headers(proto::H2ResponseHeaders&& headers) {
  auto it = streams_.find(headers.stream_id);
  if (it == streams_.end()) return;
  StreamState& s = it->second;
  s.status = headers.status;
  s.headers = std::move(headers.headers);
  if (headers.end_stream) {
    s.ended = true;
    stream_complete(headers.stream_id, s);
  }
}

void DataPlaneSession::on_data(proto::H2Data&& data) {
  (void)h2_->consume(data.stream_id, data.bytes.size());  // hello, intake and post replies: credited at once
  auto it = streams_.find(data.stream_id);
  if (it == streams_.end()) return;
  StreamState& s = it->second;
  if (s.kind != StreamKind::post) {
    if (s.body.size() + data.bytes.size() > settings_.max_inbound_body_bytes + 64 * 1024) {
      s.oversized = true;  // keep reading, answer 413 once the envelope is complete
    } else {
      s.body.append(reinterpret_cast<const char*>(data.bytes.data()), data.bytes.size());
    }
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
  s.closed = true;
  if (s.wake) s.wake->cancel();
  if (s.kind == StreamKind::intake && !s.ended) {
    // Reset by the server before END_STREAM (§4.5 step 5): park again at once.
    const int slot = s.slot;
    streams_.erase(it);
    if (!ended_ && !closing_) park(slot);
    return;
  }
  if (s.kind == StreamKind::hello && !s.ended) {
    end_session(SessionEnd::transient, "the hello stream was reset");
    return;
  }
  streams_.erase(it);  // a post task still writing finds its stream gone and stops
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

void DataPlaneSession::stream_complete(std::int32_t id, StreamState& s) {
  if (s.kind == StreamKind::hello) {
    hello_complete(s);
    streams_.erase(id);
    return;
  }
  if (s.kind == StreamKind::post) {
    if (s.status >= 400) logger_->info("agent: the relay answered a response post with {}", s.status);
    if (s.closed) streams_.erase(id);
    return;
  }
  // An intake's answer.
  const int slot = s.slot;
  if (s.status == 200) {
    auto envelope = std::make_shared<Envelope>();
    envelope->body = std::move(s.body);
    envelope->oversized = s.oversized;
    for (auto& h : s.headers) {
      const std::string_view name = h.name;
      if (name == "inkbox-request-id") envelope->request_id = h.value;
      else if (name == "inkbox-route-kind") envelope->kind = h.value;
      else if (name == "inkbox-method") envelope->method = h.value;
      else if (name == "inkbox-path") envelope->path = h.value;
      else if (name == "inkbox-forwarded-for") envelope->forwarded_for = h.value;
      else if (name.starts_with("inkbox-h-")) envelope->forwarded.push_back({std::string(name.substr(9)), std::move(h.value)});
    }
    streams_.erase(id);
    if (!closing_ && !ended_) park(slot);
    if (envelope->request_id.empty()) return;  // what the SDKs do: nothing can be posted back
    ++in_flight_;
    asio::co_spawn(executor_, [self = shared_from_this(), envelope] { return self->handle_envelope(envelope); },
                   asio::detached);
    return;
  }
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

std::optional<std::int32_t> DataPlaneSession::open_post(const Envelope& envelope, int status, std::string_view reason,
                                                        const std::vector<proto::HeaderField>& headers,
                                                        std::optional<std::uint64_t> content_length,
                                                        bool empty_body) {
  if (ended_) return std::nullopt;
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
    return std::nullopt;
  }
  StreamState& s = streams_[*id];
  s.kind = StreamKind::post;
  s.wake = std::make_shared<asio::steady_timer>(executor_);
  wake_writer();
  return *id;
}

asio::awaitable<bool> DataPlaneSession::write_post_body(std::int32_t stream,
                                                        std::shared_ptr<asio::steady_timer> wake,
                                                        std::string_view bytes) {
  while (!bytes.empty()) {
    if (ended_) co_return false;
    auto it = streams_.find(stream);
    if (it == streams_.end() || it->second.closed) co_return false;
    auto taken = h2_->write_data(stream, bytes);
    if (!taken) co_return false;
    bytes.remove_prefix(*taken);
    wake_writer();
    if (!bytes.empty()) {
      wake->expires_at(SteadyClock::time_point::max());
      co_await wake->async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  co_return true;
}

asio::awaitable<void> DataPlaneSession::post_simple(const Envelope& envelope, int status, std::string_view reason,
                                                    std::string_view body) {
  std::vector<proto::HeaderField> headers;
  if (!body.empty()) headers.push_back({"content-type", "text/plain; charset=utf-8"});
  if (!reason.empty()) headers.push_back({"inkbox-reason", std::string(reason)});
  auto id = open_post(envelope, status, reason, headers, body.size(), body.empty());
  if (!id || body.empty()) co_return;
  auto wake = streams_[*id].wake;
  if (co_await write_post_body(*id, wake, body)) (void)h2_->end_stream(*id);
  wake_writer();
}

asio::awaitable<void> DataPlaneSession::handle_envelope(std::shared_ptr<Envelope> envelope) {
  auto self = shared_from_this();
  RequestRecord record;
  record.method = envelope->method;
  record.path = envelope->path;
  record.bytes_in = envelope->body.size();
  const auto started = SteadyClock::now();
  const auto finish = [&](int status) {
    record.status = status;
    record.duration = SteadyClock::now() - started;
    if (on_request) on_request(record);
    if (--in_flight_ == 0 && closing_ && !ended_) end_session(result_ ? result_->end : SessionEnd::closed, "closed");
  };
  if (envelope->kind == "ws-upgrade") {
    co_await post_simple(*envelope, 501, "ws-not-supported", "WebSocket forwarding is not supported yet");
    finish(501);
    co_return;
  }
  if (envelope->kind == "tcp-stream") {
    logger_->info("agent: dropped a tcp-stream envelope (this agent serves an edge tunnel)");
    finish(0);
    co_return;
  }
  if (proto::invalid_path_reason(envelope->path)) {
    co_await post_simple(*envelope, 400, "invalid-path", "invalid path");
    finish(400);
    co_return;
  }
  if (envelope->oversized || envelope->body.size() > settings_.max_inbound_body_bytes) {
    co_await post_simple(*envelope, 413, "request-body-too-large", "request body too large");
    finish(413);
    co_return;
  }
  // §6.3: the upstream request.
  UpstreamRequest request;
  request.method = envelope->method;
  const std::string url = proto::join_forward_url(forwarder_.target(), envelope->path);
  const auto authority_end = url.find('/', url.find("://") + 3);
  request.target = authority_end == std::string::npos ? "/" : url.substr(authority_end);
  request.headers.push_back({"Host", proto::host_header(forwarder_.target())});
  request.headers.push_back({"X-Forwarded-Host", settings_.public_host});
  request.headers.push_back({"X-Forwarded-Proto", "https"});
  if (!envelope->forwarded_for.empty()) {
    request.headers.push_back({"X-Forwarded-For", envelope->forwarded_for});
    const bool v6 = envelope->forwarded_for.find(':') != std::string::npos;
    request.headers.push_back({"Forwarded", v6 ? "for=\"[" + envelope->forwarded_for + "]\"" : "for=" + envelope->forwarded_for});
  }
  for (auto& h : envelope->forwarded) {
    if (not_forwarded(h.name)) continue;
    request.headers.push_back(std::move(h));
  }
  request.send_body = envelope->method != "GET" && envelope->method != "HEAD";
  request.body = std::move(envelope->body);
  const auto deadline = envelope->received + std::chrono::milliseconds(static_cast<std::int64_t>(response_deadline_seconds_ * 1000));
  auto started_upstream = co_await forwarder_.start(request, deadline);
  if (!started_upstream) {
    const bool timed_out = started_upstream.error().find("timed out") != std::string::npos;
    logger_->info("agent: {} {}: {}", envelope->method, envelope->path, started_upstream.error());
    if (timed_out) {
      co_await post_simple(*envelope, 504, "response-deadline-exceeded", "response deadline exceeded");
      finish(504);
    } else {
      co_await post_simple(*envelope, 502, "upstream-unreachable", "upstream unreachable");
      finish(502);
    }
    co_return;
  }
  auto upstream = std::move(*started_upstream);
  const UpstreamResponseHead& head = upstream->head();
  if (head.content_length && *head.content_length > settings_.max_outbound_body_bytes) {
    co_await post_simple(*envelope, 502, "response-too-large", "response too large");
    finish(502);
    co_return;
  }
  // Streamed toward our relay: the post announces the length when the upstream did, and the body
  // goes out as it arrives (the SDKs buffer it; the relay accepts both).
  const bool empty = !head.has_body || (head.content_length && *head.content_length == 0);
  auto id = open_post(*envelope, head.status, {}, head.headers, empty ? std::optional<std::uint64_t>(0) : head.content_length,
                      empty);
  if (!id) {
    finish(head.status);
    co_return;
  }
  if (!empty) {
    auto wake = streams_[*id].wake;
    bool ok = true;
    for (;;) {
      auto piece = co_await upstream->read_body();
      if (!piece) {
        logger_->info("agent: {} {}: {}", envelope->method, envelope->path, piece.error());
        ok = false;
        break;
      }
      if (piece->empty()) break;
      record.bytes_out += piece->size();
      if (record.bytes_out > settings_.max_outbound_body_bytes || !co_await write_post_body(*id, wake, *piece)) {
        ok = false;
        break;
      }
      // END_STREAM rides with the last DATA instead of an empty frame in a write of its own.
      if (upstream->finished()) break;
    }
    if (ok) {
      (void)h2_->end_stream(*id);
    } else if (!ended_) {
      (void)h2_->reset_stream(*id, proto::kH2Cancel);
    }
    wake_writer();
  }
  finish(head.status);
}

}  // namespace inkwire::agent
