#include "agent/handler_exchange.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>

#include "agent/upstream_request_builder.h"
#include "agent/ws_bridge_channel.h"
#include "proto/path_check.h"
#include "proto/ws_handshake.h"

namespace inkwire {

const std::string* HttpRequest::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (h.name == name) return &h.value;
  }
  return nullptr;
}

boost::asio::awaitable<Expected<std::string, std::string>> BodyReader::read_all(std::size_t max_bytes) {
  std::string all;
  for (;;) {
    auto piece = co_await read();
    if (!piece) co_return unexpected(piece.error());
    if (piece->empty()) co_return all;
    if (all.size() + piece->size() > max_bytes) co_return unexpected(std::string("request body too large"));
    all += *piece;
  }
}

}  // namespace inkwire

namespace inkwire::agent {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {

// A handler sees the client's headers minus those the agent sets itself (§6.6) and the hop-by-hop
// ones — the upstream rule, except that content-length stays (there is no re-framing here).
bool handler_skips(std::string_view name) {
  return name != "content-length" && is_unforwarded_request_header(name);
}

std::vector<HttpHeader> request_headers(const DataPlaneSession& session, const Envelope& envelope) {
  std::vector<HttpHeader> headers;
  headers.reserve(envelope.forwarded.size() + 5);
  headers.push_back({"host", session.settings().public_host});
  headers.push_back({"x-forwarded-host", session.settings().public_host});
  headers.push_back({"x-forwarded-proto", "https"});
  if (!envelope.forwarded_for.empty()) {
    headers.push_back({"x-forwarded-for", envelope.forwarded_for});
    const bool v6 = envelope.forwarded_for.find(':') != std::string::npos;
    headers.push_back({"forwarded", v6 ? "for=\"[" + envelope.forwarded_for + "]\"" : "for=" + envelope.forwarded_for});
  }
  for (const auto& h : envelope.forwarded) {
    if (!handler_skips(h.name)) headers.push_back({h.name, h.value});
  }
  return headers;
}

void fill_context(HandlerContext& context, const Envelope& envelope, SteadyClock::time_point deadline) {
  if (!envelope.forwarded_for.empty()) context.forwarded_for_ip = envelope.forwarded_for;
  if (!envelope.sni_host.empty()) context.sni_host = envelope.sni_host;
  context.deadline = deadline;
  auto& view = context.envelope;
  view.request_id = envelope.request_id;
  view.method = envelope.method;
  view.path = envelope.path;
  view.route_kind = envelope.kind.empty() ? "webhook" : envelope.kind;
  view.ws_id = envelope.ws_id;
  view.tcp_id = envelope.tcp_id;
  view.forwarded_for_ip = context.forwarded_for_ip;
  view.sni_host = context.sni_host;
  for (const auto& h : envelope.forwarded) view.forwarded_headers.push_back({h.name, h.value});
}

// The envelope's body stream, capped at the agent's inbound limit.
class EnvelopeBody final : public BodyReader {
 public:
  EnvelopeBody(std::shared_ptr<TunnelStream> stream, std::uint64_t cap) : stream_(std::move(stream)), cap_(cap) {}
  asio::awaitable<Expected<std::string, std::string>> read() override {
    if (done_) co_return std::string();
    // A scratch buffer kept for the request: a fresh zero-filled 64 KiB string per read cost a
    // memset per piece; only what arrived is copied out.
    if (!scratch_) scratch_ = std::make_unique_for_overwrite<std::uint8_t[]>(kPiece);
    auto [ec, n] = co_await stream_->read_some(std::span(scratch_.get(), kPiece));
    if (ec == asio::error::eof) {
      done_ = true;
      co_return std::string();
    }
    if (ec) co_return unexpected(std::string("the request was cut off"));
    total_ += n;
    if (total_ > cap_) {
      over_cap_ = true;
      co_return unexpected(std::string("request body too large"));
    }
    co_return std::string(reinterpret_cast<const char*>(scratch_.get()), n);
  }
  std::uint64_t total() const { return total_; }
  bool over_cap() const { return over_cap_; }

 private:
  static constexpr std::size_t kPiece = 64 * 1024;
  std::shared_ptr<TunnelStream> stream_;
  std::unique_ptr<std::uint8_t[]> scratch_;
  std::uint64_t cap_;
  std::uint64_t total_ = 0;
  bool done_ = false;
  bool over_cap_ = false;
};

// Everything a handler call touches, shared with the handler's coroutine: after a 504 the handler
// may go on, and must still find its request and context alive.
struct HandlerCall {
  HandlerCall(asio::any_io_executor executor, std::shared_ptr<TunnelStream> body, std::uint64_t cap)
      : body(std::move(body), cap), wake(std::move(executor)) {}
  HttpRequest request;
  HandlerContext context;
  EnvelopeBody body;
  HttpResponse response;
  asio::steady_timer wake;
  bool done = false;
  bool threw = false;
  std::string what;
};

}  // namespace

asio::awaitable<ExchangeOutcome> serve_with_handler(DataPlaneSession& session, const HttpHandler& handler,
                                                    Envelope& envelope) {
  ExchangeOutcome outcome;
  const auto& settings = session.settings();
  if (proto::invalid_path_reason(envelope.path)) {
    co_await session.post_simple(envelope, 400, "invalid-path", "invalid path");
    outcome.status = 400;
    co_return outcome;
  }
  const auto deadline = session.response_deadline(envelope);
  auto call = std::make_shared<HandlerCall>(session.executor(), envelope.body, settings.max_inbound_body_bytes);
  call->request.method = envelope.method;
  call->request.path = envelope.path;
  call->request.url = "https://" + settings.public_host + envelope.path;
  call->request.headers = request_headers(session, envelope);
  call->request.body_reader = &call->body;
  fill_context(call->context, envelope, deadline);
  asio::co_spawn(
      session.executor(),
      [call, &handler]() -> asio::awaitable<void> {
        call->response = co_await handler(call->request, call->context);
      },
      [call](std::exception_ptr error) {
        if (error) {
          call->threw = true;
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            call->what = e.what();
          } catch (...) {
            call->what = "unknown exception";
          }
        }
        call->done = true;
        call->wake.cancel();
      });
  call->wake.expires_at(deadline);
  while (!call->done && SteadyClock::now() < deadline) {
    co_await call->wake.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  outcome.bytes_in = call->body.total();
  if (!call->done) {
    // §6.6: the signal fires at the deadline; the third party gets 504 now, whatever the handler
    // does later.
    call->context.deadline_passed = true;
    call->context.signal.emit(asio::cancellation_type::terminal);
    co_await session.post_simple(envelope, 504, "response-deadline-exceeded", "response deadline exceeded");
    outcome.status = 504;
    co_return outcome;
  }
  if (call->threw) {
    session.logger()->warn("agent: the handler failed for {} {}: {}", envelope.method, envelope.path, call->what);
    co_await session.post_simple(envelope, 500, "handler-error", "internal error");
    outcome.status = 500;
    co_return outcome;
  }
  if (call->body.over_cap()) {
    co_await session.post_simple(envelope, 413, "request-body-too-large", "request body too large");
    outcome.status = 413;
    co_return outcome;
  }
  HttpResponse& response = call->response;
  std::vector<proto::HeaderField> headers;
  headers.reserve(response.headers.size());
  for (auto& h : response.headers) {
    std::string name = proto::lowercase_ascii(h.name);
    if (!is_unposted_response_header(name)) headers.push_back({std::move(name), std::move(h.value)});
  }
  const bool streamed = static_cast<bool>(response.body_stream);
  const bool empty = !streamed && response.body.empty();
  const std::optional<std::uint64_t> length =
      streamed ? std::nullopt : std::optional<std::uint64_t>(response.body.size());
  auto post = session.open_post(envelope, response.status, {}, headers, length, empty);
  outcome.status = response.status;
  if (!post || empty) co_return outcome;
  if (!streamed) {
    outcome.bytes_out = response.body.size();
    const auto written = co_await post->write_all(response.body);
    if (!written) post->finish_sending();
    co_return outcome;
  }
  bool ok = true;
  for (;;) {
    auto piece = co_await response.body_stream();
    if (!piece) {
      session.logger()->info("agent: {} {}: the handler's body failed: {}", envelope.method, envelope.path,
                             piece.error());
      ok = false;
      break;
    }
    if (piece->empty()) break;
    outcome.bytes_out += piece->size();
    if (outcome.bytes_out > settings.max_outbound_body_bytes) {
      ok = false;
      break;
    }
    const auto written = co_await post->write_all(*piece);
    if (written) {
      ok = false;
      break;
    }
  }
  if (ok) {
    post->finish_sending();
  } else {
    post->close();
  }
  co_return outcome;
}

namespace {

class HandlerWebSocket final : public WebSocketSession {
 public:
  HandlerWebSocket(DataPlaneSession& session, Envelope& envelope, RandomSource& random)
      : session_(session), envelope_(envelope), random_(random) {
    url_ = "wss://" + session.settings().public_host + envelope.path;
    std::vector<std::pair<std::string, std::string>> offer;
    for (const auto& h : envelope.forwarded) {
      // Lowercased names; the last value wins (§6.6, TS `ws.headers`).
      if (h.name == "sec-websocket-protocol") offer.emplace_back(h.name, h.value);
    }
    headers_ = request_headers(session, envelope);
    offered_ = proto::offered_subprotocols(offer);
    fill_context(context_, envelope, session.response_deadline(envelope));
  }

  const std::string& url() const override { return url_; }
  const std::vector<HttpHeader>& headers() const override { return headers_; }
  const std::vector<std::string>& offered_protocols() const override { return offered_; }
  const HandlerContext& context() const override { return context_; }

  asio::awaitable<Expected<Unit, std::string>> accept(std::optional<std::string> protocol,
                                                      std::vector<HttpHeader> headers) override {
    if (answered_) co_return unexpected(std::string("this WebSocket was already accepted or rejected"));
    if (protocol && std::find(offered_.begin(), offered_.end(), *protocol) == offered_.end()) {
      co_return unexpected("the subprotocol " + *protocol + " was not offered");
    }
    answered_ = true;
    std::vector<proto::HeaderField> fields;
    if (protocol) fields.push_back({"sec-websocket-protocol", *protocol});
    for (auto& h : headers) {
      std::string name = proto::lowercase_ascii(h.name);
      if (!is_unposted_response_header(name) && !name.starts_with("sec-websocket-")) fields.push_back({std::move(name), std::move(h.value)});
    }
    auto post = session_.open_post(envelope_, 200, {}, fields, 0, true);
    if (!post) co_return unexpected(std::string("the relay connection is gone"));
    const auto wait = std::chrono::seconds(10);
    const int posted = co_await post->wait_headers(SteadyClock::now() + wait);
    if (posted != 200) co_return unexpected("the relay answered the accept with " + std::to_string(posted));
    auto bridge = session_.open_bridge(DataPlaneSession::BridgeKind::ws, envelope_.ws_id);
    if (!bridge) co_return unexpected(std::string("the relay connection is gone"));
    const int opened = co_await bridge->wait_headers(SteadyClock::now() + wait);
    if (opened != 200) {
      bridge->close();
      co_return unexpected("the relay answered the bridge with " + std::to_string(opened));
    }
    channel_.emplace(std::move(bridge), random_);
    accepted_ = true;
    co_return Unit{};
  }

  asio::awaitable<void> reject(int status, std::string body) override {
    if (answered_) co_return;
    answered_ = true;
    rejected_status_ = status;
    co_await session_.post_simple(envelope_, status, "ws-rejected", body);
  }

  asio::awaitable<std::optional<WebSocketMessage>> receive() override {
    if (!channel_ || peer_closed_) co_return std::nullopt;
    auto message = co_await channel_->receive();
    if (!message || message->type == proto::BridgeMessage::Type::close) {
      peer_closed_ = true;
      close_code_ = channel_->end_code();
      co_return std::nullopt;
    }
    co_return WebSocketMessage{message->type == proto::BridgeMessage::Type::binary, std::move(message->data)};
  }

  asio::awaitable<bool> send_text(std::string_view text) override {
    if (!channel_ || channel_->closed_by_us()) co_return false;
    co_return co_await channel_->send_text(text);
  }
  asio::awaitable<bool> send_binary(std::string_view bytes) override {
    if (!channel_ || channel_->closed_by_us()) co_return false;
    co_return co_await channel_->send_binary(bytes);
  }
  asio::awaitable<void> close(int code, std::string_view reason) override {
    if (!channel_) co_return;
    co_await channel_->close(static_cast<std::uint16_t>(code), reason);
  }
  std::optional<int> close_code() const override { return close_code_; }

  bool accepted() const { return accepted_; }
  bool answered() const { return answered_; }
  int rejected_status() const { return rejected_status_; }
  WsBridgeChannel* channel() { return channel_ ? &*channel_ : nullptr; }

 private:
  DataPlaneSession& session_;
  Envelope& envelope_;
  RandomSource& random_;
  std::string url_;
  std::vector<HttpHeader> headers_;
  std::vector<std::string> offered_;
  HandlerContext context_;
  std::optional<WsBridgeChannel> channel_;
  bool answered_ = false;
  bool accepted_ = false;
  bool peer_closed_ = false;
  int rejected_status_ = 0;
  std::optional<int> close_code_;
};

}  // namespace

asio::awaitable<ExchangeOutcome> serve_with_ws_handler(DataPlaneSession& session, const WebSocketHandler& handler,
                                                       RandomSource& random, Envelope& envelope) {
  ExchangeOutcome outcome;
  if (proto::invalid_path_reason(envelope.path)) {
    co_await session.post_simple(envelope, 400, "invalid-path", "invalid path");
    outcome.status = 400;
    co_return outcome;
  }
  if (envelope.ws_id.empty()) {
    co_await session.post_simple(envelope, 400, "missing-ws-id", "missing ws id");
    outcome.status = 400;
    co_return outcome;
  }
  HandlerWebSocket ws(session, envelope, random);
  std::string failure;
  try {
    co_await handler(ws);
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "unknown exception";
  }
  if (!failure.empty()) session.logger()->warn("agent: the WebSocket handler failed for {}: {}", envelope.path, failure);
  if (!ws.answered()) {
    const int status = failure.empty() ? 403 : 500;
    co_await session.post_simple(envelope, status, failure.empty() ? "ws-rejected" : "handler-error",
                                 failure.empty() ? "websocket refused" : "internal error");
    outcome.status = status;
    co_return outcome;
  }
  if (!ws.accepted()) {
    outcome.status = ws.rejected_status() ? ws.rejected_status() : 502;
    co_return outcome;
  }
  // The handler returned with the session open: close it normally (1011 after an exception).
  if (auto* channel = ws.channel(); channel && !channel->closed_by_us()) {
    co_await channel->close(failure.empty() ? proto::ws_close::normal : proto::ws_close::internal_error,
                            failure.empty() ? "" : "handler error");
  }
  outcome.status = 101;
  co_return outcome;
}

}  // namespace inkwire::agent
