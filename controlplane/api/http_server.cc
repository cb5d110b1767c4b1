#include "controlplane/api/http_server.h"

#include "common/listen_address.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>

namespace inkwire::controlplane {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

// Built once: Family::Add takes the boundaries on every call, and a braced list there allocated a
// vector per request.
const prometheus::Histogram::BucketBoundaries kLatencyBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                              0.1,    0.25,  0.5,    1,     2.5,  10};

std::string status_class(unsigned status) { return std::to_string(status); }

}  // namespace

HttpResponse json_response(const HttpRequest& request, int status, std::string body) {
  HttpResponse res{static_cast<http::status>(status), request.version()};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  res.keep_alive(request.keep_alive());
  res.prepare_payload();
  return res;
}

HttpResponse json_error(const HttpRequest& request, int status, std::string_view detail) {
  boost::json::object o;
  o["detail"] = detail;
  return json_response(request, status, boost::json::serialize(o));
}

HttpServer::HttpServer(asio::io_context& io, const ApiConfig& config, const Router& router,
                       prometheus::Registry& registry, Logger logger, std::string name)
    : io_(io),
      config_(config),
      router_(router),
      logger_(std::move(logger)),
      name_(std::move(name)),
      acceptor_(io),
      requests_(prometheus::BuildCounter()
                    .Name("inkwire_http_requests_total")
                    .Help("HTTP requests by listener, route template, method and status")
                    .Register(registry)),
      latency_(prometheus::BuildHistogram()
                   .Name("inkwire_http_request_duration_seconds")
                   .Help("Time from a request's last byte to its response's last byte, by route")
                   .Register(registry)),
      connections_(prometheus::BuildGauge()
                       .Name("inkwire_http_connections")
                       .Help("Open HTTP connections")
                       .Register(registry)
                       .Add({{"listener", name_}})),
      rejected_(prometheus::BuildCounter()
                    .Name("inkwire_http_rejected_total")
                    .Help("Connections or requests refused by a limit (reason: connections, header_size, "
                          "body_size, timeout, bad_request)")
                    .Register(registry)) {}

Expected<Unit, std::string> HttpServer::listen(const std::string& address) {
  auto ep = parse_listen_address(address);
  if (!ep) return unexpected(ep.error());
  boost::system::error_code ec;
  acceptor_.open(ep->protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(*ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unexpected("cannot listen on " + address + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  return Unit{};
}

void HttpServer::start() { asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached); }

void HttpServer::stop() {
  stopping_ = true;
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
  close_connections(true);
}

void HttpServer::close_all() { close_connections(false); }

void HttpServer::close_connections(bool only_idle) {
  std::lock_guard lock(connections_mutex_);
  for (auto& [id, c] : live_) {
    if (only_idle && !c.idle) continue;
    if (auto stream = c.stream.lock()) {
      // The stream belongs to its connection's strand: close it there.
      asio::post(stream->get_executor(), [weak = c.stream] {
        if (auto s = weak.lock()) {
          boost::system::error_code ec;
          s->socket().shutdown(tcp::socket::shutdown_both, ec);
          s->socket().close(ec);
        }
      });
    }
  }
}

void HttpServer::set_idle(std::uint64_t id, bool idle) {
  std::lock_guard lock(connections_mutex_);
  if (auto it = live_.find(id); it != live_.end()) it->second.idle = idle;
}

asio::awaitable<void> HttpServer::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(io_), kAsTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) co_return;
      logger_->warn("{}: accept failed: {}", name_, ec.message());
      continue;  // e.g. EMFILE: keep serving the connections we have
    }
    if (active_.load() >= config_.max_connections) {
      rejected_.Add({{"listener", name_}, {"reason", "connections"}}).Increment();
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    auto executor = socket.get_executor();
    asio::co_spawn(executor, serve_connection(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> HttpServer::serve_connection(tcp::socket socket) {
  boost::system::error_code ec;
  std::string source_ip = socket.remote_endpoint(ec).address().to_string();
  auto stream_ptr = std::make_shared<beast::tcp_stream>(std::move(socket));
  beast::tcp_stream& stream = *stream_ptr;
  std::uint64_t connection_id = 0;
  {
    std::lock_guard lock(connections_mutex_);
    connection_id = ++next_connection_id_;
    live_.emplace(connection_id, Connection{stream_ptr, true});
  }
  ++active_;
  connections_.Increment();
  struct Leave {
    HttpServer& s;
    std::uint64_t id;
    ~Leave() {
      {
        std::lock_guard lock(s.connections_mutex_);
        s.live_.erase(id);
      }
      --s.active_;
      s.connections_.Decrement();
    }
  } leave{*this, connection_id};
  beast::flat_buffer buffer(config_.max_header_bytes + 4096);
  bool first = true;

  while (!stopping_) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(config_.max_header_bytes));
    parser.body_limit(config_.max_body_bytes);
    stream.expires_after(std::chrono::seconds(first ? config_.read_timeout_seconds : config_.idle_timeout_seconds));
    first = false;
    set_idle(connection_id, true);
    if (stopping_) break;  // stop() ran between requests
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, kAsTuple);
    set_idle(connection_id, false);
    std::optional<std::pair<int, std::string>> refusal;
    if (!hec) {
      const auto& req = parser.get();
      stream.expires_after(std::chrono::seconds(config_.read_timeout_seconds));
      if (auto len = parser.content_length(); len && *len > config_.max_body_bytes) {
        refusal = {413, "request body larger than " + std::to_string(config_.max_body_bytes) + " bytes"};
      } else {
        if (beast::iequals(req[http::field::expect], "100-continue")) {
          http::response<http::empty_body> cont{http::status::continue_, req.version()};
          auto [wec, wn] = co_await http::async_write(stream, cont, kAsTuple);
          if (wec) co_return;
        }
        auto [bec, bn] = co_await http::async_read(stream, buffer, parser, kAsTuple);
        hec = bec;
      }
    }
    if (hec && !refusal) {
      if (hec == http::error::end_of_stream || hec == beast::error::timeout || hec == asio::error::eof ||
          hec == asio::error::connection_reset || hec == asio::error::operation_aborted ||
          hec == asio::error::bad_descriptor) {
        if (hec == beast::error::timeout && hn > 0) rejected_.Add({{"listener", name_}, {"reason", "timeout"}}).Increment();
        co_return;
      }
      if (hec == http::error::header_limit) {
        refusal = {431, "request header fields too large"};
      } else if (hec == http::error::body_limit) {
        refusal = {413, "request body larger than " + std::to_string(config_.max_body_bytes) + " bytes"};
      } else {
        refusal = {400, "malformed HTTP request"};
      }
    }
    if (refusal) {
      rejected_
          .Add({{"listener", name_},
                {"reason", refusal->first == 431 ? "header_size" : refusal->first == 413 ? "body_size" : "bad_request"}})
          .Increment();
      HttpRequest bare;
      bare.version(11);
      auto res = json_error(bare, refusal->first, refusal->second);
      res.keep_alive(false);
      stream.expires_after(std::chrono::seconds(5));
      co_await http::async_write(stream, res, kAsTuple);
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }

    const HttpRequest& request = parser.get();
    const auto started = std::chrono::steady_clock::now();
    std::string route_label;
    HttpResponse response = co_await dispatch(request, source_ip, route_label);
    if (stopping_) response.keep_alive(false);
    const auto status = response.result_int();
    stream.expires_after(std::chrono::seconds(config_.read_timeout_seconds));
    auto [wec, wn] = co_await http::async_write(stream, response, kAsTuple);
    requests_
        .Add({{"listener", name_},
              {"route", route_label},
              {"method", std::string(http::to_string(request.method()))},
              {"status", status_class(status)}})
        .Increment();
    latency_
        .Add({{"listener", name_}, {"route", route_label}}, kLatencyBuckets)
        .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if (wec || !response.keep_alive()) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<HttpResponse> HttpServer::dispatch(const HttpRequest& request, const std::string& source_ip,
                                                   std::string& route_label) {
  const std::string_view target = request.target();
  const auto q = target.find('?');
  const std::string_view path = target.substr(0, q);
  auto m = router_.match(request.method(), path);
  if (!m.route) {
    route_label = m.path_known ? "method_not_allowed" : "not_found";
    auto res = json_error(request, m.path_known ? 405 : 404, m.path_known ? "method not allowed" : "not found");
    if (m.path_known) res.set(http::field::allow, m.allowed);  // RFC 9110 §15.5.6
    co_return res;
  }
  route_label = m.route->path_template;
  RequestContext ctx{request, std::move(m.params), q == std::string_view::npos ? "" : std::string(target.substr(q + 1)),
                     source_ip};
  try {
    co_return co_await m.route->handler(ctx);
  } catch (const std::exception& e) {
    // Handlers report expected failures as values; reaching here is a bug, logged with the route.
    logger_->error("{}: handler {} {} failed: {}", name_, http::to_string(request.method()), route_label, e.what());
  }
  co_return json_error(request, 500, "internal error");
}

}  // namespace inkwire::controlplane
