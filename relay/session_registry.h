#pragma once
// The relay's routing table: for each tunnel, which agent session owns it, the requests waiting for
// a parked intake (A12), the requests delivered and waiting for their response post or bridge
// (correlated across every session of the tunnel, so a make-before-break handoff works), and
// recent answers for the 409/410 replies of §4.7. Everything runs on the relay's one executor.

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "common/config.h"
#include "common/expected.h"
#include "common/logging.h"
#include "common/random_source.h"
#include "common/uuid.h"
#include "proto/envelope.h"
#include "relay/exchange.h"
#include "relay/relay_metrics.h"

namespace inkwire::relay {

class AgentSession;

// Why a response post or bridge id did not match (§4.7 "Errors", §4.8 step 3).
enum class LookupMiss : std::uint8_t { unknown, answered, expired };

struct TunnelRoute {
  Uuid tunnel_id;
  std::shared_ptr<AgentSession> owner;  // the newest successful hello (A2)
  std::uint64_t generation = 0;         // bumped on every new owner
  std::unordered_set<AgentSession*> sessions;  // every session that said hello for this tunnel
  // Lists, not deques: libstdc++'s deque allocates ~600 bytes even when empty, and most routes
  // have nothing waiting (10,000 idle tunnels per relay is the bar).
  std::list<std::shared_ptr<Exchange>> waiting;
  std::unordered_map<std::string, std::shared_ptr<Exchange>> outstanding;  // by request id
  std::unordered_map<std::string, std::shared_ptr<Exchange>> bridges;      // by ws/tcp id, awaiting CONNECT
  std::unordered_map<std::string, LookupMiss> recent;                     // request id -> answered/expired
  std::list<std::pair<std::chrono::steady_clock::time_point, std::string>> recent_order;
  bool empty() const {
    return !owner && sessions.empty() && waiting.empty() && outstanding.empty() && bridges.empty();
  }
};

class SessionRegistry {
 public:
  SessionRegistry(boost::asio::any_io_executor executor, const RelayConfig& config, RandomSource& random,
                  RelayMetrics& metrics, Logger logger);

  // ---- The seam (edge side) ----
  // Checks and builds the envelope now, so a bad request gets its 4xx at once; then queues the
  // exchange and matches it to a parked intake when one is free. A full queue fails it with 503.
  Expected<std::shared_ptr<Exchange>, proto::EnvelopeError> dispatch(InboundCall call);

  // ---- Sessions ----
  // A successful hello: `session` becomes the owner; a previous owner is superseded.
  void claim(const Uuid& tunnel_id, const std::shared_ptr<AgentSession>& session);
  // An intake was parked on `session` (or it became able to deliver again).
  void intake_available(const Uuid& tunnel_id);
  // The session is gone (closed, lost, drained): it is removed everywhere, and requests delivered
  // through it and still waiting for their post fail with 502 (§4.7).
  void session_ended(AgentSession& session, const std::optional<Uuid>& tunnel_id);
  // Requests delivered to a session, not answered yet (supersede and drain wait for these).
  std::size_t outstanding_for(const AgentSession& session) const;
  std::size_t sessions_for_organization(const Uuid& organization_id) const;
  void count_organization(const Uuid& organization_id, int delta);

  // ---- Correlation ----
  Expected<std::shared_ptr<Exchange>, LookupMiss> find_outstanding(const Uuid& tunnel_id, const std::string& request_id);
  Expected<std::shared_ptr<Exchange>, LookupMiss> take_bridge(const Uuid& tunnel_id, const std::string& bridge_id,
                                                              proto::RouteKind kind);
  // The post's body is complete (webhook, refused ws) or the bridge ended: remembered as answered.
  void complete(Exchange& exchange);
  // A delivered request whose intake the agent reset before END_STREAM (A11): back to the front.
  void redeliver(const std::shared_ptr<Exchange>& exchange);

  // ---- Control-plane events ----
  // Deleted or finalised: sessions are closed, waiting and outstanding requests fail.
  void tunnel_removed(const Uuid& tunnel_id);
  // The organisation was disabled: every session of its tunnels is closed (new hellos get 403).
  void close_organization(const Uuid& organization_id);
  // Drain: no more deliveries anywhere; requests stay queued for the agents' reconnects.
  void set_draining(bool draining) { draining_ = draining; }
  bool draining() const { return draining_; }

  std::size_t route_count() const { return routes_.size(); }
  std::vector<std::shared_ptr<AgentSession>> owners() const;
  bool has_owner(const Uuid& tunnel_id) const {
    auto it = routes_.find(tunnel_id);
    return it != routes_.end() && it->second.owner != nullptr;
  }

 private:
  TunnelRoute& route(const Uuid& tunnel_id);
  TunnelRoute* find_route(const Uuid& tunnel_id);
  void try_match(TunnelRoute& route);
  void forget(Exchange& exchange, LookupMiss how);
  void remember(TunnelRoute& route, const std::string& request_id, LookupMiss how);
  void on_timeout(Exchange& exchange, const DispatchFailure& failure);
  void on_cancel(Exchange& exchange);
  void drop_if_empty(const Uuid& tunnel_id);
  std::string new_id();

  boost::asio::any_io_executor executor_;
  const RelayConfig& config_;
  RandomSource& random_;
  RelayMetrics& metrics_;
  Logger logger_;
  bool draining_ = false;
  std::unordered_map<Uuid, TunnelRoute, UuidHash> routes_;
  std::unordered_map<Uuid, int, UuidHash> sessions_per_org_;
};

}  // namespace inkwire::relay
