#include "agent/plaintext_h1.h"

#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/status.hpp>
#include <cstdio>

#include "agent/byte_splice.h"
#include "agent/task_group.h"
#include "agent/upstream_websocket.h"
#include "proto/response_post.h"
#include "proto/ws_handshake.h"

namespace inkwire::agent {

namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

constexpr std::size_t kReadChunk = 16 * 1024;
// Upstream body pieces, and the size up to which a response with a known length goes out in one
// write with its head (a larger or unknown body gets its head at once, so a slow upstream does not
// hold the status back).
constexpr std::size_t kBodyChunk = 64 * 1024;
// After a refusal the client may still be sending; reading (and dropping) what it sends for a
// moment keeps the kernel from answering with a RST that could destroy our response in flight.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::size_t kMaxLingerBytes = 1024 * 1024;

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

// The text body of a refusal from the request parser.
std::string_view parse_failure_message(int status) {
  switch (status) {
    case 413: return "request body too large\n";
    case 417: return "expectation failed\n";
    case 431: return "request header fields too large\n";
    case 505: return "HTTP version not supported\n";
    default: return "bad request\n";
  }
}

Http1Limits limits_from(const PlaintextServerSettings& settings) {
  Http1Limits limits;
  limits.max_header_bytes = settings.max_header_bytes;
  limits.max_body_bytes = settings.max_inbound_body_bytes;
  return limits;
}

}  // namespace

PlaintextH1Connection::PlaintextH1Connection(asio::any_io_executor executor, ByteStream& stream,
                                             const PlaintextServerSettings& settings, HttpForwarder& forwarder,
                                             Logger logger)
    : stream_(stream),
      settings_(settings),
      forwarder_(forwarder),
      logger_(std::move(logger)),
      watchdog_(std::move(executor)),
      parser_(limits_from(settings)) {}

asio::awaitable<void> PlaintextH1Connection::run() {
  auto executor = co_await asio::this_coro::executor;
  TaskGroup tasks(executor);
  watchdog_.on_expired = [this] {
    closed_ = true;
    stream_.close();
  };
  tasks.spawn([this] { return watchdog_.run(); });
  for (;;) {
    const Outcome outcome = co_await serve_one();
    if (outcome == Outcome::close || closed_) break;
    parser_.reset();
  }
  co_await lingering_close();
  watchdog_.stop();
  co_await tasks.join();
}

asio::awaitable<PlaintextH1Connection::Outcome> PlaintextH1Connection::serve_one() {
  // From the end of the previous response, the client has idle_timeout to send a whole head
  // (keep-alive idle and head read share one bound, so a head dripped a byte at a time ends too).
  watchdog_.set_after(settings_.idle_timeout);
  bool in_body = false;
  for (;;) {
    std::size_t used = 0;
    const auto status = parser_.feed(pending(), used);
    in_off_ += used;
    switch (status) {
      case Http1RequestParser::Status::need_more:
        if (in_off_ > 0) {
          in_.erase(0, in_off_);
          in_off_ = 0;
        }
        // Within a body, each read must come within idle_timeout: slow uploads that progress live.
        if (in_body) watchdog_.set_after(settings_.idle_timeout);
        if (!co_await read_more()) co_return Outcome::close;
        continue;
      case Http1RequestParser::Status::head_complete: {
        in_body = true;
        watchdog_.clear();
        // An upgrade is served whole here: it has no body, and after a 101 it is not HTTP any more.
        if (parser_.request().is_websocket) co_return co_await serve_websocket_upgrade();
        const Outcome outcome = co_await on_head();
        if (outcome == Outcome::close) co_return Outcome::close;
        continue;
      }
      case Http1RequestParser::Status::complete:
        watchdog_.clear();
        co_return co_await forward();
      case Http1RequestParser::Status::failed: {
        watchdog_.clear();
        const RequestError& error = parser_.error();
        logger_->debug("agent: passthrough refused an HTTP/1.1 request: {}", error.reason);
        const PlaintextFailure failure{error.status, error.reason, parse_failure_message(error.status)};
        co_return co_await send_failure(failure, false);
      }
    }
  }
}

// Runs once the head is in; keep_alive means "go on reading the request body".
asio::awaitable<PlaintextH1Connection::Outcome> PlaintextH1Connection::on_head() {
  const ParsedRequest& request = parser_.request();
  head_only_ = request.method == "HEAD";
  if (auto failure = check_request_target(request.path)) {
    logger_->debug("agent: passthrough refused the path of {} {}", request.method, request.path);
    co_return co_await send_failure(*failure, false);
  }
  // RFC 9110 §10.1.1: the client waits (a while) for this before it sends the body.
  const Http1HeadInfo& info = parser_.head();
  if (info.expect_continue && info.has_body() && pending().empty()) {
    if (!co_await write("HTTP/1.1 100 Continue\r\n\r\n")) co_return Outcome::close;
  }
  co_return Outcome::keep_alive;
}

asio::awaitable<PlaintextH1Connection::Outcome> PlaintextH1Connection::serve_websocket_upgrade() {
  const ParsedRequest& request = parser_.request();
  head_only_ = false;
  if (auto failure = check_request_target(request.path)) {
    logger_->debug("agent: passthrough refused the path of a WebSocket upgrade {}", request.path);
    co_return co_await send_failure(*failure, false);
  }
  std::string_view key;
  std::string_view version;
  for (const auto& field : request.headers) {
    if (field.name == "sec-websocket-key") key = field.value;
    if (field.name == "sec-websocket-version") version = field.value;
  }
  // RFC 6455 §4.2.1; a GET upgrade carries no body, and one that does is not forwarded.
  if (request.method != "GET" || parser_.head().has_body() || !proto::is_valid_websocket_key(key) || version != "13") {
    const PlaintextFailure failure{400, "bad-websocket-handshake", "bad WebSocket handshake\n"};
    co_return co_await send_failure(failure, false);
  }
  const UpstreamWebSocketRequest upstream_request = websocket_request(request, settings_);
  const auto deadline = std::chrono::steady_clock::now() + settings_.response_deadline;
  auto handshake =
      co_await upstream_websocket_handshake(forwarder_.dialer(), random_, upstream_request, deadline, logger_);
  if (!handshake) co_return co_await relay_websocket_refusal(handshake.error());
  UpstreamWebSocketAccepted& accepted = *handshake;
  std::string out;
  out.reserve(512);
  append_status_line(out, 101);
  append_field(out, "upgrade", "websocket");
  append_field(out, "connection", "Upgrade");
  append_field(out, "sec-websocket-accept", proto::websocket_accept_value(key));
  for (const auto& field : accepted.headers) append_field(out, field.name, field.value);
  out += "\r\n";
  if (!co_await write(out)) co_return Outcome::close;
  // Bytes the client sent behind its head are its first frames.
  const std::string client_first(pending());
  in_.clear();
  in_off_ = 0;
  const SpliceLimits limits = websocket_splice_limits(settings_);
  const SpliceResult result =
      co_await splice_bytes(stream_, client_first, accepted.upstream->stream(), accepted.leftover, limits);
  logger_->debug("agent: passthrough WebSocket {} ended: {} bytes in, {} bytes out{}", request.path, result.a_to_b,
                 result.b_to_a, result.timed_out ? " (timed out)" : "");
  closed_ = true;  // the splice closed the stream
  co_return Outcome::close;
}

// The upstream's own answer (status, fields, body when it was read whole), or our refusal.
asio::awaitable<PlaintextH1Connection::Outcome> PlaintextH1Connection::relay_websocket_refusal(
    const UpstreamWebSocketRefusal& refusal) {
  const PlaintextFailure failure = websocket_refusal(refusal);
  const bool keep = parser_.head().persistent;
  if (refusal.reason != "ws-upstream-refused") co_return co_await send_failure(failure, keep);
  std::string out;
  out.reserve(512);
  append_status_line(out, refusal.status);
  for (const auto& field : refusal.headers) append_field(out, field.name, field.value);
  const std::string_view body = refusal.body ? std::string_view(*refusal.body) : std::string_view();
  if (proto::response_has_body("GET", refusal.status)) append_field(out, "content-length", std::to_string(body.size()));
  if (!keep) append_field(out, "connection", "close");
  out += "\r\n";
  if (proto::response_has_body("GET", refusal.status)) out += body;
  const bool ok = co_await write(out);
  co_return ok && keep ? Outcome::keep_alive : Outcome::close;
}

asio::awaitable<PlaintextH1Connection::Outcome> PlaintextH1Connection::forward() {
  auto started = co_await forward_request(parser_.request(), settings_, forwarder_, logger_);
  if (!started) {
    // The request was read whole, so the connection stays usable after the refusal.
    const PlaintextFailure failure = started.error();
    co_return co_await send_failure(failure, parser_.head().persistent);
  }
  std::unique_ptr<UpstreamExchange> exchange = std::move(*started);
  co_return co_await send_response(*exchange);
}

asio::awaitable<PlaintextH1Connection::Outcome> PlaintextH1Connection::send_response(UpstreamExchange& exchange) {
  const UpstreamResponseHead& head = exchange.head();
  const Http1HeadInfo& info = parser_.head();
  const bool has_body = proto::response_has_body(parser_.request().method, head.status);
  // Unknown length: chunked for HTTP/1.1 clients, the end of the connection for HTTP/1.0 ones.
  const bool chunked = has_body && !head.content_length && !info.http10;
  const bool close_delimited = has_body && !head.content_length && info.http10;
  const bool keep = info.persistent && !close_delimited;
  std::string out;
  out.reserve(512);
  append_status_line(out, head.status);
  for (const auto& field : head.headers) append_field(out, field.name, field.value);
  if (has_body && head.content_length) {
    append_field(out, "content-length", std::to_string(*head.content_length));
  } else if (chunked) {
    append_field(out, "transfer-encoding", "chunked");
  }
  if (!keep) {
    append_field(out, "connection", "close");
  } else if (info.http10) {
    append_field(out, "connection", "keep-alive");
  }
  out += "\r\n";
  if (!has_body) {
    const bool ok = co_await write(out);
    // A body the upstream sent anyway (it should not) was never read: that connection is dropped
    // by the exchange, ours stays fine.
    co_return ok && keep ? Outcome::keep_alive : Outcome::close;
  }
  const bool small = head.content_length && *head.content_length <= kBodyChunk;
  if (!small) {
    if (!co_await write(out)) co_return Outcome::close;
    out.clear();
  }
  std::uint64_t sent = 0;
  bool complete = false;
  for (;;) {
    auto piece = co_await exchange.read_body(kBodyChunk);
    if (!piece) {
      logger_->info("agent: passthrough {} {}: {}", parser_.request().method, parser_.request().path, piece.error());
      break;
    }
    if (piece->empty()) {
      complete = true;
      break;
    }
    sent += piece->size();
    if (sent > settings_.max_outbound_body_bytes) {
      // The head is out: all that is left is to cut the response short, which the client sees.
      logger_->info("agent: passthrough {} {}: response body over {} bytes", parser_.request().method,
                    parser_.request().path, settings_.max_outbound_body_bytes);
      break;
    }
    if (chunked) {
      char size_line[24];
      const int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", piece->size());
      out.append(size_line, static_cast<std::size_t>(n));
      out += *piece;
      out += "\r\n";
    } else {
      out += *piece;
    }
    // The last piece goes out together with the chunked terminator.
    if (exchange.finished()) {
      complete = true;
      break;
    }
    if (!co_await write(out)) co_return Outcome::close;
    out.clear();
  }
  if (complete && chunked) out += "0\r\n\r\n";
  if (complete && head.content_length && sent != *head.content_length) complete = false;
  if (!complete) out.clear();  // a partial piece or terminator would pretend the body ended well
  if (!out.empty() && !co_await write(out)) co_return Outcome::close;
  co_return complete && keep ? Outcome::keep_alive : Outcome::close;
}

asio::awaitable<PlaintextH1Connection::Outcome> PlaintextH1Connection::send_failure(const PlaintextFailure& failure,
                                                                                   bool keep_alive) {
  std::string out;
  append_status_line(out, failure.status);
  append_field(out, "content-type", "text/plain; charset=utf-8");
  append_field(out, "content-length", std::to_string(failure.message.size()));
  if (!keep_alive) append_field(out, "connection", "close");
  out += "\r\n";
  if (!head_only_) out += failure.message;
  const bool ok = co_await write(out);
  co_return ok && keep_alive ? Outcome::keep_alive : Outcome::close;
}

asio::awaitable<bool> PlaintextH1Connection::read_more() {
  if (closed_) co_return false;
  // Read into a scratch buffer, then append only what came (no zero-fill of `in_` per read).
  if (!read_buffer_) read_buffer_ = std::make_unique_for_overwrite<std::uint8_t[]>(kReadChunk);
  auto [ec, n] = co_await stream_.read_some(std::span<std::uint8_t>(read_buffer_.get(), kReadChunk));
  if (ec || n == 0) co_return false;
  in_.append(reinterpret_cast<const char*>(read_buffer_.get()), n);
  co_return true;
}

asio::awaitable<bool> PlaintextH1Connection::write(std::string_view bytes) {
  if (closed_) co_return false;
  // A client that does not take our bytes is bounded like an idle one.
  const auto saved = watchdog_.deadline();
  watchdog_.set_after(settings_.idle_timeout);
  const auto ec = co_await stream_.write_all(bytes);
  watchdog_.set_at(saved);
  if (ec) {
    closed_ = true;
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> PlaintextH1Connection::lingering_close() {
  if (!closed_ && stream_.is_open()) {
    stream_.finish_sending();
    watchdog_.set_after(kLingerTime);
    std::size_t drained = 0;
    while (!closed_ && drained < kMaxLingerBytes) {
      if (!read_buffer_) read_buffer_ = std::make_unique_for_overwrite<std::uint8_t[]>(kReadChunk);
      auto [ec, n] = co_await stream_.read_some(std::span<std::uint8_t>(read_buffer_.get(), kReadChunk));
      if (ec) break;
      drained += n;
    }
  }
  watchdog_.clear();
  stream_.close();
}

}  // namespace inkwire::agent
