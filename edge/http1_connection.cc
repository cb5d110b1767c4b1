#include "edge/http1_connection.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <optional>

#include "proto/header_rules.h"
#include "proto/response_post.h"
#include "proto/ws_handshake.h"

namespace inkwire::edge {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace asio::experimental::awaitable_operators;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kReadChunk = 16 * 1024;
// After our answer, how long and how much a closing connection keeps reading (lingering close).
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::size_t kLingerBytes = 8 * 1024 * 1024;
constexpr std::size_t kBodyChunk = 64 * 1024;
// How long a WebSocket waits for the other side's CLOSE after sending its own.
constexpr auto kWebSocketCloseWait = std::chrono::seconds(3);

std::string_view reason_phrase(int status) {
  const auto reason = http::obsolete_reason(static_cast<http::status>(status));
  return reason.starts_with("<") ? std::string_view() : std::string_view(reason.data(), reason.size());
}

void append_status_line(std::string& out, int status) {
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reason_phrase(status);
  out += "\r\n";
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

const std::string* find_field(const std::vector<std::pair<std::string, std::string>>& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (proto::iequals_ascii(n, name)) return &v;
  }
  return nullptr;
}

}  // namespace

struct Http1Connection::Request {
  SteadyClock::time_point started = SteadyClock::now();
  std::string head;  // a copy of the head bytes: `facts` views into it
  proto::RequestHeadFacts facts;
  std::optional<http::request_parser<http::buffer_body>> parser;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string accept;
  std::string tunnel;
  std::string_view protocol = "http/1.1";
  int status = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::string_view error_code;
  bool is_head = false;
  bool body_complete = true;  // false while request body bytes may still be unread
};

Http1Connection::Http1Connection(EdgeContext& ctx, asio::any_io_executor executor, std::unique_ptr<ByteStream> stream,
                                 std::string sni, std::string client_ip, bool tls, bool serve_tunnels)
    : ctx_(ctx),
      stream_(std::move(stream)),
      sni_(std::move(sni)),
      client_ip_(std::move(client_ip)),
      tls_(tls),
      serve_tunnels_(serve_tunnels),
      watchdog_(std::move(executor)) {}

void Http1Connection::drain() {
  draining_ = true;
  // Idle between requests: nothing is lost by closing now.
  if (idle_) force_close();
}

void Http1Connection::force_close() {
  closed_ = true;
  watchdog_.stop();
  stream_->close();
}

void Http1Connection::on_timeout(std::string_view kind) {
  ctx_.metrics.timeout(kind).Increment();
  closed_ = true;
  stream_->close();
}

asio::awaitable<void> Http1Connection::run() {
  auto self = shared_from_this();
  // The callback is cleared when the watchdog stops, which breaks the cycle it makes with `self`.
  watchdog_.on_expired = [self](std::string_view kind) { self->on_timeout(kind); };
  // The executor first, in a statement of its own: GCC 12 destroys a temporary (here the lambda
  // with its shared_ptr) twice when it shares a full-expression with a co_await.
  auto executor = co_await asio::this_coro::executor;
  asio::co_spawn(executor, [self] { return self->watchdog_.run(); }, asio::detached);
  bool first = true;
  while (!closed_) {
    // Between requests only the idle deadline runs; the head deadline starts with its first byte.
    watchdog_.set(std::chrono::seconds(first ? ctx_.config.request_head_timeout_seconds
                                             : ctx_.config.idle_timeout_seconds),
                  first ? "request_head" : "idle");
    idle_ = !first && in_off_ == in_.size();
    if (!first && (draining_ || ctx_.draining)) break;
    first = false;
    std::size_t head_size = 0;
    if (!co_await read_head(head_size)) break;
    idle_ = false;
    if (co_await handle_request(head_size) == Outcome::close) break;
    // Compact: whatever follows the request (a pipelined one) moves to the front.
    in_.erase(0, in_off_);
    in_off_ = 0;
  }
  if (stream_->is_open() && !closed_) {
    // Lingering close (as nginx's lingering_close): a client may still be sending — an upload
    // answered early (413 from the agent, an error page) — and closing with its bytes unread makes
    // the kernel answer with RST, which can destroy our answer before the client has read it. So
    // our side ends first and what still comes in is read and dropped, bounded in time and bytes.
    stream_->finish_sending();
    watchdog_.set(kLingerTime, "linger");
    if (!read_buffer_) read_buffer_ = std::make_unique_for_overwrite<std::uint8_t[]>(kReadChunk);
    std::size_t drained = 0;
    while (!closed_ && drained < kLingerBytes) {
      auto [ec, n] = co_await stream_->read_some(std::span<std::uint8_t>(read_buffer_.get(), kReadChunk));
      if (ec || n == 0) break;
      drained += n;
    }
  }
  watchdog_.stop();
  if (stream_->is_open()) stream_->close();
}

asio::awaitable<bool> Http1Connection::read_more() {
  // Read into a scratch buffer that is never zero-filled, then append what came: growing `in_` by
  // the read size first would memset 16 KiB per read on the request path.
  if (!read_buffer_) read_buffer_ = std::make_unique_for_overwrite<std::uint8_t[]>(kReadChunk);
  // Bytes already parsed are dropped first: within one request (a body of any size) `in_` would
  // otherwise keep everything the client sent — a 1 GiB upload held 1 GiB here.
  if (in_off_ == in_.size()) {
    in_.clear();
    in_off_ = 0;
  } else if (in_off_ >= kReadChunk) {
    in_.erase(0, in_off_);
    in_off_ = 0;
  }
  auto [ec, n] = co_await stream_->read_some(std::span<std::uint8_t>(read_buffer_.get(), kReadChunk));
  if (ec || n == 0) co_return false;
  in_.append(reinterpret_cast<const char*>(read_buffer_.get()), n);
  co_return true;
}

asio::awaitable<bool> Http1Connection::read_head(std::size_t& head_size) {
  const std::size_t max_head = ctx_.config.max_target_bytes + ctx_.config.max_header_bytes + 8192;
  std::size_t scanned = 0;
  bool started = in_.size() > in_off_;
  if (started) {
    watchdog_.set(std::chrono::seconds(ctx_.config.request_head_timeout_seconds), "request_head");
  }
  for (;;) {
    const std::string_view pending(in_.data() + in_off_, in_.size() - in_off_);
    const std::size_t end = proto::find_request_head_end(pending, scanned);
    if (end != std::string_view::npos) {
      head_size = end;
      co_return true;
    }
    scanned = pending.size() < 2 ? 0 : pending.size() - 2;
    if (pending.size() > max_head) {
      Request request;
      co_await send_error(request, EdgeError{431, error_code::headers_too_large}, false);
      co_return false;
    }
    if (!co_await read_more()) co_return false;
    if (!started) {
      // Slowloris: the whole head must arrive within the deadline counted from its first byte.
      started = true;
      idle_ = false;
      watchdog_.set(std::chrono::seconds(ctx_.config.request_head_timeout_seconds), "request_head");
    }
  }
}

asio::awaitable<Http1Connection::Outcome> Http1Connection::handle_request(std::size_t head_size) {
  Request request;
  request.head.assign(in_.data() + in_off_, head_size);
  in_off_ += head_size;
  // The head is in: from here on the client waits for us (the relay's deadlines bound that), or
  // sends a body under the minimum-rate rule.
  watchdog_.clear();
  auto checked = proto::check_request_head(request.head);
  if (!checked) {
    const int status = checked.error().status;
    const EdgeError error{status, status == 505   ? error_code::version_not_supported
                                  : status == 417 ? error_code::expectation_failed
                                  : status == 431 ? error_code::headers_too_large
                                                  : error_code::bad_request};
    ctx_.logger->debug("edge: {} refused a request head: {}", client_ip_, checked.error().reason);
    co_return co_await send_error(request, error, false);
  }
  request.facts = *checked;
  request.is_head = request.facts.method == "HEAD";
  ctx_.metrics.request("http1").Increment();

  // Beast reads the fields and, later, the body framing; the head checks above already refused
  // everything it would read differently from a backend.
  request.parser.emplace();
  request.parser->header_limit(static_cast<std::uint32_t>(head_size + 1));
  request.parser->body_limit(ctx_.config.max_request_body_bytes);
  request.parser->eager(false);
  boost::beast::error_code ec;
  request.parser->put(asio::buffer(request.head), ec);
  if (ec == http::error::body_limit) {
    // Beast compares a Content-Length with the body limit as it reads the head.
    co_return co_await send_error(request, EdgeError{413, error_code::body_too_large}, false);
  }
  if (ec || !request.parser->is_header_done()) {
    co_return co_await send_error(request, EdgeError{400, error_code::bad_request}, false);
  }
  for (const auto& field : request.parser->get()) {
    request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  if (const std::string* accept = find_field(request.headers, "accept")) request.accept = *accept;
  request.body_complete = request.parser->is_done();

  if (!serve_tunnels_) co_return co_await send_redirect(request);
  if (tls_ && proto::lowercase_ascii(host_without_port(request.facts.host)) != sni_) {
    co_return co_await send_error(request, EdgeError{421, error_code::misdirected}, request.body_complete);
  }
  co_return co_await forward(request);
}

asio::awaitable<Http1Connection::Outcome> Http1Connection::send_redirect(Request& request) {
  const std::string host = host_without_port(request.facts.host);
  if (host.empty()) co_return co_await send_error(request, EdgeError{400, error_code::bad_request}, false);
  std::string location = "https://" + host;
  if (ctx_.config.public_https_port != 443) location += ":" + std::to_string(ctx_.config.public_https_port);
  location += request.facts.target.starts_with("/") ? request.facts.target : std::string_view("/");
  std::string out;
  append_status_line(out, 308);
  append_field(out, "location", location);
  append_field(out, "content-length", "0");
  const bool keep = request.body_complete && request.facts.persistent() && !draining_;
  if (!keep) append_field(out, "connection", "close");
  out += "\r\n";
  request.status = 308;
  const bool ok = co_await write(out);
  finish(request);
  co_return ok && keep ? Outcome::keep_alive : Outcome::close;
}

asio::awaitable<Http1Connection::Outcome> Http1Connection::forward(Request& request) {
  auto target = co_await resolve_tunnel(ctx_, request.facts.host, true);
  if (!target) co_return co_await send_error(request, target.error(), request.body_complete);
  request.tunnel = target->name;

  relay::InboundCall call;
  call.tunnel_id = target->route.id;
  call.request.method = std::string(request.facts.method);
  call.request.target = std::string(request.facts.target);
  call.request.headers = request.headers;
  call.request.client_ip = client_ip_;
  call.request.sni_host = sni_;
  const bool has_body = request.facts.chunked || request.facts.content_length.value_or(0) > 0;
  call.has_body = has_body;

  if (request.facts.has_upgrade_websocket) {
    if (request.facts.method != "GET" || has_body) {
      co_return co_await send_error(request, EdgeError{400, error_code::bad_request}, false);
    }
    const std::string* version = find_field(request.headers, "sec-websocket-version");
    if (!version || proto::trim_ows(*version) != "13") {
      co_return co_await send_error(request, EdgeError{426, error_code::upgrade_required}, true);
    }
    const std::string* key = find_field(request.headers, "sec-websocket-key");
    if (!key || !proto::is_valid_websocket_key(proto::trim_ows(*key))) {
      co_return co_await send_error(request, EdgeError{400, error_code::bad_request}, false);
    }
    call.kind = proto::RouteKind::ws_upgrade;
    request.protocol = "ws";
  }
  if (request.facts.content_length && *request.facts.content_length > ctx_.config.max_request_body_bytes) {
    co_return co_await send_error(request, EdgeError{413, error_code::body_too_large}, false);
  }

  auto dispatched = ctx_.registry.dispatch(std::move(call));
  if (!dispatched) {
    co_return co_await send_error(request, error_for_envelope(dispatched.error()), request.body_complete);
  }
  std::shared_ptr<relay::Exchange> exchange = *dispatched;
  if (has_body && request.facts.expect_100_continue) {
    if (!co_await write("HTTP/1.1 100 Continue\r\n\r\n")) {
      exchange->cancel();
      co_return Outcome::close;
    }
  }

  // The body streams to the agent while the answer is awaited: the relay's deadlines run in
  // response(), and a failure there releases a body pump blocked on a full pipe.
  auto head_or_failure = [](std::shared_ptr<relay::Exchange> ex) -> asio::awaitable<Expected<relay::ResponseHead, relay::DispatchFailure>> {
    auto head = co_await ex->response();
    if (!head) ex->request_body().close_reader();
    co_return head;
  };
  bool body_ok = true;
  Expected<relay::ResponseHead, relay::DispatchFailure> head = unexpected(relay::DispatchFailure{});
  if (has_body) {
    auto [pumped, answer] = co_await (pump_request_body(request, exchange) && head_or_failure(exchange));
    body_ok = pumped;
    head = std::move(answer);
  } else {
    head = co_await head_or_failure(exchange);
  }
  watchdog_.clear();
  if (closed_) {
    exchange->cancel();
    co_return Outcome::close;
  }
  if (!head) {
    if (head.error().status == 499) co_return Outcome::close;  // the client went away
    const EdgeError error = !body_ok && request.status == 413 ? EdgeError{413, error_code::body_too_large}
                          : !body_ok && request.status == 400 ? EdgeError{400, error_code::bad_request}
                                                              : error_for_failure(head.error());
    co_return co_await send_error(request, error, request.body_complete);
  }
  if (!body_ok) {
    exchange->cancel();
    co_return Outcome::close;
  }
  if (exchange->kind() == proto::RouteKind::ws_upgrade && head->status == 200) {
    co_return co_await run_websocket(request, exchange, std::move(*head));
  }
  co_return co_await send_response(request, *exchange, std::move(*head));
}

asio::awaitable<bool> Http1Connection::pump_request_body(Request& request, std::shared_ptr<relay::Exchange> exchange) {
  auto& parser = *request.parser;
  parser.eager(true);
  const auto chunk = std::make_unique_for_overwrite<char[]>(kBodyChunk);  // no zero-fill per request
  const auto window = std::chrono::seconds(ctx_.config.body_rate_window_seconds);
  const std::uint64_t window_minimum = ctx_.config.min_body_bytes_per_second * ctx_.config.body_rate_window_seconds;
  std::uint64_t window_bytes = 0;
  request.body_complete = false;
  watchdog_.set(window, "body_rate");
  while (!parser.is_done()) {
    std::size_t produced = 0;
    if (in_off_ < in_.size()) {
      parser.get().body().data = chunk.get();
      parser.get().body().size = kBodyChunk;
      boost::beast::error_code ec;
      const std::size_t used = parser.put(asio::buffer(in_.data() + in_off_, in_.size() - in_off_), ec);
      in_off_ += used;
      if (ec == http::error::need_buffer || ec == http::error::need_more) ec = {};
      if (ec) {
        request.status = ec == http::error::body_limit ? 413 : 400;
        exchange->cancel();
        co_return false;
      }
      produced = kBodyChunk - parser.get().body().size;
      if (produced > 0) {
        request.bytes_in += produced;
        window_bytes += produced;
        // The pipe's wait is the agent's pace, not the client's: no rate deadline meanwhile.
        const auto saved = watchdog_.deadline();
        watchdog_.clear();
        const bool taken = co_await exchange->request_body().write(std::string_view(chunk.get(), produced));
        watchdog_.set_at(saved, "body_rate");
        if (!taken) co_return true;  // the exchange ended (failed or cancelled); response() says how
        continue;
      }
      if (used > 0) continue;
    }
    if (!co_await read_more()) {
      exchange->cancel();
      co_return false;
    }
    if (window_minimum > 0 && window_bytes + (in_.size() - in_off_) >= window_minimum) {
      window_bytes = 0;
      watchdog_.set(window, "body_rate");
    }
  }
  request.body_complete = true;
  exchange->request_body().finish();
  co_return true;
}

asio::awaitable<Http1Connection::Outcome> Http1Connection::send_response(Request& request, relay::Exchange& exchange,
                                                                          relay::ResponseHead head) {
  if (head.status < 200) {
    // An interim status cannot stand as the answer (a 101 without an upgrade would desynchronise
    // the connection): the agent's answer is unusable.
    exchange.response_body().close_reader();
    co_return co_await send_error(request, EdgeError{502, error_code::bad_agent_response}, request.body_complete);
  }
  const bool has_body = proto::response_has_body(request.facts.method, head.status);
  const bool keep = request.body_complete && request.facts.persistent() && !draining_ && !ctx_.draining;
  // HTTP/1.0 clients get a close-delimited body when the length is unknown; 1.1 clients chunks.
  const bool chunked = has_body && !head.body_length && !request.facts.http10;
  const bool close_delimited = has_body && !head.body_length && request.facts.http10;
  std::string out;
  out.reserve(512);
  append_status_line(out, head.status);
  for (const auto& field : head.headers) append_field(out, field.name, field.value);
  if (has_body) {
    if (head.body_length) {
      append_field(out, "content-length", std::to_string(*head.body_length));
    } else if (chunked) {
      append_field(out, "transfer-encoding", "chunked");
    }
  }
  const bool will_keep = keep && !close_delimited;
  if (!will_keep) append_field(out, "connection", "close");
  out += "\r\n";
  request.status = head.status;

  relay::BytePipe& body = exchange.response_body();
  if (!has_body) {
    body.close_reader();
    const bool ok = co_await write(out);
    finish(request);
    co_return ok && will_keep ? Outcome::keep_alive : Outcome::close;
  }
  // The head goes out with the first body bytes when they are already there (one write, one TLS
  // record for a small response).
  bool complete = false;
  for (;;) {
    relay::PipeRead piece;
    if (body.size() > 0 || body.at_end()) {
      piece = co_await body.read(kBodyChunk);
    } else if (!out.empty()) {
      if (!co_await write(out)) break;
      out.clear();
      continue;
    } else {
      piece = co_await body.read(kBodyChunk);
    }
    if (!piece.bytes.empty()) {
      request.bytes_out += piece.bytes.size();
      if (chunked) {
        char size_line[24];
        const int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", piece.bytes.size());
        out.append(size_line, static_cast<std::size_t>(n));
        out += piece.bytes;
        out += "\r\n";
      } else {
        out += piece.bytes;
      }
      if (out.size() >= kBodyChunk || body.size() == 0) {
        if (!co_await write(out)) break;
        out.clear();
      }
      continue;
    }
    if (piece.end == relay::PipeEnd::finished) {
      if (chunked) out += "0\r\n\r\n";
      complete = !head.body_length || request.bytes_out == *head.body_length;
      if (!out.empty() && !co_await write(out)) complete = false;
      out.clear();
    }
    break;  // finished, or aborted: the agent went away mid-body and the response stays short
  }
  if (!complete) {
    body.close_reader();
    exchange.cancel();
  }
  finish(request);
  co_return complete && will_keep ? Outcome::keep_alive : Outcome::close;
}

asio::awaitable<Http1Connection::Outcome> Http1Connection::send_error(Request& request, const EdgeError& error,
                                                                       bool keep_alive) {
  ErrorResponse page = render_error(error, request.accept, retry_after_for(ctx_, error));
  const bool keep = keep_alive && request.parser && request.facts.persistent() && !draining_ && !ctx_.draining;
  std::string out;
  append_status_line(out, page.status);
  for (const auto& field : page.headers) append_field(out, field.name, field.value);
  append_field(out, "content-length", std::to_string(page.body.size()));
  if (!keep) append_field(out, "connection", "close");
  out += "\r\n";
  if (!request.is_head) out += page.body;
  request.status = page.status;
  request.error_code = error.code;
  const bool ok = co_await write(out);
  request.bytes_out += request.is_head ? 0 : page.body.size();
  finish(request);
  co_return ok && keep ? Outcome::keep_alive : Outcome::close;
}

asio::awaitable<bool> Http1Connection::write(std::string_view bytes) {
  if (closed_) co_return false;
  const auto saved_deadline = watchdog_.deadline();
  const auto saved_kind = watchdog_.kind();
  watchdog_.set(std::chrono::seconds(ctx_.config.send_timeout_seconds), "send");
  writing_ = true;
  const auto ec = co_await stream_->write_all(bytes);
  writing_ = false;
  watchdog_.set_at(saved_deadline, saved_kind);
  if (ec) {
    closed_ = true;
    co_return false;
  }
  co_return true;
}

void Http1Connection::finish(Request& request) {
  AccessRecord record;
  record.protocol = request.protocol;
  record.tunnel = request.tunnel;
  record.method = request.facts.method;
  record.target = request.facts.target;
  record.status = request.status;
  record.bytes_in = request.bytes_in;
  record.bytes_out = request.bytes_out;
  record.started = request.started;
  record.client_ip = client_ip_;
  record.error_code = request.error_code;
  record_access(ctx_, record);
}

// ---- WebSocket -----------------------------------------------------------------------------------

asio::awaitable<Http1Connection::Outcome> Http1Connection::run_websocket(Request& request,
                                                                          std::shared_ptr<relay::Exchange> exchange,
                                                                          relay::ResponseHead head) {
  exchange->response_body().close_reader();
  const std::vector<std::string> offered = proto::offered_subprotocols(request.headers);
  const std::string* key = find_field(request.headers, "sec-websocket-key");
  auto accept = proto::prepare_ws_accept(std::move(head.headers), offered, key ? proto::trim_ows(*key) : "");
  if (!accept) {
    ctx_.logger->info("edge: tunnel {}: WebSocket accept refused: {}", request.tunnel, accept.error().reason);
    exchange->cancel();
    co_return co_await send_error(request, EdgeError{accept.error().third_party_status, error_code::bad_agent_response},
                                  false);
  }
  // A10: the 101 goes out only once the agent's bridge is there.
  auto bridged = co_await exchange->bridge();
  if (!bridged) {
    co_return co_await send_error(request, error_for_failure(bridged.error()), true);
  }
  std::string out;
  append_status_line(out, 101);
  append_field(out, "upgrade", "websocket");
  append_field(out, "connection", "Upgrade");
  append_field(out, "sec-websocket-accept", accept->accept);
  for (const auto& field : accept->headers) append_field(out, field.name, field.value);
  out += "\r\n";
  request.status = 101;
  if (!co_await write(out)) {
    exchange->cancel();
    finish(request);
    co_return Outcome::close;
  }
  exchange->accept_bridge();
  TunnelSeries& series = ctx_.metrics.tunnel(request.tunnel);
  series.websockets_open->Increment();
  watchdog_.clear();

  proto::PublicWebSocketLimits limits;
  limits.max_message_bytes = ctx_.config.max_ws_message_bytes;
  limits.max_frame_payload = ctx_.config.max_ws_message_bytes;
  ws_ = std::make_unique<proto::PublicWebSocket>(limits);
  auto executor = co_await asio::this_coro::executor;
  ws_wake_ = std::make_unique<asio::steady_timer>(executor);
  reader_wake_ = std::make_unique<asio::steady_timer>(executor);
  // Frames the client sent right behind its handshake.
  if (in_off_ < in_.size()) {
    ws_->feed_from_client(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(in_.data()) + in_off_,
                                                        in_.size() - in_off_));
    request.bytes_in += in_.size() - in_off_;
  }
  in_.clear();
  in_off_ = 0;
  last_client_bytes_ = SteadyClock::now();
  exchange->from_agent().on_readable = [weak = weak_from_this()] {
    if (auto self = weak.lock(); self && self->ws_wake_) self->ws_wake_->cancel();
  };
  exchange->to_agent().on_writable = [weak = weak_from_this()] {
    if (auto self = weak.lock(); self && self->ws_wake_) self->ws_wake_->cancel();
  };
  asio::co_spawn(executor, [self = shared_from_this()] { return self->websocket_reader(); }, asio::detached);
  co_await websocket_loop(request, *exchange);
  ws_done_ = true;
  reader_wake_->cancel();
  exchange->from_agent().on_readable = nullptr;
  exchange->to_agent().on_writable = nullptr;
  series.websockets_open->Decrement();
  finish(request);
  co_return Outcome::close;
}

asio::awaitable<void> Http1Connection::websocket_reader() {
  auto self = shared_from_this();
  // Bounded by the agent's pace: while the codec holds this much for the agent, stop reading.
  const std::size_t pause_above = 4 * kBodyChunk;
  while (!closed_ && !ws_done_) {
    if (ws_->pending_to_agent() + ws_to_agent_.size() > pause_above) {
      reader_wake_->expires_at(SteadyClock::time_point::max());
      co_await reader_wake_->async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    in_.clear();
    in_off_ = 0;
    const bool got = co_await read_more();
    if (ws_done_) break;
    if (!got) {
      client_read_failed_ = true;
      ws_wake_->cancel();
      break;
    }
    last_client_bytes_ = SteadyClock::now();
    ws_->feed_from_client(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(in_.data()), in_.size()));
    ws_bytes_in_ += in_.size();
    ws_wake_->cancel();
    if (ws_->client_close_received()) break;
  }
}

asio::awaitable<void> Http1Connection::websocket_loop(Request& request, relay::Exchange& exchange) {
  proto::PublicWebSocket& ws = *ws_;
  const auto interval = std::chrono::seconds(ctx_.config.ws_ping_interval_seconds);
  auto next_ping = interval.count() > 0 ? SteadyClock::now() + interval : SteadyClock::time_point::max();
  std::optional<SteadyClock::time_point> close_wait_until;
  while (!closed_) {
    // Client gone (EOF, reset, keepalive silence): the agent hears 1001 (client_gone).
    if (client_read_failed_ && !ws.client_close_received() && !ws.agent_ended()) ws.client_gone();
    // Agent → client.
    while (exchange.from_agent().size() > 0 || (exchange.from_agent().at_end() && !ws.agent_ended())) {
      relay::PipeRead piece = co_await exchange.from_agent().read(kBodyChunk);
      if (!piece.bytes.empty()) {
        ws.feed_from_agent(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(piece.bytes.data()),
                                                         piece.bytes.size()));
      } else if (piece.end == relay::PipeEnd::finished) {
        ws.agent_finished(exchange.agent_close_code());
      } else {
        ws.agent_failed();
      }
      if (ws.pending_to_client() >= kBodyChunk) break;
    }
    // Client → agent: the pipe takes what fits; the rest waits here for on_writable (never a
    // blocking write: an agent blocked on its own writes to us would deadlock with it).
    if (ws.pending_to_agent() > 0) ws_to_agent_ += ws.take_to_agent();
    if (!ws_to_agent_.empty()) {
      if (exchange.to_agent().reader_closed() || exchange.is_done()) {
        ws_to_agent_.clear();  // the bridge is gone; nothing more can reach the agent
      } else {
        ws_to_agent_.erase(0, exchange.to_agent().write_some(ws_to_agent_));
      }
      reader_wake_->cancel();
    }
    if (ws.pending_to_client() > 0) {
      const std::string bytes = ws.take_to_client();
      request.bytes_out += bytes.size();
      if (!co_await write(bytes)) break;
    }
    // Done: both directions closed, or the client is gone and the agent has been told.
    if (ws.finished()) break;
    if (client_read_failed_ && (ws.agent_close_sent() || ws.agent_ended())) break;
    if (ws.agent_ended() && ws.client_close_sent() && !ws.client_close_received()) {
      // Our CLOSE went out: the client has a moment to answer before the TCP connection closes.
      if (!close_wait_until) close_wait_until = SteadyClock::now() + kWebSocketCloseWait;
      if (SteadyClock::now() >= *close_wait_until) break;
    }
    if (exchange.from_agent().size() > 0 || (exchange.from_agent().at_end() && !ws.agent_ended())) continue;
    if ((ws.pending_to_agent() > 0 || !ws_to_agent_.empty()) && exchange.to_agent().room() > 0) continue;
    // Keepalive: a PING after a quiet interval; silence for two intervals means the client is gone.
    const auto now = SteadyClock::now();
    if (now >= next_ping) {
      if (now - last_client_bytes_ >= 2 * interval) {
        ctx_.metrics.timeout("ws_ping").Increment();
        client_read_failed_ = true;
        continue;
      }
      if (now - last_client_bytes_ >= interval) {
        static constexpr std::uint8_t kPayload[] = {'i', 'n', 'k', 'w', 'i', 'r', 'e'};
        ws.send_ping(kPayload);
      }
      next_ping = now + interval;
      continue;
    }
    auto wake_at = next_ping;
    if (close_wait_until) wake_at = std::min(wake_at, *close_wait_until);
    ws_wake_->expires_at(wake_at);
    co_await ws_wake_->async_wait(asio::as_tuple(asio::use_awaitable));
  }
  request.bytes_in += ws_bytes_in_;
  // The agent's side ends with END_STREAM after whatever close message went to it.
  // Whatever is still owed to the agent (at most the reader's pause threshold plus a close
  // message) goes in past the pipe's cap rather than being lost.
  ws_to_agent_ += ws.take_to_agent();
  if (!ws_to_agent_.empty() && !exchange.to_agent().reader_closed()) {
    exchange.to_agent().push(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(ws_to_agent_.data()),
                                                           ws_to_agent_.size()));
  }
  ws_to_agent_.clear();
  exchange.to_agent().finish();
}

}  // namespace inkwire::edge
