#pragma once
// The edge role, assembled: the shared TLS listener (§8 A31) that routes each connection by the
// SNI of its ClientHello — to the relay (agents), to a passthrough agent (raw TLS bytes), or to
// TLS termination with the zone certificate and HTTP/1.1 or HTTP/2 (ALPN) — and the plain-HTTP
// listener (308 to HTTPS, or tunnels served in the clear when configured).
//
// Threading: the edge runs on the relay's executor, so requests reach the relay's seam without a
// hop between threads. Per-IP and total connection limits are enforced at accept.
#include <prometheus/registry.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "common/config.h"
#include "common/expected.h"
#include "common/logging.h"
#include "edge/certificate_store.h"
#include "edge/edge_context.h"
#include "edge/edge_metrics.h"
#include "edge/public_connection.h"
#include "edge/public_route_directory.h"
#include "relay/relay.h"

namespace inkwire::edge {

class Edge {
 public:
  Edge(const Config& config, relay::Relay& relay, const Clock& clock, prometheus::Registry& registry, Logger logger);
  ~Edge();

  // Loads the certificate, binds edge.listen (and edge.http_listen) on the relay's io_context.
  // Call after Relay::start. Error: one line.
  Expected<Unit, std::string> start(boost::asio::io_context& io);
  unsigned short https_port() const { return https_port_; }
  unsigned short http_port() const { return http_port_; }

  // SIGHUP: reload the certificate now (on the executor).
  void reload_certificates();
  // Graceful: stop accepting; HTTP/1.1 connections close after their current request, HTTP/2 ones
  // get GOAWAY; passthrough relays run on until forced.
  void begin_drain();
  void close_all();
  std::size_t open_connections() const { return connections_.size(); }
  EdgeMetrics& metrics() { return *metrics_; }

 private:
  boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor, bool tls);
  boost::asio::awaitable<void> serve_tls(boost::asio::ip::tcp::socket socket, std::string ip);
  boost::asio::awaitable<void> serve_plain(boost::asio::ip::tcp::socket socket, std::string ip);
  boost::asio::awaitable<void> terminate_tls(boost::asio::ip::tcp::socket socket, std::string ip, std::string sni);
  boost::asio::awaitable<void> watch_certificates();
  // Runs a connection, known to drain()/close_all() meanwhile. Callers pass a named
  // shared_ptr<PublicConnection>: GCC 12 destroys a prvalue coroutine argument twice (PR 100611).
  boost::asio::awaitable<void> hold(std::shared_ptr<PublicConnection> connection);
  void refuse_outside_zone(boost::asio::ip::tcp::socket& socket);
  void release(const std::string& ip);

  const Config& config_;
  relay::Relay& relay_;
  Logger logger_;
  std::unique_ptr<EdgeMetrics> metrics_;
  std::unique_ptr<PublicRouteDirectory> directory_;
  std::unique_ptr<CertificateStore> certificates_;
  std::unique_ptr<EdgeContext> context_;
  std::optional<boost::asio::ip::tcp::acceptor> https_;
  std::optional<boost::asio::ip::tcp::acceptor> http_;
  std::optional<boost::asio::steady_timer> cert_timer_;
  boost::asio::any_io_executor executor_;
  unsigned short https_port_ = 0;
  unsigned short http_port_ = 0;
  bool accepting_ = false;
  std::size_t admitted_ = 0;  // connections counted against the limits (agents leave at hand-off)
  std::unordered_map<std::string, int> per_ip_;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, std::weak_ptr<PublicConnection>> connections_;
};

}  // namespace inkwire::edge
