#include "agent/http_forwarder.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace inkwire::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// The response hop-by-hop set the SDKs remove before posting (§4.7), plus the framing fields the
// post states itself.
bool dropped_response_field(std::string_view lower) {
  static constexpr std::string_view kDropped[] = {"connection", "keep-alive", "transfer-encoding", "upgrade",
                                                  "proxy-authenticate", "proxy-authorization", "te", "trailer",
                                                  "content-length", "proxy-connection"};
  for (auto name : kDropped) {
    if (lower == name) return true;
  }
  return false;
}

}  // namespace

class UpstreamConnection {
 public:
  explicit UpstreamConnection(asio::any_io_executor executor) : stream(std::move(executor)) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::buffer_body>> parser;
  bool reused = false;
  bool keep_alive = true;
};

HttpForwarder::HttpForwarder(asio::any_io_executor executor, proto::ForwardTarget target, Logger logger,
                             std::size_t max_idle_connections)
    : executor_(std::move(executor)), target_(std::move(target)), logger_(std::move(logger)), max_idle_(max_idle_connections) {}

HttpForwarder::~HttpForwarder() = default;

void HttpForwarder::release(std::unique_ptr<UpstreamConnection> connection) {
  if (!connection || !connection->keep_alive || idle_.size() >= max_idle_) return;
  connection->parser.reset();
  connection->reused = true;
  connection->stream.expires_never();
  idle_.push_back(std::move(connection));
}

asio::awaitable<Expected<std::unique_ptr<UpstreamConnection>, std::string>> HttpForwarder::open(
    std::chrono::steady_clock::time_point deadline) {
  auto connection = std::make_unique<UpstreamConnection>(executor_);
  asio::ip::tcp::resolver resolver(executor_);
  const std::string port = target_.port_text.empty() ? (target_.scheme == "https" ? "443" : "80") : target_.port_text;
  auto [rec, endpoints] = co_await resolver.async_resolve(target_.host, port, asio::as_tuple(asio::use_awaitable));
  if (rec) co_return unexpected("cannot resolve " + target_.host + ": " + rec.message());
  connection->stream.expires_at(deadline);
  auto [cec, endpoint] = co_await connection->stream.async_connect(endpoints, asio::as_tuple(asio::use_awaitable));
  if (cec) co_return unexpected("cannot connect to " + target_.host + ":" + port + ": " + cec.message());
  boost::system::error_code ignored;
  connection->stream.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
  co_return connection;
}

asio::awaitable<Expected<std::unique_ptr<UpstreamExchange>, std::string>> HttpForwarder::start(
    const UpstreamRequest& request, std::chrono::steady_clock::time_point deadline) {
  if (target_.scheme != "http") co_return unexpected(std::string("https upstreams are not supported yet"));
  http::request<http::string_body> message;
  message.version(11);
  message.method_string(request.method);
  message.target(request.target);
  for (const auto& field : request.headers) message.insert(field.name, field.value);
  if (request.send_body && !request.body.empty()) {
    message.body() = request.body;
    message.content_length(request.body.size());
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<UpstreamConnection> connection;
    if (!idle_.empty()) {
      connection = std::move(idle_.back());
      idle_.pop_back();
    } else {
      auto opened = co_await open(deadline);
      if (!opened) co_return unexpected(opened.error());
      connection = std::move(*opened);
    }
    connection->stream.expires_at(deadline);
    auto [wec, written] = co_await http::async_write(connection->stream, message, asio::as_tuple(asio::use_awaitable));
    connection->parser.emplace();
    connection->parser->body_limit(boost::none);
    if (request.method == "HEAD") connection->parser->skip(true);
    boost::system::error_code rec;
    if (!wec) {
      auto [ec, n] = co_await http::async_read_header(connection->stream, connection->buffer, *connection->parser,
                                                      asio::as_tuple(asio::use_awaitable));
      rec = ec;
    }
    const auto ec = wec ? wec : rec;
    if (ec) {
      // A pooled connection the upstream closed while it sat idle: one fresh attempt.
      const bool stale = connection->reused && (ec == http::error::end_of_stream || ec == asio::error::eof ||
                                                ec == asio::error::connection_reset || ec == asio::error::broken_pipe);
      if (stale && attempt == 0) continue;
      if (ec == beast::error::timeout) co_return unexpected(std::string("upstream timed out"));
      co_return unexpected("upstream failed: " + ec.message());
    }
    const auto& response = connection->parser->get();
    UpstreamResponseHead head;
    head.status = static_cast<int>(response.result_int());
    head.headers.reserve(16);
    for (const auto& field : response) {
      std::string name = proto::lowercase_ascii(field.name_string());
      if (dropped_response_field(name)) continue;
      head.headers.push_back({std::move(name), std::string(field.value())});
    }
    if (auto length = connection->parser->content_length()) head.content_length = *length;
    connection->keep_alive = connection->parser->keep_alive();
    head.has_body = !connection->parser->is_done();
    if (!head.has_body) head.content_length = 0;
    co_return std::make_unique<UpstreamExchange>(*this, std::move(connection), std::move(head));
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
  // Not zero-filled (a 64 KiB memset per read showed in profiles); only what arrives is copied out.
  std::unique_ptr<char[]> scratch(new char[max_bytes]);
  auto& parser = *connection_->parser;
  for (;;) {
    // A body may take long as a whole (a large download); what is bounded is a stall.
    connection_->stream.expires_after(std::chrono::seconds(30));
    parser.get().body().data = scratch.get();
    parser.get().body().size = max_bytes;
    auto [ec, n] = co_await http::async_read(connection_->stream, connection_->buffer, parser,
                                             asio::as_tuple(asio::use_awaitable));
    if (ec && ec != http::error::need_buffer) {
      failed_ = true;
      done_ = true;
      co_return unexpected(ec == beast::error::timeout ? std::string("upstream timed out")
                                                      : "upstream failed mid-body: " + ec.message());
    }
    const std::size_t produced = max_bytes - parser.get().body().size;
    if (parser.is_done()) done_ = true;
    if (produced > 0 || done_) co_return std::string(scratch.get(), produced);
  }
}

}  // namespace inkwire::agent
