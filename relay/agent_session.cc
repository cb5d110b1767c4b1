#include "relay/agent_session.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>

#include "common/encoding.h"
#include "common/secret_hash.h"
#include "relay/connection_facts.h"
#include "proto/response_post.h"
#include "relay/session_registry.h"
#include "relay/tunnel_directory.h"

namespace inkwire::relay {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;
using proto::H2Header;
namespace control_header = proto::control_header;
namespace control_path = proto::control_path;

namespace {

constexpr std::size_t kMaxIdleWriteCapacity = 16 * 1024;
constexpr std::size_t kMaxWriteChunk = 256 * 1024;
constexpr auto kCloseAfterGoaway = std::chrono::seconds(1);  // A18: close TCP within 1 s

const std::string* find_header(const proto::H2Headers& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (h.name == name) return &h.value;
  }
  return nullptr;
}

bool equal_secret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && constant_time_equal(as_bytes(a), as_bytes(b));
}

// A header value as a plain decimal (x-pool-size, x-pool-slot, content-length); nullopt when
// absent or anything else. nghttp2 has already checked content-length against the DATA.
std::optional<std::uint64_t> parse_decimal(const std::string* text) {
  if (!text || text->empty() || text->size() > 19) return std::nullopt;
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || ptr != text->data() + text->size()) return std::nullopt;
  return value;
}

// Ids we minted are UUIDs; anything else in a path cannot match, but is checked to be harmless
// before it reaches a log line.
bool is_path_safe_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id) {
    if (!std::isalnum(c) && c != '-' && c != '.' && c != '_' && c != '~') return false;
  }
  return true;
}

std::vector<H2Header> to_h2(const std::vector<proto::HeaderField>& fields) {
  std::vector<H2Header> out;
  out.reserve(fields.size());
  for (const auto& f : fields) out.push_back(H2Header{f.name, f.value});
  return out;
}

}  // namespace

AgentSession::AgentSession(SessionContext& context, asio::ip::tcp::socket socket, SSL_CTX* tls, std::string peer_ip,
                           std::uint64_t id)
    : ctx_(context),
      stream_(std::move(socket), tls),
      peer_ip_(std::move(peer_ip)),
      id_(id),
      write_wake_(stream_.get_executor()),
      timer_(stream_.get_executor()),
      started_at_(SteadyClock::now()) {}

AgentSession::~AgentSession() = default;

// ---------------------------------------------------------------------------------------------------
// Transport

asio::awaitable<void> AgentSession::run() {
  auto self = shared_from_this();
  timer_at_ = started_at_ + std::chrono::seconds(ctx_.config.handshake_timeout_seconds);
  asio::co_spawn(stream_.get_executor(), [self]() { return self->timer_loop(); }, asio::detached);
  if (!co_await handshake()) {
    end_session("handshake failed");
    co_return;
  }
  proto::H2Settings settings;
  settings.max_concurrent_streams = static_cast<std::uint32_t>(ctx_.config.max_streams_per_session);
  settings.initial_window_size = static_cast<std::uint32_t>(ctx_.config.stream_window_bytes);
  settings.max_header_list_size = static_cast<std::uint32_t>(ctx_.config.max_header_list_bytes);
  settings.connection_window = static_cast<std::uint32_t>(ctx_.config.connection_window_bytes);
  settings.outbound_buffer_limit = ctx_.config.pipe_buffer_bytes;
  auto h2 = proto::H2Session::create(proto::H2Session::Role::server, settings);
  if (!h2) {
    ctx_.logger->error("relay: session {}: cannot create HTTP/2 session: {}", id_, h2.error().detail);
    end_session("h2 setup failed");
    co_return;
  }
  h2_ = std::move(*h2);
  glitch_window_start_ = SteadyClock::now();
  ctx_.metrics.sessions.Increment();
  next_ping_at_ = SteadyClock::now() + std::chrono::seconds(ctx_.config.ping_interval_seconds);
  reschedule_timer(started_at_);  // recompute: the hello deadline now applies
  asio::co_spawn(stream_.get_executor(), [self]() { return self->write_loop(); }, asio::detached);
  wake_writer();
  // The read loop, inline: one coroutine frame less per idle session.
  while (!closed_) {
    auto [ec, n] = co_await stream_.read_some(ctx_.read_buffer);
    if (ec || closed_) {
      if (ec && ec != asio::error::eof && ec != asio::error::operation_aborted)
        ctx_.logger->debug("relay: session {}: read ended: {}", id_, ec.message());
      break;
    }
    auto received = h2_->receive(std::span(ctx_.read_buffer.data(), n));
    handle_events();
    if (received && !check_glitches()) break;
    if (!received) {
      ctx_.metrics.protocol_errors.Increment();
      ctx_.logger->info("relay: session {} from {}: HTTP/2 error: {}", id_, peer_ip_, received.error().detail);
      closing_ = true;
      close_deadline_ = SteadyClock::now() + kCloseAfterGoaway;
      wake_writer();
      break;
    }
    wake_writer();
  }
  // Lingering close after a GOAWAY: keep reading (and discarding) until the agent closes, so the
  // writer can flush the GOAWAY and the kernel has no unread input to answer with a RST. Bounded
  // by the timer loop, which force-closes the socket at close_deadline_.
  while (!closed_ && closing_ && stream_.is_open()) {
    auto [ec, n] = co_await stream_.read_some(ctx_.read_buffer);
    if (ec) break;
  }
  end_session("connection closed");
  ctx_.metrics.sessions.Decrement();
}

asio::awaitable<bool> AgentSession::handshake() {
  auto ec = co_await stream_.handshake();
  if (ec) {
    ctx_.metrics.rejected("tls_handshake").Increment();
    ctx_.logger->debug("relay: session {} from {}: TLS handshake failed: {}", id_, peer_ip_, ec.message());
    co_return false;
  }
  co_return !closed_;
}

asio::awaitable<void> AgentSession::write_loop() {
  auto self = shared_from_this();
  std::string out;
  while (!closed_) {
    out.clear();
    if (h2_->want_write()) {
      auto produced = h2_->produce(out, kMaxWriteChunk);
      if (!produced) {
        ctx_.logger->info("relay: session {}: HTTP/2 error while sending: {}", id_, produced.error().detail);
        break;
      }
    }
    handle_events();  // sending can close streams or free buffer room
    if (!out.empty()) {
      if (auto ec = co_await stream_.write_all(out)) break;
      // An idle session should not keep the capacity of its largest burst.
      if (out.capacity() > kMaxIdleWriteCapacity) std::string().swap(out);
      continue;
    }
    if (closing_ || h2_->should_close()) {
      ctx_.logger->debug("relay: session {}: writer done (closing {}, should_close {})", id_, closing_,
                         h2_->should_close());
      break;
    }
    write_wake_.expires_at(SteadyClock::time_point::max());
    co_await write_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  // Everything is written (or the peer is gone). After a GOAWAY, close gracefully: close_notify
  // and FIN, while the reader keeps draining what the agent still sends until it closes too or
  // close_deadline_ passes (1 s, A18). Closing with unread input would send a TCP RST, and the
  // agent could lose the GOAWAY with its receive buffer.
  stream_.send_close_notify();
  if (closing_ && !closed_) {
    stream_.shutdown_send();
  } else {
    stream_.close();
  }
}

void AgentSession::wake_writer() { write_wake_.cancel(); }

// Resets either way, frames nghttp2 rejected and requests reset before we saw them, per minute. A well-behaved agent causes almost none; a peer that makes the relay work for nothing
// (the Rapid Reset family) is told ENHANCE_YOUR_CALM and closed.
bool AgentSession::check_glitches() {
  const auto& stats = h2_->stats();
  // Resets the relay sends for its own reasons (a third party left, a deadline) are not the
  // agent's doing; nghttp2's resets for bad streams are.
  const std::uint64_t sent_for_agent = stats.resets_sent > own_resets_ ? stats.resets_sent - own_resets_ : 0;
  const std::uint64_t glitches =
      sent_for_agent + stats.resets_received + stats.protocol_errors + stats.requests_dropped_unseen;
  const auto now = SteadyClock::now();
  if (now - glitch_window_start_ >= std::chrono::minutes(1)) {
    glitch_window_start_ = now;
    glitches_at_window_start_ = glitches;
    return true;
  }
  if (glitches - glitches_at_window_start_ <= static_cast<std::uint64_t>(ctx_.config.max_resets_per_minute)) return true;
  ctx_.metrics.protocol_errors.Increment();
  ctx_.metrics.rejected("too_many_resets").Increment();
  ctx_.logger->warn("relay: session {} from {}: {} resets and rejected frames within a minute; closing", id_, peer_ip_,
                    glitches - glitches_at_window_start_);
  (void)h2_->terminate(proto::kH2EnhanceYourCalm);
  closing_ = true;
  close_deadline_ = now + kCloseAfterGoaway;
  wake_writer();
  return false;
}

void AgentSession::reschedule_timer(SteadyClock::time_point when) {
  if (when < timer_at_) timer_.cancel();
}

asio::awaitable<void> AgentSession::timer_loop() {
  auto self = shared_from_this();
  while (!closed_) {
    timer_.expires_at(timer_at_);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (closed_) break;
    housekeeping(SteadyClock::now());
  }
}

// Every deadline of the session, on one timer: handshake and hello, idle intakes (oldest first, so
// only the front matters), PING and its timeout, drain, and the close after GOAWAY.
void AgentSession::housekeeping(SteadyClock::time_point now) {
  const auto& cfg = ctx_.config;
  SteadyClock::time_point next = SteadyClock::time_point::max();
  const auto consider = [&](SteadyClock::time_point t) { next = std::min(next, t); };

  if (!h2_) {  // still in the TLS handshake
    const auto deadline = started_at_ + std::chrono::seconds(cfg.handshake_timeout_seconds);
    if (now >= deadline) {
      ctx_.metrics.rejected("handshake_timeout").Increment();
      force_close();
      return;
    }
    timer_at_ = deadline;
    return;
  }
  if (!tunnel_id_) {
    const auto deadline =
        started_at_ + std::chrono::seconds(cfg.handshake_timeout_seconds + cfg.hello_timeout_seconds);
    if (now >= deadline) {
      ctx_.metrics.rejected("hello_timeout").Increment();
      ctx_.logger->info("relay: session {} from {}: no hello in time; closing", id_, peer_ip_);
      force_close();
      return;
    }
    consider(deadline);
  }
  const auto idle = std::chrono::seconds(cfg.intake_idle_seconds);
  while (!parked_.empty()) {
    const std::int32_t stream_id = parked_.front();
    auto it = streams_.find(stream_id);
    if (it == streams_.end()) {
      parked_.erase(parked_.begin());
      continue;
    }
    if (now < it->second.parked_at + idle) {
      consider(it->second.parked_at + idle);
      break;
    }
    unpark(stream_id);
    ctx_.metrics.intake("idle_204").Increment();
    reply(stream_id, 204);
  }
  if (cfg.ping_interval_seconds > 0 && tunnel_id_) {
    if (ping_sent_at_) {
      const auto deadline = *ping_sent_at_ + std::chrono::seconds(cfg.ping_timeout_seconds);
      if (now >= deadline) {
        ctx_.metrics.pings_timed_out.Increment();
        ctx_.logger->info("relay: session {} ({}): PING unanswered for {} s; dropping", id_,
                          tunnel_id_->to_string(), cfg.ping_timeout_seconds);
        force_close();
        return;
      }
      consider(deadline);
    } else if (now >= next_ping_at_) {
      if (h2_->ping(++ping_seq_)) ping_sent_at_ = now;
      next_ping_at_ = now + std::chrono::seconds(cfg.ping_interval_seconds);
      consider(now + std::chrono::seconds(cfg.ping_timeout_seconds));
    } else {
      consider(next_ping_at_);
    }
  }
  if (draining_ && !closing_) {
    if (active_work() == 0 || now >= drain_deadline_) {
      goaway_and_close(proto::kH2NoError, {});
    } else {
      consider(std::min(drain_deadline_, now + std::chrono::milliseconds(100)));
    }
  }
  if (superseded_ && !closing_) {
    // Its last request may be answered through the new session or expire: no event of this
    // session says so, so look again shortly (bounded by the response deadline).
    maybe_finish_displaced();
    if (!closing_) consider(now + std::chrono::milliseconds(100));
  }
  if (closing_) {
    if (now >= close_deadline_) {
      force_close();
      return;
    }
    consider(close_deadline_);
  }
  timer_at_ = next;
  wake_writer();
}

void AgentSession::force_close() {
  stream_.close();
  // Nothing is due any more; end_session() follows from the reader and cancels the timer.
  timer_at_ = SteadyClock::time_point::max();
  wake_writer();
}

void AgentSession::goaway_and_close(std::uint32_t code, std::string_view debug) {
  if (closing_ || !h2_) return;
  (void)h2_->goaway(code, debug);
  closing_ = true;
  close_deadline_ = SteadyClock::now() + kCloseAfterGoaway;
  reschedule_timer(close_deadline_);
  wake_writer();
}

void AgentSession::close_now(std::string_view why) {
  ctx_.logger->info("relay: session {} ({}): closing: {}", id_, tunnel_id_ ? tunnel_id_->to_string() : "-", why);
  // No agent will own the tunnel after this (deleted, or its organisation disabled): A34.
  if (owner_ && tunnel_id_) ctx_.facts.disconnected(*tunnel_id_);
  release_owner();
  // Parked intakes would only be reset by the close; a prompt GOAWAY is what the agent reacts to.
  goaway_and_close(proto::kH2NoError, {});
}

void AgentSession::begin_drain(SteadyClock::time_point deadline) {
  if (draining_ || closed_) return;
  draining_ = true;
  drain_deadline_ = deadline;
  ctx_.metrics.drains.Increment();
  reschedule_timer(SteadyClock::now());
}

void AgentSession::end_session(std::string_view why) {
  if (closed_) return;
  closed_ = true;  // from here on can_deliver() is false
  auto self = shared_from_this();
  const bool was_owner = owner_;
  release_owner();
  if (tunnel_id_) {
    ctx_.logger->info("relay: session {} ({}) from {} ended: {}", id_, tunnel_id_->to_string(), peer_ip_, why);
  }
  ctx_.metrics.parked_intakes.Decrement(static_cast<double>(parked_.size()));
  parked_.clear();
  slots_.clear();
  for (auto& [stream_id, s] : streams_) {
    if (!s.exchange) continue;
    auto exchange = s.exchange;
    if (s.kind == StreamKind::intake && !exchange->envelope_complete) {
      exchange->request_body().on_readable = nullptr;
      if (exchange->request_body().bytes_read() == 0) {
        ctx_.registry.redeliver(exchange);  // A11: it never reached the agent
      }
    } else if (s.kind == StreamKind::post && !exchange->is_done()) {
      exchange->response_body().on_consumed = nullptr;
      ctx_.registry.complete(*exchange);
      exchange->fail(DispatchFailure{502, "session-lost"});
    } else if (s.kind == StreamKind::bridge) {
      ctx_.metrics.bridges_open.Decrement();
      exchange->from_agent().on_consumed = nullptr;
      exchange->to_agent().on_readable = nullptr;
      exchange->to_agent().close_reader();
      ctx_.registry.complete(*exchange);
      exchange->fail(DispatchFailure{502, "session-lost"});
    }
  }
  streams_.clear();
  ctx_.registry.session_ended(*this, tunnel_id_);
  if (counted_in_org_) {
    ctx_.registry.count_organization(organization_id_, -1);
    counted_in_org_ = false;
  }
  // currently_connected follows the owning session (A34): cleared only when no newer hello took over.
  if (was_owner && tunnel_id_) {
    if (!ctx_.registry.has_owner(*tunnel_id_)) ctx_.facts.disconnected(*tunnel_id_);
  }
  stream_.close();
  timer_.cancel();
  wake_writer();
}

// ---------------------------------------------------------------------------------------------------
// Events

void AgentSession::handle_events() {
  if (!h2_) return;
  while (auto event = h2_->next_event()) {
    if (closed_) continue;  // drain the queue; nothing acts on it any more
    if (auto* request = std::get_if<proto::H2RequestHeaders>(&*event)) {
      on_request(*request);
    } else if (auto* data = std::get_if<proto::H2Data>(&*event)) {
      on_data(*data);
    } else if (auto* closed = std::get_if<proto::H2StreamClosed>(&*event)) {
      on_closed(*closed);
    } else if (auto* writable = std::get_if<proto::H2StreamWritable>(&*event)) {
      auto it = streams_.find(writable->stream_id);
      if (it == streams_.end()) continue;
      if (it->second.kind == StreamKind::intake) pump_intake(writable->stream_id);
      if (it->second.kind == StreamKind::bridge) pump_bridge(writable->stream_id);
    } else if (auto* goaway = std::get_if<proto::H2GoAwayReceived>(&*event)) {
      // The agent is leaving (TS aclose): route nothing more to it; it closes the connection soon.
      peer_goaway_ = true;
      (void)goaway;
    } else if (std::get_if<proto::H2PingAcked>(&*event)) {
      ping_sent_at_.reset();
    }
  }
}

void AgentSession::on_request(proto::H2RequestHeaders& request) {
  const std::int32_t stream_id = request.stream_id;
  StreamCtx& s = streams_[stream_id];
  const std::string_view path = request.path;
  if (path == control_path::kHello && request.method == "POST") {
    s.kind = StreamKind::hello;
    if (hello_started_) {
      reply_json_detail(stream_id, 409, "this connection already said hello");
      return;
    }
    hello_started_ = true;
    auto self = shared_from_this();
    asio::co_spawn(
        stream_.get_executor(),
        [self, stream_id, headers = std::move(request.headers)]() mutable {
          return self->handle_hello(stream_id, std::move(headers));
        },
        asio::detached);
    return;
  }
  if (path == control_path::kIntake && request.method == "POST") {
    s.kind = StreamKind::intake;
    handle_intake(stream_id, request.headers);
    return;
  }
  if (path.starts_with(control_path::kResponsePrefix) && request.method == "POST") {
    s.kind = StreamKind::refused;  // until the post is matched
    handle_post(stream_id, path.substr(control_path::kResponsePrefix.size()), request);
    return;
  }
  if (request.method == "CONNECT") {
    s.kind = StreamKind::refused;
    if (request.protocol == proto::subprotocol::kWs && path.starts_with(control_path::kWsPrefix)) {
      handle_bridge(stream_id, proto::RouteKind::ws_upgrade, path.substr(control_path::kWsPrefix.size()),
                    request.headers);
      return;
    }
    if (request.protocol == proto::subprotocol::kTcp && path.starts_with(control_path::kTcpPrefix)) {
      handle_bridge(stream_id, proto::RouteKind::tcp_stream, path.substr(control_path::kTcpPrefix.size()),
                    request.headers);
      return;
    }
  }
  s.kind = StreamKind::refused;
  reply_json_detail(stream_id, 404, "not found");
}

void AgentSession::on_data(proto::H2Data& data) {
  const std::int32_t stream_id = data.stream_id;
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) {
    (void)h2_->consume(stream_id, data.bytes.size());
    return;
  }
  StreamCtx& s = it->second;
  if (s.kind == StreamKind::post && s.exchange) {
    Exchange& exchange = *s.exchange;
    s.body_bytes += data.bytes.size();
    ctx_.metrics.bytes_from_agent.Increment(static_cast<double>(data.bytes.size()));
    if (s.body_bytes > ctx_.config.max_response_body_bytes) {
      ctx_.logger->info("relay: session {}: response post for {} over {} bytes; resetting", id_,
                        exchange.request_id(), ctx_.config.max_response_body_bytes);
      (void)h2_->consume(stream_id, data.bytes.size() + exchange.response_body().size());
      auto exchange_ptr = s.exchange;
      exchange.response_body().on_consumed = nullptr;
      s.exchange.reset();
      ctx_.registry.complete(*exchange_ptr);
      exchange_ptr->fail(DispatchFailure{502, "response-too-large"});
      reset(stream_id, proto::kH2Cancel, /*agents_fault=*/false);
      return;
    }
    exchange.response_body().push(data.bytes);
    if (data.end_stream) {
      exchange.response_body().finish();
      reply(stream_id, 200);
      ctx_.metrics.post(200).Increment();
      const bool awaits_bridge = exchange.kind() == proto::RouteKind::ws_upgrade && exchange.head_status() == 200;
      if (!awaits_bridge) {
        ctx_.registry.complete(exchange);
        exchange.finish();
      }
    }
    return;
  }
  if (s.kind == StreamKind::bridge && s.bridge) {
    ctx_.metrics.bytes_from_agent.Increment(static_cast<double>(data.bytes.size()));
    if (!s.bridge->on_agent_data(data.bytes)) {
      ctx_.logger->info("relay: session {}: bad frame on bridge {}; resetting", id_, s.bridge->exchange().bridge_id());
      (void)h2_->consume(stream_id, s.bridge->take_all_credit());
      reset(stream_id, proto::kH2ProtocolError, /*agents_fault=*/true);
      return;
    }
    if (data.end_stream) s.bridge->on_agent_end();
    if (std::size_t credit = s.bridge->take_credit()) (void)h2_->consume(stream_id, credit);
    if (s.bridge->has_output()) pump_bridge(stream_id);
    return;
  }
  // Hello, intake and refused streams carry no body we use: credit it at once.
  (void)h2_->consume(stream_id, data.bytes.size());
}

void AgentSession::on_closed(const proto::H2StreamClosed& closed) {
  auto it = streams_.find(closed.stream_id);
  if (it == streams_.end()) return;
  StreamCtx s = std::move(it->second);
  streams_.erase(it);
  switch (s.kind) {
    case StreamKind::intake:
      if (!s.exchange) {
        unpark(closed.stream_id);
        break;
      }
      s.exchange->request_body().on_readable = nullptr;
      if (closed.error_code == 0 && !closed.reset_by_peer) {
        s.exchange->envelope_complete = true;  // END_STREAM went out: delivered
        ctx_.metrics.bytes_to_agent.Increment(static_cast<double>(s.exchange->request_body().bytes_read()));
      } else if (!s.exchange->envelope_complete && !s.exchange->is_done() && closed.reset_by_peer) {
        if (s.exchange->request_body().bytes_read() == 0) {
          ctx_.registry.redeliver(s.exchange);  // A11
        } else {
          ctx_.registry.complete(*s.exchange);
          s.exchange->fail(DispatchFailure{502, "intake-reset"});
        }
      }
      // The agent answered before taking the whole body (413 over its cap, an early refusal) and
      // then cut the intake: nobody reads the rest, so the edge must stop feeding it and send the
      // answer (HTTP/1.1 then closes the connection) instead of waiting on a full pipe.
      if (closed.error_code != 0 && s.exchange->has_head() && s.exchange->request_body().end() == PipeEnd::open) {
        s.exchange->request_body().abort();
      }
      break;
    case StreamKind::post:
      if (open_posts_ > 0) --open_posts_;
      if (s.exchange && s.exchange->response_body().end() == PipeEnd::open) {
        // Unread bytes will be dropped: their window must reopen before the hook goes.
        (void)h2_->consume(closed.stream_id, s.exchange->response_body().size());
        s.exchange->response_body().on_consumed = nullptr;
        ctx_.registry.complete(*s.exchange);
        s.exchange->fail(DispatchFailure{502, "post-reset"});
      }
      break;
    case StreamKind::bridge:
      if (open_bridges_ > 0) --open_bridges_;
      ctx_.metrics.bridges_open.Decrement();
      if (s.exchange) {
        Exchange& exchange = *s.exchange;
        if (s.bridge) (void)h2_->consume(closed.stream_id, s.bridge->take_all_credit());
        exchange.from_agent().on_consumed = nullptr;
        exchange.to_agent().on_readable = nullptr;
        if (closed.error_code != 0) {
          exchange.to_agent().close_reader();
          exchange.fail(DispatchFailure{502, closed.reset_by_peer ? "bridge-reset-by-agent" : "bridge-reset"});
        } else {
          exchange.from_agent().finish();
          exchange.finish();
        }
        ctx_.registry.complete(exchange);
        ctx_.metrics.bytes_to_agent.Increment(static_cast<double>(s.bridge ? s.bridge->bytes_out() : 0));
      }
      break;
    default:
      break;
  }
  if (superseded_ || draining_) reschedule_timer(SteadyClock::now());
}

// ---------------------------------------------------------------------------------------------------
// Streams

asio::awaitable<void> AgentSession::handle_hello(std::int32_t stream_id, proto::H2Headers headers) {
  auto self = shared_from_this();
  const auto& cfg = ctx_.config;
  const std::string* id_text = find_header(headers, control_header::kTunnelId);
  const std::string* secret = find_header(headers, control_header::kTunnelSecret);
  const auto tunnel = id_text ? Uuid::parse(*id_text) : std::nullopt;
  const auto refuse = [&](int status, std::string_view result, std::string_view detail, std::string_view reason = {}) {
    ctx_.metrics.hello(std::string(result)).Increment();
    ctx_.logger->info("relay: session {} from {}: hello for {} refused: {} {}", id_, peer_ip_,
                      tunnel ? tunnel->to_string() : "(no id)", status, result);
    hello_started_ = status == 401 || status == 403;  // a transient refusal may be retried on this connection
    reply_json_detail(stream_id, status, detail, reason);
  };
  // One answer for unknown id, wrong secret and finalised tunnel (A1): nothing to probe with.
  constexpr std::string_view kBadCredentials = "unknown tunnel or wrong secret";
  if (!tunnel || !secret || secret->empty()) {
    refuse(401, "unauthorized", kBadCredentials);
    co_return;
  }
  if (draining_ || ctx_.registry.draining()) {
    refuse(503, "draining", "relay is draining; reconnect");
    co_return;
  }
  // The SDKs wait for the hello's answer forever (§4.3), and a database that hangs would hold
  // them: the lookup runs on its own and the hello is answered 503 if it has not finished within
  // hello_timeout_seconds.
  struct Lookup {
    std::optional<Expected<std::optional<HelloRecord>, std::string>> result;
    asio::steady_timer done;
  };
  auto lookup = std::make_shared<Lookup>(Lookup{std::nullopt, asio::steady_timer(stream_.get_executor())});
  lookup->done.expires_after(std::chrono::seconds(cfg.hello_timeout_seconds));
  asio::co_spawn(
      stream_.get_executor(),
      [lookup, &directory = ctx_.directory, id = *tunnel]() -> asio::awaitable<void> {
        auto result = co_await directory.lookup(id);
        lookup->result = std::move(result);
        lookup->done.cancel();
      },
      asio::detached);
  if (!lookup->result) co_await lookup->done.async_wait(asio::as_tuple(asio::use_awaitable));
  if (closed_) co_return;
  if (!lookup->result || !*lookup->result) {
    refuse(503, "unavailable", "tunnel state unavailable; retry");
    co_return;
  }
  if (draining_ || closing_ || ctx_.registry.draining()) {  // changed while the lookup ran
    refuse(503, "draining", "relay is draining; reconnect");
    co_return;
  }
  auto& record = *lookup->result;
  const auto digest = sha256(*secret);
  const std::string presented = hex_encode(digest);
  if (!*record || !equal_secret(presented, (*record)->secret_sha256) ||
      (*record)->status == controlplane::TunnelStatus::deleted) {
    refuse(401, "unauthorized", kBadCredentials);
    co_return;
  }
  const HelloRecord& rec = **record;
  if (rec.organization_disabled) {
    refuse(403, "forbidden", "organization disabled");
    co_return;
  }
  if (rec.status == controlplane::TunnelStatus::delete_pending) {
    refuse(409, "pending_removal", "tunnel is pending removal", "tunnel-pending-removal");
    co_return;
  }
  if (ctx_.registry.sessions_for_organization(rec.organization_id) >=
      static_cast<std::size_t>(cfg.max_sessions_per_organization)) {
    ctx_.metrics.rejected("sessions_per_organization").Increment();
    refuse(503, "overloaded", "too many agent sessions for this organization");
    co_return;
  }
  // Accepted.
  tunnel_id_ = rec.id;
  organization_id_ = rec.organization_id;
  secret_ = *secret;
  std::array<std::uint8_t, 32> token{};
  ctx_.random.fill(token);
  owner_token_ = base64url_encode(token);
  ctx_.registry.count_organization(organization_id_, +1);
  counted_in_org_ = true;
  int pool = cfg.default_pool_size;
  if (auto asked = parse_decimal(find_header(headers, control_header::kPoolSize)))
    pool = static_cast<int>(std::clamp<std::uint64_t>(*asked, 1, 32));

  boost::json::object body;
  body["owner_token"] = owner_token_;
  body["default_pool_size"] = pool;
  body["response_deadline_seconds"] = cfg.response_deadline_seconds;
  body["intake_idle_seconds"] = cfg.intake_idle_seconds;
  reply(stream_id, 200, boost::json::serialize(body), {H2Header{"content-type", "application/json"}});
  ctx_.metrics.hello("ok").Increment();
  owner_ = true;
  ctx_.metrics.sessions_owning.Increment();
  ctx_.registry.claim(*tunnel_id_, self);
  ctx_.logger->info("relay: session {} from {} owns tunnel {} (pool {})", id_, peer_ip_, tunnel_id_->to_string(), pool);
  next_ping_at_ = SteadyClock::now() + std::chrono::seconds(cfg.ping_interval_seconds);
  reschedule_timer(SteadyClock::now());
  wake_writer();
  ctx_.facts.connected(rec.id, peer_ip_);
}

bool AgentSession::authorised_stream(const proto::H2Headers& headers) const {
  if (!tunnel_id_) return false;
  const std::string* id_text = find_header(headers, control_header::kTunnelId);
  const std::string* secret = find_header(headers, control_header::kTunnelSecret);
  if (!id_text || !secret) return false;
  const auto id = Uuid::parse(*id_text);
  // Bound to this connection's hello (A4): rotation leaves live sessions working.
  return id && *id == *tunnel_id_ && equal_secret(*secret, secret_);
}

void AgentSession::handle_intake(std::int32_t stream_id, const proto::H2Headers& headers) {
  const std::string* token = find_header(headers, control_header::kOwnerToken);
  const std::string* id_text = find_header(headers, control_header::kTunnelId);
  const auto id = id_text ? Uuid::parse(*id_text) : std::nullopt;
  if (!tunnel_id_ || !token || !equal_secret(*token, owner_token_) || (id && *id != *tunnel_id_)) {
    ctx_.metrics.intake("unauthorized").Increment();
    reply(stream_id, 401, {}, {H2Header{std::string(proto::meta_header::kReason), "owner-token-rejected"}});
    return;
  }
  if (superseded_) {
    ctx_.metrics.intake("superseded").Increment();
    reply(stream_id, 401, {}, {H2Header{std::string(proto::meta_header::kReason), "intake-superseded"}});
    return;
  }
  const auto slot_value = parse_decimal(find_header(headers, control_header::kPoolSlot));
  const int slot = slot_value && *slot_value < 1024 ? static_cast<int>(*slot_value) : -1;
  park(stream_id, slot);
}

void AgentSession::park(std::int32_t stream_id, int slot) {
  StreamCtx& s = streams_[stream_id];
  s.slot = slot;
  s.parked_at = SteadyClock::now();
  if (slot >= 0) {
    if (auto old = slots_.find(slot); old != slots_.end() && old->second != stream_id) {
      // The agent abandoned the older intake on this slot; answering it 204 causes no loop (§4.5).
      const std::int32_t older = old->second;
      unpark(older);
      ctx_.metrics.intake("replaced").Increment();
      reply(older, 204);
    }
    slots_[slot] = stream_id;
  }
  parked_.push_back(stream_id);
  ctx_.metrics.parked_intakes.Increment();
  reschedule_timer(s.parked_at + std::chrono::seconds(ctx_.config.intake_idle_seconds));
  if (owner_ && !draining_) ctx_.registry.intake_available(*tunnel_id_);
}

void AgentSession::unpark(std::int32_t stream_id) {
  for (auto it = parked_.begin(); it != parked_.end(); ++it) {
    if (*it == stream_id) {
      parked_.erase(it);
      ctx_.metrics.parked_intakes.Decrement();
      break;
    }
  }
  for (auto it = slots_.begin(); it != slots_.end(); ++it) {
    if (it->second == stream_id) {
      slots_.erase(it);
      break;
    }
  }
}

bool AgentSession::can_deliver() const {
  return owner_ && !closed_ && !closing_ && !draining_ && !superseded_ && !peer_goaway_ && !parked_.empty();
}

void AgentSession::deliver(const std::shared_ptr<Exchange>& exchange) {
  const std::int32_t stream_id = parked_.front();
  unpark(stream_id);
  StreamCtx& s = streams_[stream_id];
  s.exchange = exchange;
  exchange->intake_session = weak_from_this();
  exchange->intake_stream = stream_id;
  exchange->mark_delivered();
  ctx_.metrics.intake("delivered").Increment();
  auto submitted = h2_->submit_response(stream_id, 200, to_h2(exchange->envelope), false);
  if (!submitted) {
    s.exchange.reset();
    const auto kind = submitted.error().kind;
    if (kind == proto::H2ErrorKind::unknown_stream || kind == proto::H2ErrorKind::session_closed) {
      // The stream died under us (reset in the same read): put the request back (A11).
      ctx_.logger->debug("relay: session {}: envelope to stream {} failed: {}", id_, stream_id,
                         submitted.error().detail);
      ctx_.registry.redeliver(exchange);
      return;
    }
    // This agent cannot take this envelope (e.g. over its SETTINGS_MAX_HEADER_LIST_SIZE): trying
    // the next intake would fail the same way and use them all up.
    ctx_.logger->info("relay: session {}: envelope for {} refused: {}", id_, exchange->request_id(),
                      submitted.error().detail);
    reset(stream_id, proto::kH2InternalError, /*agents_fault=*/false);
    ctx_.registry.complete(*exchange);
    exchange->fail(DispatchFailure{502, "envelope-refused"});
    return;
  }
  s.envelope_sent = true;
  exchange->request_body().on_readable = [weak = weak_from_this(), stream_id]() {
    if (auto self = weak.lock()) self->pump_intake(stream_id);
  };
  pump_intake(stream_id);
}

void AgentSession::pump_intake(std::int32_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end() || !it->second.exchange || !it->second.envelope_sent || closed_) return;
  BytePipe& body = it->second.exchange->request_body();
  while (body.size() > 0) {
    auto written = h2_->write_data(stream_id, body.peek());
    if (!written || *written == 0) break;
    body.take(*written);
  }
  if (body.size() == 0) {
    if (body.end() == PipeEnd::finished) {
      (void)h2_->end_stream(stream_id);
    } else if (body.end() == PipeEnd::aborted) {
      reset(stream_id, proto::kH2Cancel, /*agents_fault=*/false);
    }
  }
  wake_writer();
}

void AgentSession::handle_post(std::int32_t stream_id, std::string_view request_id, proto::H2RequestHeaders& request) {
  if (!authorised_stream(request.headers)) {
    ctx_.metrics.post(401).Increment();
    reply_json_detail(stream_id, 401, "not authorised for this tunnel");
    return;
  }
  if (!is_path_safe_id(request_id)) {
    ctx_.metrics.post(404).Increment();
    reply_json_detail(stream_id, 404, "unknown request id");
    return;
  }
  const std::string id(request_id);
  std::vector<proto::HeaderField> fields;
  fields.reserve(request.headers.size());
  for (auto& h : request.headers) fields.push_back(proto::HeaderField{h.name, h.value});
  auto post = proto::parse_response_post(fields);
  auto found = ctx_.registry.find_outstanding(*tunnel_id_, id);
  if (!post || (!post->request_id.empty() && post->request_id != id)) {
    const std::string_view why = post ? std::string_view("inkbox-request-id differs from the path") : post.error().reason;
    ctx_.logger->info("relay: session {}: bad response post for {}: {}", id_, id, why);
    if (found) {
      auto exchange = *found;
      ctx_.registry.complete(*exchange);
      exchange->fail(DispatchFailure{502, "bad-response-post"});
    }
    ctx_.metrics.post(400).Increment();
    reply_json_detail(stream_id, 400, why);
    return;
  }
  if (!found) {
    const int status = found.error() == LookupMiss::answered ? 409 : found.error() == LookupMiss::expired ? 410 : 404;
    ctx_.metrics.post(status).Increment();
    reply_json_detail(stream_id, status,
                      status == 409 ? "already answered" : status == 410 ? "answered after the deadline" : "unknown request id");
    return;
  }
  auto exchange = *found;
  // A body announced over the cap fails cleanly (502) before the head goes to the third party.
  const auto announced_length = parse_decimal(find_header(request.headers, "content-length"));
  if (const auto& length = announced_length; length && *length > ctx_.config.max_response_body_bytes) {
    ctx_.logger->info("relay: session {}: response post for {} announces more than {} bytes", id_, id,
                      ctx_.config.max_response_body_bytes);
    ctx_.registry.complete(*exchange);
    exchange->fail(DispatchFailure{502, "response-too-large"});
    ctx_.metrics.post(413).Increment();
    reply_json_detail(stream_id, 413, "response body over the relay's limit");
    return;
  }
  StreamCtx& s = streams_[stream_id];
  s.kind = StreamKind::post;
  s.exchange = exchange;
  exchange->post_session = weak_from_this();
  exchange->post_stream = stream_id;
  ++open_posts_;
  if (!post->reason.empty()) {
    ctx_.logger->info("relay: tunnel {} request {}: agent answered {} ({})", tunnel_id_->to_string(), id, post->status,
                      post->reason);
  }
  if (post->dropped_invalid > 0) {
    ctx_.logger->info("relay: request {}: dropped {} invalid response header(s)", id, post->dropped_invalid);
  }
  ctx_.metrics.response_seconds.Observe(
      std::chrono::duration<double>(SteadyClock::now() - exchange->delivered_at()).count());
  ctx_.metrics.request(std::string(proto::route_kind_name(exchange->kind())), post->status).Increment();
  exchange->response_body().on_consumed = [weak = weak_from_this(), stream_id](std::size_t n) {
    if (auto self = weak.lock(); self && self->h2_ && !self->closed_) {
      (void)self->h2_->consume(stream_id, n);
      self->wake_writer();
    }
  };
  // nghttp2 holds the DATA to the announced content-length, so the edge can pass it on as is.
  std::optional<std::uint64_t> body_length = announced_length;
  if (!body_length && request.end_stream) body_length = 0;
  exchange->set_head(ResponseHead{post->status, std::move(post->headers), std::move(post->reason), body_length});
  if (request.end_stream) {
    proto::H2Data empty;
    empty.stream_id = stream_id;
    empty.end_stream = true;
    on_data(empty);
  }
}

void AgentSession::handle_bridge(std::int32_t stream_id, proto::RouteKind kind, std::string_view bridge_id,
                                 const proto::H2Headers& headers) {
  if (!authorised_stream(headers)) {
    reply_json_detail(stream_id, 401, "not authorised for this tunnel");
    return;
  }
  auto found = is_path_safe_id(bridge_id) ? ctx_.registry.take_bridge(*tunnel_id_, std::string(bridge_id), kind)
                                          : Expected<std::shared_ptr<Exchange>, LookupMiss>(unexpected(LookupMiss::unknown));
  if (!found) {
    reply_json_detail(stream_id, 404, "unknown or expired bridge id");
    return;
  }
  auto exchange = *found;
  StreamCtx& s = streams_[stream_id];
  s.kind = StreamKind::bridge;
  s.exchange = exchange;
  const std::size_t max_frame = kind == proto::RouteKind::ws_upgrade
                                    ? ctx_.config.max_ws_message_bytes / 3 * 4 + 4096  // base64 + JSON framing
                                    : 1024 * 1024;
  s.bridge = std::make_unique<BridgeStream>(kind, exchange, max_frame);
  ++open_bridges_;
  ctx_.metrics.bridges_open.Increment();
  exchange->bridge_session = weak_from_this();
  exchange->bridge_stream = stream_id;
  exchange->from_agent().on_consumed = [weak = weak_from_this(), stream_id](std::size_t) {
    auto self = weak.lock();
    if (!self || self->closed_) return;
    auto it = self->streams_.find(stream_id);
    if (it == self->streams_.end() || !it->second.bridge) return;
    if (std::size_t credit = it->second.bridge->take_credit()) {
      (void)self->h2_->consume(stream_id, credit);
      self->wake_writer();
    }
  };
  exchange->to_agent().on_readable = [weak = weak_from_this(), stream_id]() {
    if (auto self = weak.lock()) self->pump_bridge(stream_id);
  };
  exchange->mark_bridge_attached();  // the edge answers the third party (101), then accept_bridge()
}

void AgentSession::bridge_accepted(Exchange& exchange) {
  auto it = streams_.find(exchange.bridge_stream);
  if (it == streams_.end() || it->second.kind != StreamKind::bridge || closed_) return;
  it->second.replied = true;
  (void)h2_->submit_response(exchange.bridge_stream, 200, {}, false);
  pump_bridge(exchange.bridge_stream);
}

void AgentSession::pump_bridge(std::int32_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end() || !it->second.bridge || !it->second.replied || closed_) return;
  switch (it->second.bridge->pump(*h2_, stream_id)) {
    case BridgeStream::Pump::wait:
      break;
    case BridgeStream::Pump::end_stream:
      (void)h2_->end_stream(stream_id);
      break;
    case BridgeStream::Pump::reset:
      reset(stream_id, proto::kH2Cancel, /*agents_fault=*/false);
      break;
  }
  wake_writer();
}

void AgentSession::cancel_stream(std::int32_t stream_id) {
  if (closed_ || !h2_) return;
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  // The pipes are about to be aborted; their pumps must not answer the stream a second time.
  if (it->second.exchange) {
    it->second.exchange->request_body().on_readable = nullptr;
    it->second.exchange->to_agent().on_readable = nullptr;
  }
  if (it->second.kind == StreamKind::bridge && !it->second.replied) {
    // The CONNECT was never accepted: §4.8 says unknown or expired ids get 404.
    reply_json_detail(stream_id, 404, "bridge expired");
    return;
  }
  reset(stream_id, proto::kH2Cancel, /*agents_fault=*/false);
}

void AgentSession::reset(std::int32_t stream_id, std::uint32_t code, bool agents_fault) {
  if (!h2_) return;
  if (h2_->reset_stream(stream_id, code)) {
    ctx_.metrics.resets_sent.Increment();
    if (!agents_fault) ++own_resets_;
  }
  wake_writer();
}

// ---------------------------------------------------------------------------------------------------
// Ownership and shutdown

void AgentSession::release_owner() {
  if (!owner_) return;
  owner_ = false;
  ctx_.metrics.sessions_owning.Decrement();
}

void AgentSession::supersede() {
  if (superseded_ || closed_) return;
  superseded_ = true;
  release_owner();
  while (!parked_.empty()) {
    const std::int32_t stream_id = parked_.front();
    unpark(stream_id);
    ctx_.metrics.intake("superseded").Increment();
    reply(stream_id, 401, {}, {H2Header{std::string(proto::meta_header::kReason), "intake-superseded"}});
  }
  maybe_finish_displaced();
  wake_writer();
}

std::size_t AgentSession::active_work() const {
  std::size_t delivering = 0;
  for (const auto& [id, s] : streams_) {
    if (s.kind == StreamKind::intake && s.exchange && !s.exchange->envelope_complete) ++delivering;
  }
  return open_posts_ + open_bridges_ + delivering + ctx_.registry.outstanding_for(*this);
}

void AgentSession::maybe_finish_displaced() {
  if (!superseded_ || closing_ || closed_) return;
  if (active_work() > 0) {
    reschedule_timer(SteadyClock::now() + std::chrono::milliseconds(100));
    return;
  }
  ctx_.logger->info("relay: session {} ({}): superseded; closing", id_, tunnel_id_ ? tunnel_id_->to_string() : "-");
  goaway_and_close(proto::kH2Superseded, R"({"reason":"superseded"})");
}

// ---------------------------------------------------------------------------------------------------
// Replies

void AgentSession::reply(std::int32_t stream_id, int status, std::string_view body, std::vector<H2Header> extra) {
  if (!h2_ || closed_) return;
  auto it = streams_.find(stream_id);
  if (it != streams_.end()) it->second.replied = true;
  if (!body.empty()) extra.push_back(H2Header{"content-length", std::to_string(body.size())});
  auto submitted = h2_->submit_response(stream_id, status, extra, body.empty());
  if (submitted && !body.empty()) {
    (void)h2_->write_data(stream_id, body);
    (void)h2_->end_stream(stream_id);
  }
  wake_writer();
}

void AgentSession::reply_json_detail(std::int32_t stream_id, int status, std::string_view detail,
                                     std::string_view reason) {
  boost::json::object body;
  body["detail"] = detail;
  if (!reason.empty()) body["reason"] = reason;
  std::vector<H2Header> extra{H2Header{"content-type", "application/json"}};
  if (!reason.empty()) extra.push_back(H2Header{std::string(proto::meta_header::kReason), std::string(reason)});
  reply(stream_id, status, boost::json::serialize(body), std::move(extra));
}

}  // namespace inkwire::relay
