#include "agent/http_exchange.h"

#include <boost/asio/error.hpp>
#include <charconv>
#include <cstring>

#include "agent/upstream_request_builder.h"
#include "proto/forward_target.h"
#include "proto/path_check.h"

namespace inkwire::agent {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {

// A body that ends within this many bytes is sent with a Content-Length, as the SDKs send every
// body (some small upstream servers do not take chunked requests); only a longer one, of unknown
// length, is streamed chunked.
constexpr std::size_t kBufferedBodyBytes = 256 * 1024;

std::optional<std::uint64_t> parse_length(const std::string* text) {
  if (!text || text->empty() || text->size() > 19) return std::nullopt;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size()) return std::nullopt;
  return value;
}

// The request body as the upstream reads it: the bytes already taken, then the rest of the
// intake stream, with the agent's inbound cap enforced on the way.
class CappedBody final : public ByteStream {
 public:
  CappedBody(std::string prefix, ByteStream& rest, std::uint64_t cap) : prefix_(std::move(prefix)), rest_(rest), cap_(cap) {}
  bool over_cap() const { return over_cap_; }
  std::uint64_t total() const { return total_; }

  asio::awaitable<std::pair<boost::system::error_code, std::size_t>> read_some(std::span<std::uint8_t> buffer) override {
    if (off_ < prefix_.size()) {
      const std::size_t n = std::min(buffer.size(), prefix_.size() - off_);
      std::memcpy(buffer.data(), prefix_.data() + off_, n);
      off_ += n;
      co_return std::pair{boost::system::error_code{}, n};
    }
    auto [ec, n] = co_await rest_.read_some(buffer);
    if (!ec) {
      total_ += n;
      if (total_ > cap_) {
        over_cap_ = true;
        co_return std::pair{boost::system::error_code(asio::error::message_size), std::size_t{0}};
      }
    }
    co_return std::pair{ec, n};
  }
  asio::awaitable<boost::system::error_code> write_all(std::string_view) override {
    co_return asio::error::operation_not_supported;
  }
  void finish_sending() override {}
  void close() override { rest_.close(); }
  bool is_open() const override { return rest_.is_open(); }

 private:
  std::string prefix_;
  std::size_t off_ = 0;
  ByteStream& rest_;
  std::uint64_t cap_;
  std::uint64_t total_ = 0;  // beyond the prefix, which was counted by the caller
  bool over_cap_ = false;
};

}  // namespace

asio::awaitable<ExchangeOutcome> forward_http(DataPlaneSession& session, HttpForwarder& forwarder, Envelope& envelope) {
  ExchangeOutcome outcome;
  const auto& settings = session.settings();
  const auto& logger = session.logger();
  if (proto::invalid_path_reason(envelope.path)) {
    co_await session.post_simple(envelope, 400, "invalid-path", "invalid path");
    outcome.status = 400;
    co_return outcome;
  }
  const auto announced = parse_length(envelope.header("content-length"));
  if (announced && *announced > settings.max_inbound_body_bytes) {
    co_await session.post_simple(envelope, 413, "request-body-too-large", "request body too large");
    outcome.status = 413;
    co_return outcome;
  }
  UpstreamRequest request = build_upstream_request(
      forwarder.target(), UpstreamRequestInput{.method = envelope.method,
                                               .path = envelope.path,
                                               .headers = envelope.forwarded,
                                               .body = {},
                                               .public_host = settings.public_host,
                                               .forwarded_for = envelope.forwarded_for});
  // The first part of the body: if it ends within kBufferedBodyBytes it goes out with a length.
  std::string prefix;
  bool body_complete = false;
  bool body_failed = false;
  if (request.send_body) {
    std::uint8_t chunk[16 * 1024];
    while (prefix.size() < kBufferedBodyBytes) {
      auto [ec, n] = co_await envelope.body->read_some(chunk);
      if (ec == asio::error::eof) {
        body_complete = true;
        break;
      }
      if (ec) {
        body_failed = true;
        break;
      }
      prefix.append(reinterpret_cast<const char*>(chunk), n);
      if (prefix.size() > settings.max_inbound_body_bytes) break;
    }
  }
  if (body_failed) {
    // The relay gave up on this request (the third party left): nobody waits for an answer.
    logger->info("agent: {} {}: the request body was cut off", envelope.method, envelope.path);
    co_return outcome;
  }
  if (prefix.size() > settings.max_inbound_body_bytes) {
    co_await session.post_simple(envelope, 413, "request-body-too-large", "request body too large");
    outcome.status = 413;
    co_return outcome;
  }
  outcome.bytes_in = prefix.size();
  std::optional<CappedBody> streamed_body;
  if (request.send_body && body_complete) {
    request.body = std::move(prefix);
  } else if (request.send_body) {
    const std::uint64_t room = settings.max_inbound_body_bytes - prefix.size();
    streamed_body.emplace(std::move(prefix), *envelope.body, room);
    request.body_stream = &*streamed_body;
    request.body_length = announced;
  }
  const auto deadline = session.response_deadline(envelope);
  auto started = co_await forwarder.start(request, deadline);
  if (streamed_body) outcome.bytes_in += streamed_body->total();
  if (!started) {
    if (streamed_body && streamed_body->over_cap()) {
      co_await session.post_simple(envelope, 413, "request-body-too-large", "request body too large");
      outcome.status = 413;
      co_return outcome;
    }
    const bool timed_out = started.error().find("timed out") != std::string::npos;
    logger->info("agent: {} {}: {}", envelope.method, envelope.path, started.error());
    if (timed_out) {
      co_await session.post_simple(envelope, 504, "response-deadline-exceeded", "response deadline exceeded");
      outcome.status = 504;
    } else {
      co_await session.post_simple(envelope, 502, "upstream-unreachable", "upstream unreachable");
      outcome.status = 502;
    }
    co_return outcome;
  }
  auto upstream = std::move(*started);
  const UpstreamResponseHead& head = upstream->head();
  if (head.content_length && *head.content_length > settings.max_outbound_body_bytes) {
    co_await session.post_simple(envelope, 502, "response-too-large", "response too large");
    outcome.status = 502;
    co_return outcome;
  }
  // Streamed toward our relay: the post announces the length when the upstream did, and the body
  // goes out as it arrives (the SDKs buffer it; the relay accepts both).
  const bool empty = !head.has_body || (head.content_length && *head.content_length == 0);
  const std::optional<std::uint64_t> post_length = empty ? std::optional<std::uint64_t>(0) : head.content_length;
  auto post = session.open_post(envelope, head.status, {}, head.headers, post_length, empty);
  outcome.status = head.status;
  if (!post || empty) co_return outcome;
  bool ok = true;
  for (;;) {
    auto piece = co_await upstream->read_body();
    if (!piece) {
      logger->info("agent: {} {}: {}", envelope.method, envelope.path, piece.error());
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
    // END_STREAM rides with the last DATA instead of an empty frame in a write of its own.
    if (upstream->finished()) break;
  }
  if (ok) {
    post->finish_sending();
  } else {
    post->close();  // RST_STREAM: the relay fails the third party's response instead of truncating it silently
  }
  co_return outcome;
}

}  // namespace inkwire::agent
