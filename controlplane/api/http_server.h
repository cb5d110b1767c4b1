#pragma once
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <boost/beast/core/tcp_stream.hpp>
#include <mutex>
#include <unordered_map>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>

#include "common/config.h"
#include "common/expected.h"
#include "common/logging.h"
#include "controlplane/api/router.h"

namespace inkwire::controlplane {

// An HTTP/1.1 server (Boost.Beast) with one coroutine per connection. Every limit comes from
// ApiConfig and is counted: header bytes (431), body bytes (413), time to read a request, keep-alive
// idle time, concurrent connections. Errors in a handler become 500 with a JSON detail.
class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, const ApiConfig& config, const Router& router,
             prometheus::Registry& registry, Logger logger, std::string name);

  // Binds the listener ("host:port"; port 0 picks a free one). Error: one line.
  Expected<Unit, std::string> listen(const std::string& address);
  unsigned short port() const { return port_; }

  // Accepts until stop(); call after listen().
  void start();
  // Graceful: stops accepting, closes idle keep-alive connections, and lets busy ones close after
  // their current response.
  void stop();
  // Forced: closes every connection now (after the grace period). Coroutines then end by themselves,
  // so the io_context runs out of work instead of being stopped with frames still suspended.
  void close_all();
  int active_connections() const { return active_.load(); }

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> serve_connection(boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<HttpResponse> dispatch(const HttpRequest& request, const std::string& source_ip,
                                                std::string& route_label);

  struct Connection {
    std::weak_ptr<boost::beast::tcp_stream> stream;
    bool idle = true;  // waiting for the next request
  };
  void close_connections(bool only_idle);
  void set_idle(std::uint64_t id, bool idle);

  boost::asio::io_context& io_;
  const ApiConfig& config_;
  const Router& router_;
  Logger logger_;
  std::string name_;
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<int> active_{0};
  std::atomic<bool> stopping_{false};
  std::mutex connections_mutex_;
  std::uint64_t next_connection_id_ = 0;
  std::unordered_map<std::uint64_t, Connection> live_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Gauge& connections_;
  prometheus::Family<prometheus::Counter>& rejected_;
};

// {"detail": "..."} with the given status.
HttpResponse json_error(const HttpRequest& request, int status, std::string_view detail);
// A JSON body with the given status.
HttpResponse json_response(const HttpRequest& request, int status, std::string body);

}  // namespace inkwire::controlplane
