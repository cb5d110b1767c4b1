#include "relay/relay.h"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include "common/listen_address.h"
#include "common/tls_server_context.h"
#include "controlplane/repo/pg/pg_access_repository.h"
#include "controlplane/repo/pg/pg_tunnel_repository.h"

namespace inkwire::relay {

namespace asio = boost::asio;

Relay::Relay(const Config& config, const Clock& clock, RandomSource& random, prometheus::Registry& registry,
             Logger logger)
    : config_(config),
      clock_(clock),
      random_(random),
      logger_(std::move(logger)),
      pool_(config.database.url, config.database.pool_size, config.database.statement_timeout_ms, registry, logger_),
      sessions_repo_(pool_),
      metrics_(std::make_unique<RelayMetrics>(registry)),
      directory_(std::make_unique<TunnelDirectory>(sessions_repo_, clock_,
                                                   std::chrono::seconds(config.relay.directory_cache_seconds),
                                                   registry, logger_)) {}

Relay::~Relay() { pool_.stop(); }

Expected<Unit, std::string> Relay::start(asio::io_context& io) {
  executor_ = io.get_executor();
  if (config_.database.url.empty()) return unexpected("the relay role needs database.url (INKWIRE_DATABASE_URL)");
  if (config_.tls.cert_file.empty() || config_.tls.key_file.empty())
    return unexpected("the relay role needs tls.cert_file and tls.key_file (the zone's certificate)");
  auto ctx = make_relay_tls_context(config_.tls.cert_file, config_.tls.key_file);
  if (!ctx) return unexpected(ctx.error());
  tls_ = std::move(*ctx);

  registry_ = std::make_unique<SessionRegistry>(executor_, config_.relay, random_, *metrics_, logger_);
  facts_ = std::make_unique<ConnectionFacts>(executor_, sessions_repo_, clock_, logger_);
  context_ = std::make_unique<SessionContext>(
      SessionContext{config_.relay, *registry_, *directory_, *facts_, random_, *metrics_, logger_});

  // With the edge role the agents arrive through the edge's shared listener (A31) and adopt().
  if (!config_.relay.listen.empty()) {
    auto endpoint = parse_listen_address(config_.relay.listen);
    if (!endpoint) return unexpected(endpoint.error());
    acceptor_.emplace(io);
    boost::system::error_code ec;
    acceptor_->open(endpoint->protocol(), ec);
    if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(*endpoint, ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return unexpected("cannot listen on " + config_.relay.listen + ": " + ec.message());
    port_ = acceptor_->local_endpoint().port();
  }

  listener_ = std::make_unique<controlplane::PgListener>(
      config_.database.url,
      std::vector<std::string>{controlplane::PgTunnelRepository::kTunnelEventsChannel,
                               controlplane::PgAccessRepository::kOrganizationEventsChannel},
      [this](const std::string& channel, const std::string& payload) {
        if (channel == controlplane::PgAccessRepository::kOrganizationEventsChannel) {
          on_organization_event(payload);
        } else {
          on_event(payload);
        }
        if (event_observer_) event_observer_(channel, payload);
      },
      [this] {
        directory_->invalidate_all();
        if (event_observer_) event_observer_({}, {});
      },
      logger_);
  asio::co_spawn(executor_, listener_->run(), asio::detached);
  accepting_ = true;
  if (acceptor_) {
    asio::co_spawn(executor_, accept_loop(), asio::detached);
    logger_->info("relay: listening on {} (port {})", config_.relay.listen, port_);
  } else {
    logger_->info("relay: no listener of its own; agents arrive through the edge");
  }
  return Unit{};
}

Expected<SslCtxPtr, std::string> Relay::make_relay_tls_context(const std::string& cert_file,
                                                              const std::string& key_file) {
  auto ctx = make_tls_server_context(TlsServerOptions{cert_file, key_file, {"h2"}});
  if (!ctx) return unexpected(ctx.error());
  // Idle agents are the common case (10,000 per process is the bar): OpenSSL frees its record
  // buffers between reads, and keeps no session cache (agents do not resume sessions).
  SSL_CTX_set_mode(ctx->get(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(ctx->get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx->get(), 0);
  return std::move(*ctx);
}

void Relay::replace_tls_context(SslCtxPtr context) {
  // Live sessions keep the context they started with (each SSL holds a reference to it).
  if (context) tls_ = std::move(context);
}

asio::awaitable<void> Relay::accept_loop() {
  while (accepting_) {
    auto [ec, socket] = co_await acceptor_->async_accept(asio::as_tuple(asio::use_awaitable));
    if (!accepting_) break;
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      logger_->warn("relay: accept failed: {}", ec.message());
      continue;
    }
    adopt(std::move(socket));
  }
}

void Relay::adopt(asio::ip::tcp::socket socket) {
  if (!accepting_ || !context_) {
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  if (sessions_.size() >= static_cast<std::size_t>(config_.relay.max_sessions)) {
    metrics_->rejected("max_sessions").Increment();
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  boost::system::error_code pec;
  const auto peer = socket.remote_endpoint(pec);
  std::string ip = pec ? std::string() : peer.address().to_string();
  socket.set_option(asio::ip::tcp::no_delay(true), pec);
  const std::uint64_t id = next_session_id_++;
  auto session = std::make_shared<AgentSession>(*context_, std::move(socket), tls_.get(), std::move(ip), id);
  sessions_.emplace(id, session);
  asio::co_spawn(
      executor_,
      [this, session, id]() -> asio::awaitable<void> {
        co_await session->run();
        sessions_.erase(id);
      },
      asio::detached);
}

void Relay::on_event(const std::string& payload) {
  boost::system::error_code ec;
  auto value = boost::json::parse(payload, ec);
  if (ec || !value.is_object()) return;
  const auto& obj = value.as_object();
  const auto* event = obj.if_contains("event");
  const auto* tunnel = obj.if_contains("tunnel_id");
  if (!event || !tunnel || !event->is_string() || !tunnel->is_string()) return;
  const auto id = Uuid::parse(tunnel->as_string());
  if (!id) return;
  directory_->invalidate(*id);
  const std::string_view name = event->as_string();
  if (name == "tunnel.deleted" || name == "tunnel.finalized" || name == "tunnel.force_deleted") {
    logger_->info("relay: {} for tunnel {}: closing its sessions", name, id->to_string());
    registry_->tunnel_removed(*id);
  }
}

void Relay::on_organization_event(const std::string& payload) {
  boost::system::error_code ec;
  auto value = boost::json::parse(payload, ec);
  if (ec || !value.is_object()) return;
  const auto* org = value.as_object().if_contains("organization_id");
  const auto* disabled = value.as_object().if_contains("disabled");
  if (!org || !org->is_string() || !disabled || !disabled->is_bool()) return;
  const auto id = Uuid::parse(org->as_string());
  if (!id) return;
  directory_->invalidate_organization(*id);
  if (disabled->as_bool()) {
    logger_->info("relay: organization {} disabled: closing its sessions", id->to_string());
    registry_->close_organization(*id);
  }
}

void Relay::begin_drain() {
  accepting_ = false;
  if (acceptor_) {
    boost::system::error_code ignored;
    acceptor_->close(ignored);
  }
  if (listener_) listener_->stop();
  if (registry_) registry_->set_draining(true);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(config_.relay.drain_timeout_seconds);
  logger_->info("relay: draining {} session(s) (at most {} s)", sessions_.size(), config_.relay.drain_timeout_seconds);
  for (auto& [id, weak] : sessions_) {
    if (auto session = weak.lock()) session->begin_drain(deadline);
  }
}

void Relay::close_all() {
  accepting_ = false;
  if (acceptor_) {
    boost::system::error_code ignored;
    acceptor_->close(ignored);
  }
  if (listener_) listener_->stop();
  for (auto& [id, weak] : sessions_) {
    if (auto session = weak.lock()) session->force_close();
  }
}

}  // namespace inkwire::relay
