#include "edge/edge.h"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/listen_address.h"
#include "common/plain_stream.h"
#include "common/tls_socket.h"
#include "edge/client_hello_peek.h"
#include "edge/http1_connection.h"
#include "edge/http2_connection.h"
#include "edge/passthrough_connection.h"
#include "proto/sni_route.h"

namespace inkwire::edge {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

Expected<Unit, std::string> open_listener(asio::io_context& io, std::optional<asio::ip::tcp::acceptor>& acceptor,
                                          const std::string& address, unsigned short& port) {
  auto endpoint = parse_listen_address(address);
  if (!endpoint) return unexpected(endpoint.error());
  acceptor.emplace(io);
  boost::system::error_code ec;
  acceptor->open(endpoint->protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(*endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unexpected("cannot listen on " + address + ": " + ec.message());
  port = acceptor->local_endpoint().port();
  return Unit{};
}

// "This port speaks HTTPS": what nginx answers plain HTTP sent to its TLS port.
constexpr std::string_view kPlainHttpOnTlsPort =
    "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nx-inkwire-error: plain-http-on-https-port\r\n"
    "connection: close\r\ncontent-length: 45\r\n\r\nThis port speaks HTTPS; use an https:// URL.\n";

}  // namespace

Edge::Edge(const Config& config, relay::Relay& relay, const Clock& clock, prometheus::Registry& registry, Logger logger)
    : config_(config),
      relay_(relay),
      logger_(std::move(logger)),
      metrics_(std::make_unique<EdgeMetrics>(registry, config.edge.metrics_max_tunnels)),
      directory_(std::make_unique<PublicRouteDirectory>(relay.sessions_repository(), clock,
                                                        std::chrono::seconds(config.relay.directory_cache_seconds),
                                                        registry, logger_)) {}

Edge::~Edge() = default;

Expected<Unit, std::string> Edge::start(asio::io_context& io) {
  executor_ = io.get_executor();
  if (config_.tls.cert_file.empty() || config_.tls.key_file.empty()) {
    return unexpected("the edge role needs tls.cert_file and tls.key_file (the zone's certificate)");
  }
  certificates_ = std::make_unique<CertificateStore>(config_.tls.cert_file, config_.tls.key_file, *metrics_, logger_);
  certificates_->on_relay_context = [this](SslCtxPtr ctx) { relay_.replace_tls_context(std::move(ctx)); };
  if (auto loaded = certificates_->load(); !loaded) return unexpected(loaded.error());
  context_ = std::make_unique<EdgeContext>(
      EdgeContext{config_.edge, config_.zone, relay_.registry(), *directory_, *metrics_, logger_});
  relay_.set_event_observer(
      [this](const std::string& channel, const std::string& payload) { directory_->on_event(channel, payload); });

  if (auto opened = open_listener(io, https_, config_.edge.listen, https_port_); !opened) return opened;
  if (!config_.edge.http_listen.empty()) {
    if (auto opened = open_listener(io, http_, config_.edge.http_listen, http_port_); !opened) return opened;
  }
  accepting_ = true;
  asio::co_spawn(executor_, accept_loop(*https_, true), asio::detached);
  if (http_) asio::co_spawn(executor_, accept_loop(*http_, false), asio::detached);
  if (config_.edge.cert_check_seconds > 0) {
    cert_timer_.emplace(executor_);
    asio::co_spawn(executor_, watch_certificates(), asio::detached);
  }
  logger_->info("edge: TLS on {} (port {}), shared with the relay by SNI; plain HTTP {}", config_.edge.listen,
                https_port_,
                http_ ? config_.edge.http_listen + (config_.edge.serve_plain_http ? " (serving tunnels)" : " (308 to HTTPS)")
                      : std::string("off"));
  return Unit{};
}

void Edge::reload_certificates() {
  asio::post(executor_, [this] {
    if (certificates_) certificates_->reload();
  });
}

asio::awaitable<void> Edge::watch_certificates() {
  while (accepting_) {
    cert_timer_->expires_after(std::chrono::seconds(config_.edge.cert_check_seconds));
    auto [ec] = co_await cert_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || !accepting_) break;
    certificates_->reload_if_changed();
  }
}

void Edge::release(const std::string& ip) {
  --admitted_;
  auto it = per_ip_.find(ip);
  if (it != per_ip_.end() && --it->second <= 0) per_ip_.erase(it);
}

asio::awaitable<void> Edge::accept_loop(asio::ip::tcp::acceptor& acceptor, bool tls) {
  const std::string_view listener = tls ? "https" : "http";
  while (accepting_) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (!accepting_) break;
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      // EMFILE and friends: log, back off a little so the loop does not spin, and go on.
      logger_->warn("edge: accept failed on {}: {}", listener, ec.message());
      asio::steady_timer pause(executor_, std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    boost::system::error_code pec;
    const auto peer = socket.remote_endpoint(pec);
    if (pec) continue;
    std::string ip = peer.address().to_string();
    if (admitted_ >= static_cast<std::size_t>(config_.edge.max_connections)) {
      metrics_->connection(listener, "rejected_max_connections").Increment();
      socket.close(pec);
      continue;
    }
    int& from_ip = per_ip_[ip];
    if (from_ip >= config_.edge.max_connections_per_ip) {
      metrics_->connection(listener, "rejected_per_ip").Increment();
      socket.close(pec);
      continue;
    }
    ++from_ip;
    ++admitted_;
    metrics_->connection(listener, "accepted").Increment();
    socket.set_option(asio::ip::tcp::no_delay(true), pec);
    if (tls) {
      asio::co_spawn(executor_, serve_tls(std::move(socket), std::move(ip)), asio::detached);
    } else {
      asio::co_spawn(executor_, serve_plain(std::move(socket), std::move(ip)), asio::detached);
    }
  }
}

asio::awaitable<void> Edge::hold(std::shared_ptr<PublicConnection> connection) {
  const std::uint64_t id = next_id_++;
  connections_.emplace(id, connection);
  metrics_->connections_open.Increment();
  if (!context_->draining) {
    co_await connection->run();
  } else {
    connection->force_close();
  }
  metrics_->connections_open.Decrement();
  connections_.erase(id);
}

asio::awaitable<void> Edge::serve_plain(asio::ip::tcp::socket socket, std::string ip) {
  auto executor = socket.get_executor();
  std::shared_ptr<PublicConnection> connection = std::make_shared<Http1Connection>(
      *context_, executor, std::make_unique<PlainStream>(std::move(socket)), std::string(), ip, false,
      config_.edge.serve_plain_http);
  co_await hold(connection);
  release(ip);
}

void Edge::refuse_outside_zone(asio::ip::tcp::socket& socket) {
  // Take the ClientHello off the socket first: closing with unread bytes would send a RST that
  // can overtake the alert.
  char sink[4096];
  while (::recv(socket.native_handle(), sink, sizeof sink, MSG_DONTWAIT) > 0) {
  }
  // A fatal unrecognized_name alert (RFC 6066 §3) in a TLS 1.2-style record, which every client
  // reads before any handshake.
  static constexpr unsigned char kAlert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70};
  (void)::send(socket.native_handle(), kAlert, sizeof kAlert, MSG_DONTWAIT | MSG_NOSIGNAL);
  boost::system::error_code ignored;
  socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  socket.close(ignored);
}

asio::awaitable<void> Edge::serve_tls(asio::ip::tcp::socket socket, std::string ip) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(config_.edge.handshake_timeout_seconds);
  PeekOutcome peeked = co_await peek_client_hello(socket, config_.edge.max_client_hello_bytes, deadline);
  boost::system::error_code ignored;
  if (peeked.timed_out || peeked.closed) {
    if (peeked.timed_out) metrics_->timeout("handshake").Increment();
    metrics_->route(peeked.timed_out ? "timeout" : "closed").Increment();
    socket.close(ignored);
    release(ip);
    co_return;
  }
  switch (peeked.hello.status) {
    case proto::ClientHelloStatus::not_tls: {
      metrics_->route("not_tls").Increment();
      char sink[4096];
      (void)::recv(socket.native_handle(), sink, sizeof sink, MSG_DONTWAIT);
      (void)::send(socket.native_handle(), kPlainHttpOnTlsPort.data(), kPlainHttpOnTlsPort.size(),
                   MSG_DONTWAIT | MSG_NOSIGNAL);
      socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
      socket.close(ignored);
      release(ip);
      co_return;
    }
    case proto::ClientHelloStatus::complete: break;
    default:
      metrics_->route(proto::to_string(peeked.hello.status)).Increment();
      socket.close(ignored);
      release(ip);
      co_return;
  }
  const std::optional<std::string>& sni = peeked.hello.info.sni;
  const proto::SniRoute where = proto::route_by_sni(sni, config_.zone);
  switch (where.target) {
    case proto::SniTarget::relay:
      metrics_->route("relay").Increment();
      release(ip);  // the relay counts its own sessions (relay.max_sessions)
      relay_.adopt(std::move(socket));
      co_return;
    case proto::SniTarget::outside_zone:
      metrics_->route("outside_zone").Increment();
      refuse_outside_zone(socket);
      release(ip);
      co_return;
    case proto::SniTarget::unknown_name:
      metrics_->route("unknown_name").Increment();
      co_await terminate_tls(std::move(socket), ip, *sni);
      release(ip);
      co_return;
    case proto::SniTarget::tunnel: break;
  }
  auto found = co_await directory_->lookup(where.tunnel_name);
  if (found && *found && (*found)->tls_mode == controlplane::TlsMode::passthrough &&
      (*found)->status != controlplane::TunnelStatus::delete_pending && !(*found)->organization_disabled) {
    metrics_->route("passthrough").Increment();
    std::shared_ptr<PublicConnection> connection = std::make_shared<PassthroughConnection>(
        *context_, std::move(socket), TunnelTarget{where.tunnel_name, **found}, *sni, ip);
    co_await hold(connection);
    release(ip);
    co_return;
  }
  // Edge tunnels, and every name the HTTP layer answers with an error page (unknown, pending
  // removal, a passthrough tunnel that cannot take the connection, directory unavailable).
  metrics_->route("tunnel").Increment();
  co_await terminate_tls(std::move(socket), ip, *sni);
  release(ip);
}

asio::awaitable<void> Edge::terminate_tls(asio::ip::tcp::socket socket, std::string ip, std::string sni) {
  auto executor = socket.get_executor();
  auto tls = std::make_unique<TlsSocket>(std::move(socket), certificates_->edge_context());
  asio::steady_timer timer(executor, std::chrono::seconds(config_.edge.handshake_timeout_seconds));
  auto outcome = co_await (tls->handshake() || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (outcome.index() == 1) {
    metrics_->timeout("handshake").Increment();
    tls->close();
    co_return;
  }
  if (const auto ec = std::get<0>(outcome)) {
    metrics_->handshake_failure(ec == asio::error::eof ? "closed" : "error").Increment();
    logger_->debug("edge: TLS handshake with {} failed: {}", ip, ec.message());
    tls->close();
    co_return;
  }
  std::shared_ptr<PublicConnection> connection;
  if (tls->alpn() == "h2") {
    connection = std::make_shared<Http2Connection>(*context_, executor, std::move(tls), std::move(sni), ip);
  } else {
    connection = std::make_shared<Http1Connection>(*context_, executor, std::move(tls), std::move(sni), ip, true, true);
  }
  co_await hold(connection);
}

void Edge::begin_drain() {
  accepting_ = false;
  boost::system::error_code ignored;
  if (https_) https_->close(ignored);
  if (http_) http_->close(ignored);
  if (cert_timer_) cert_timer_->cancel();
  if (context_) context_->draining = true;
  logger_->info("edge: draining {} public connection(s)", connections_.size());
  for (auto& [id, weak] : connections_) {
    if (auto connection = weak.lock()) connection->drain();
  }
}

void Edge::close_all() {
  accepting_ = false;
  boost::system::error_code ignored;
  if (https_) https_->close(ignored);
  if (http_) http_->close(ignored);
  if (cert_timer_) cert_timer_->cancel();
  for (auto& [id, weak] : connections_) {
    if (auto connection = weak.lock()) connection->force_close();
  }
}

}  // namespace inkwire::edge
