#pragma once
// The relay role, assembled: the agents' TLS + HTTP/2 listener, the session registry (the seam the
// edge dispatches through), the tunnel directory with its LISTEN on control-plane events, and the
// drain. `inkwired serve` and the integration tests build it the same way.
//
// Threading: everything of the relay runs on one executor (`executor()`); callers of the seam must
// be on it too. One core serves the data plane; the control plane keeps its own threads.

#include <prometheus/registry.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "common/config.h"
#include "common/expected.h"
#include "common/logging.h"
#include "common/random_source.h"
#include "common/tls_server_context.h"
#include "controlplane/repo/pg/pg_listener.h"
#include "controlplane/repo/pg/pg_pool.h"
#include "controlplane/repo/pg/pg_session_repository.h"
#include "relay/agent_session.h"
#include "relay/connection_facts.h"
#include "relay/relay_metrics.h"
#include "relay/session_registry.h"
#include "relay/tunnel_directory.h"

namespace inkwire::relay {

class Relay {
 public:
  Relay(const Config& config, const Clock& clock, RandomSource& random, prometheus::Registry& registry, Logger logger);
  ~Relay();

  // Loads the certificate, binds relay.listen and starts accepting and listening for events on
  // `io`. Error: one line.
  Expected<Unit, std::string> start(boost::asio::io_context& io);
  unsigned short port() const { return port_; }
  boost::asio::any_io_executor executor() const { return executor_; }

  // An agent's connection accepted by the edge's shared listener (§8 A31): the ClientHello was only
  // peeked at, so the TLS handshake starts from the first byte. On the relay's executor.
  void adopt(boost::asio::ip::tcp::socket socket);
  // A reloaded certificate (the edge's CertificateStore): new sessions use it.
  void replace_tls_context(SslCtxPtr context);
  static Expected<SslCtxPtr, std::string> make_relay_tls_context(const std::string& cert_file,
                                                                 const std::string& key_file);
  // Every control-plane notification after the relay has acted on it (the edge keeps its own
  // name cache); an empty channel means "events may have been missed, forget everything".
  void set_event_observer(std::function<void(const std::string& channel, const std::string& payload)> observer) {
    event_observer_ = std::move(observer);
  }
  const Config& config() const { return config_; }
  controlplane::PgSessionRepository& sessions_repository() { return sessions_repo_; }

  // The seam (edge side): see SessionRegistry::dispatch and Exchange.
  SessionRegistry& registry() { return *registry_; }

  // Graceful (SIGTERM, admin): stop accepting; each session finishes its posts and bridges within
  // relay.drain_timeout_seconds, then gets GOAWAY and is closed.
  void begin_drain();
  // Forced: closes every connection now. After begin_drain() + close_all() the io_context runs out
  // of relay work.
  void close_all();
  std::size_t active_sessions() const { return sessions_.size(); }
  RelayMetrics& metrics() { return *metrics_; }
  TunnelDirectory& directory() { return *directory_; }

 private:
  boost::asio::awaitable<void> accept_loop();
  void on_event(const std::string& payload);
  void on_organization_event(const std::string& payload);

  const Config& config_;
  const Clock& clock_;
  RandomSource& random_;
  Logger logger_;
  controlplane::PgPool pool_;
  controlplane::PgSessionRepository sessions_repo_;
  std::unique_ptr<RelayMetrics> metrics_;
  std::unique_ptr<TunnelDirectory> directory_;
  std::unique_ptr<SessionRegistry> registry_;
  std::unique_ptr<ConnectionFacts> facts_;
  std::unique_ptr<SessionContext> context_;
  std::unique_ptr<controlplane::PgListener> listener_;
  SslCtxPtr tls_;
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
  boost::asio::any_io_executor executor_;
  unsigned short port_ = 0;
  bool accepting_ = false;
  std::uint64_t next_session_id_ = 1;
  std::unordered_map<std::uint64_t, std::weak_ptr<AgentSession>> sessions_;
  std::function<void(const std::string&, const std::string&)> event_observer_;
};

}  // namespace inkwire::relay
