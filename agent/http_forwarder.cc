#include "agent/http_forwarder.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <charconv>

#include "agent/upstream_request_builder.h"

namespace inkwire::agent {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxResponseHead = 64 * 1024;
// A body may take long as a whole (a large transfer); what is bounded is a stall.
constexpr auto kStallTimeout = std::chrono::seconds(30);

void append_hex(std::string& out, std::size_t value) {
  char digits[20];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value, 16);
  out.append(digits, end);
}

}  // namespace

class UpstreamConnection {
 public:
  explicit UpstreamConnection(std::unique_ptr<UpstreamSocket> s) : socket(std::move(s)) {}
  std::unique_ptr<UpstreamSocket> socket;
  std::string in;  // read, not yet given to the parser: in[in_off, size)
  std::size_t in_off = 0;
  std::optional<http::response_parser<http::buffer_body>> parser;
  bool reused = false;
  bool keep_alive = true;

  ByteStream& stream() { return socket->stream(); }
  // Reads at least one more byte into `in`; false at EOF or on an error (`error` says which).
  asio::awaitable<bool> read_more(boost::system::error_code& error) {
    if (in_off == in.size()) {
      in.clear();
      in_off = 0;
    }
    const std::size_t old = in.size();
    in.resize(old + kReadChunk);
    auto [ec, n] = co_await stream().read_some(
        std::span(reinterpret_cast<std::uint8_t*>(in.data()) + old, kReadChunk));
    in.resize(old + (ec ? 0 : n));
    error = ec;
    co_return !ec;
  }
};

HttpForwarder::HttpForwarder(asio::any_io_executor executor, proto::ForwardTarget target, Logger logger,
                             std::size_t max_idle_connections)
    : logger_(std::move(logger)), max_idle_(max_idle_connections) {
  auto dialer = UpstreamDialer::create(std::move(executor), std::move(target), UpstreamTlsOptions{});
  // Only a CA bundle can fail to load, and none is given here.
  dialer_ = std::move(*dialer);
}

HttpForwarder::HttpForwarder(std::unique_ptr<UpstreamDialer> dialer, Logger logger, std::size_t max_idle_connections)
    : dialer_(std::move(dialer)), logger_(std::move(logger)), max_idle_(max_idle_connections) {}

HttpForwarder::~HttpForwarder() = default;

void HttpForwarder::release(std::unique_ptr<UpstreamConnection> connection) {
  if (!connection || !connection->keep_alive || idle_.size() >= max_idle_) return;
  if (connection->in_off != connection->in.size()) return;  // bytes after the response: not HTTP we trust
  connection->parser.reset();
  connection->reused = true;
  connection->socket->expires_at(SteadyClock::time_point::max());
  idle_.push_back(std::move(connection));
}

asio::awaitable<boost::system::error_code> HttpForwarder::write_body(UpstreamConnection& connection,
                                                                     const UpstreamRequest& request) {
  ByteStream& source = *request.body_stream;
  const bool chunked = !request.body_length;
  std::uint64_t sent = 0;
  auto buffer = std::make_unique_for_overwrite<std::uint8_t[]>(kReadChunk);
  std::string framed;
  for (;;) {
    auto [ec, n] = co_await source.read_some(std::span(buffer.get(), kReadChunk));
    if (ec == asio::error::eof) break;
    if (ec) co_return ec;
    sent += n;
    if (!chunked && sent > *request.body_length) co_return make_error_code(http::error::body_limit);
    connection.socket->expires_after(kStallTimeout);
    const std::string_view piece(reinterpret_cast<const char*>(buffer.get()), n);
    if (chunked) {
      framed.clear();
      append_hex(framed, n);
      framed += "\r\n";
      framed += piece;
      framed += "\r\n";
      if (auto wec = co_await connection.stream().write_all(framed)) co_return wec;
    } else if (auto wec = co_await connection.stream().write_all(piece)) {
      co_return wec;
    }
  }
  if (!chunked && sent != *request.body_length) co_return make_error_code(http::error::partial_message);
  if (chunked) {
    const std::string_view last = "0\r\n\r\n";
    if (auto wec = co_await connection.stream().write_all(last)) co_return wec;
  }
  co_return boost::system::error_code{};
}

asio::awaitable<Expected<std::unique_ptr<UpstreamExchange>, std::string>> HttpForwarder::start(
    const UpstreamRequest& request, std::chrono::steady_clock::time_point deadline) {
  std::string head;
  head.reserve(512);
  head += request.method;
  head += ' ';
  head += request.target;
  head += " HTTP/1.1\r\n";
  for (const auto& field : request.headers) {
    head += field.name;
    head += ": ";
    head += field.value;
    head += "\r\n";
  }
  const bool streamed = request.body_stream != nullptr;
  if (streamed) {
    head += request.body_length ? "Content-Length: " + std::to_string(*request.body_length) + "\r\n"
                                : std::string("Transfer-Encoding: chunked\r\n");
  } else if (request.send_body && !request.body.empty()) {
    head += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
  }
  head += "\r\n";
  // A small buffered body goes out with the head, in one write.
  if (!streamed && request.send_body) head += request.body;

  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<UpstreamConnection> connection;
    while (!idle_.empty() && !connection) {
      connection = std::move(idle_.back());
      idle_.pop_back();
      if (connection->socket->closed_by_peer()) connection.reset();
    }
    if (!connection) {
      auto opened = co_await dialer_->dial(deadline);
      if (!opened) co_return unexpected(opened.error());
      connection = std::make_unique<UpstreamConnection>(std::move(*opened));
    }
    connection->socket->expires_at(deadline);
    boost::system::error_code ec = co_await connection->stream().write_all(head);
    // A streamed body can be read only once: after its first byte there is no second attempt.
    const bool replayable = !ec || !streamed;
    if (!ec && streamed) ec = co_await write_body(*connection, request);
    if (!ec) {
      connection->socket->expires_at(deadline);
      connection->parser.emplace();
      auto& parser = *connection->parser;
      parser.body_limit(boost::none);
      parser.header_limit(kMaxResponseHead);
      parser.eager(false);
      if (request.method == "HEAD") parser.skip(true);
      while (!parser.is_header_done()) {
        if (connection->in_off < connection->in.size()) {
          boost::beast::error_code pec;
          connection->in_off += parser.put(
              asio::buffer(connection->in.data() + connection->in_off, connection->in.size() - connection->in_off), pec);
          if (pec == http::error::need_more) pec = {};
          if (pec) {
            ec = pec;
            break;
          }
          // 1xx interim answers (100 Continue) are skipped: the final status follows.
          if (parser.is_header_done() && parser.get().result_int() / 100 == 1 && parser.get().result_int() != 101) {
            connection->parser.emplace();
            connection->parser->body_limit(boost::none);
            connection->parser->header_limit(kMaxResponseHead);
            connection->parser->eager(false);
            if (request.method == "HEAD") connection->parser->skip(true);
            continue;
          }
          if (parser.is_header_done()) break;
        }
        if (!co_await connection->read_more(ec)) break;
      }
    }
    if (ec) {
      // A pooled connection the upstream closed while it sat idle: one fresh attempt.
      const bool stale = connection->reused && replayable &&
                         (ec == http::error::end_of_stream || ec == asio::error::eof ||
                          ec == asio::error::connection_reset || ec == asio::error::broken_pipe);
      if (stale && attempt == 0 && !connection->socket->timed_out()) continue;
      if (connection->socket->timed_out()) co_return unexpected(std::string("upstream timed out"));
      if (ec == asio::error::eof) co_return unexpected(std::string("upstream closed the connection without answering"));
      co_return unexpected("upstream failed: " + ec.message());
    }
    auto& parser = *connection->parser;
    const auto& response = parser.get();
    UpstreamResponseHead response_head;
    response_head.status = static_cast<int>(response.result_int());
    response_head.headers.reserve(16);
    for (const auto& field : response) {
      std::string name = proto::lowercase_ascii(field.name_string());
      if (is_unposted_response_header(name)) continue;
      response_head.headers.push_back({std::move(name), std::string(field.value())});
    }
    if (auto length = parser.content_length()) response_head.content_length = *length;
    connection->keep_alive = parser.keep_alive();
    response_head.has_body = !parser.is_done();
    if (!response_head.has_body) response_head.content_length = 0;
    co_return std::make_unique<UpstreamExchange>(*this, std::move(connection), std::move(response_head));
  }
  co_return unexpected(std::string("upstream failed"));
}

UpstreamExchange::UpstreamExchange(HttpForwarder& owner, std::unique_ptr<UpstreamConnection> connection,
                                   UpstreamResponseHead head)
    : owner_(owner), connection_(std::move(connection)), head_(std::move(head)) {
  done_ = !head_.has_body;
}

UpstreamExchange::~UpstreamExchange() {
  if (done_ && !failed_) owner_.release(std::move(connection_));
}

asio::awaitable<Expected<std::string, std::string>> UpstreamExchange::read_body(std::size_t max_bytes) {
  if (done_) co_return std::string();
  auto& parser = *connection_->parser;
  parser.eager(true);
  // Not zero-filled per read (a 64 KiB memset showed in profiles); only what arrives is copied out.
  if (!scratch_ || scratch_size_ < max_bytes) {
    scratch_ = std::make_unique_for_overwrite<char[]>(max_bytes);
    scratch_size_ = max_bytes;
  }
  for (;;) {
    boost::system::error_code ec;
    if (connection_->in_off < connection_->in.size()) {
      parser.get().body().data = scratch_.get();
      parser.get().body().size = max_bytes;
      boost::beast::error_code pec;
      const std::size_t used = parser.put(
          asio::buffer(connection_->in.data() + connection_->in_off, connection_->in.size() - connection_->in_off), pec);
      connection_->in_off += used;
      if (pec == http::error::need_buffer || pec == http::error::need_more) pec = {};
      const std::size_t produced = max_bytes - parser.get().body().size;
      if (pec) {
        failed_ = done_ = true;
        co_return unexpected("upstream sent a malformed body: " + pec.message());
      }
      if (parser.is_done()) done_ = true;
      if (produced > 0 || done_) co_return std::string(scratch_.get(), produced);
      if (used > 0) continue;
    }
    connection_->socket->expires_after(kStallTimeout);
    if (!co_await connection_->read_more(ec)) {
      if (ec == asio::error::eof && parser.need_eof()) {
        // A body delimited by the connection's end (no length, not chunked): EOF finishes it.
        boost::beast::error_code pec;
        parser.put_eof(pec);
        failed_ = true;  // the connection is gone: never pooled
        done_ = true;
        if (pec) co_return unexpected("upstream failed mid-body: " + pec.message());
        co_return std::string();
      }
      failed_ = done_ = true;
      co_return unexpected(connection_->socket->timed_out() ? std::string("upstream timed out")
                                                            : "upstream failed mid-body: " + ec.message());
    }
  }
}

}  // namespace inkwire::agent
