#include "relay/session_registry.h"

#include "common/encoding.h"
#include "relay/agent_session.h"

namespace inkwire::relay {

namespace {
constexpr std::size_t kRecentPerTunnel = 4096;                  // remembered answers for 409/410
constexpr std::chrono::minutes kRecentFor{10};
}  // namespace

SessionRegistry::SessionRegistry(boost::asio::any_io_executor executor, const RelayConfig& config,
                                 RandomSource& random, RelayMetrics& metrics, Logger logger)
    : executor_(std::move(executor)), config_(config), random_(random), metrics_(metrics), logger_(std::move(logger)) {}

std::string SessionRegistry::new_id() { return Uuid::random(random_).to_string(); }

TunnelRoute& SessionRegistry::route(const Uuid& tunnel_id) {
  auto [it, inserted] = routes_.try_emplace(tunnel_id);
  if (inserted) it->second.tunnel_id = tunnel_id;
  return it->second;
}

TunnelRoute* SessionRegistry::find_route(const Uuid& tunnel_id) {
  auto it = routes_.find(tunnel_id);
  return it == routes_.end() ? nullptr : &it->second;
}

void SessionRegistry::drop_if_empty(const Uuid& tunnel_id) {
  auto it = routes_.find(tunnel_id);
  if (it != routes_.end() && it->second.empty()) routes_.erase(it);
}

Expected<std::shared_ptr<Exchange>, proto::EnvelopeError> SessionRegistry::dispatch(InboundCall call) {
  std::string request_id = new_id();
  std::string bridge_id = call.kind == proto::RouteKind::webhook ? std::string() : new_id();
  auto envelope = proto::build_envelope_headers(call.request, call.kind, request_id, bridge_id);
  if (!envelope) return unexpected(envelope.error());

  const Exchange::Timing timing{
      std::chrono::seconds(config_.queue_wait_seconds),
      std::chrono::seconds(config_.response_deadline_seconds + config_.response_grace_seconds),
      std::chrono::seconds(config_.bridge_open_timeout_seconds),
  };
  auto exchange = std::make_shared<Exchange>(executor_, std::move(call), std::move(request_id), std::move(bridge_id),
                                             timing, config_.pipe_buffer_bytes);
  exchange->envelope = std::move(*envelope);
  exchange->on_timeout = [this](Exchange& ex, const DispatchFailure& failure) { on_timeout(ex, failure); };
  exchange->on_cancel = [this](Exchange& ex) { on_cancel(ex); };
  exchange->on_bridge_accepted = [](Exchange& ex) {
    if (auto session = ex.bridge_session.lock()) session->bridge_accepted(ex);
  };

  TunnelRoute& r = route(exchange->call().tunnel_id);
  exchange->had_session_at_queue = r.owner != nullptr;
  if (r.waiting.size() >= static_cast<std::size_t>(config_.queue_max_requests) &&
      !(r.owner && r.owner->can_deliver())) {
    metrics_.rejected("queue_full").Increment();
    exchange->fail(DispatchFailure{503, "queue-full"});
    drop_if_empty(r.tunnel_id);
    return exchange;
  }
  r.waiting.push_back(exchange);
  metrics_.queued_requests.Increment();
  try_match(r);
  return exchange;
}

void SessionRegistry::try_match(TunnelRoute& r) {
  if (draining_) return;
  while (!r.waiting.empty() && r.owner && r.owner->can_deliver()) {
    std::shared_ptr<Exchange> exchange = std::move(r.waiting.front());
    r.waiting.pop_front();
    metrics_.queued_requests.Decrement();
    if (exchange->is_done()) continue;  // timed out or cancelled while queued
    metrics_.queue_wait_seconds.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - exchange->created_at()).count());
    exchange->delivered_generation = r.generation;
    r.outstanding[exchange->request_id()] = exchange;
    if (exchange->kind() != proto::RouteKind::webhook) r.bridges[exchange->bridge_id()] = exchange;
    metrics_.outstanding.Increment();
    r.owner->deliver(exchange);
  }
}

void SessionRegistry::claim(const Uuid& tunnel_id, const std::shared_ptr<AgentSession>& session) {
  TunnelRoute& r = route(tunnel_id);
  r.sessions.insert(session.get());
  std::shared_ptr<AgentSession> previous = std::move(r.owner);
  r.owner = session;
  ++r.generation;
  if (previous && previous != session) {
    metrics_.superseded.Increment();
    logger_->info("relay: tunnel {} session {} superseded by session {}", tunnel_id.to_string(), previous->id(),
                  session->id());
    previous->supersede();
  }
}

void SessionRegistry::intake_available(const Uuid& tunnel_id) {
  if (TunnelRoute* r = find_route(tunnel_id)) try_match(*r);
}

void SessionRegistry::session_ended(AgentSession& session, const std::optional<Uuid>& tunnel_id) {
  if (!tunnel_id) return;
  TunnelRoute* r = find_route(*tunnel_id);
  if (!r) return;
  r->sessions.erase(&session);
  if (r->owner.get() == &session) r->owner.reset();
  // Requests delivered through this session and not answered: the third party gets 502 at once.
  std::vector<std::shared_ptr<Exchange>> lost;
  for (auto& [id, exchange] : r->outstanding) {
    auto via = exchange->intake_session.lock();
    if (via && via.get() != &session) continue;
    // Waiting for its post, or (ws) accepted and waiting for the bridge CONNECT that only this
    // session could have opened: either way nothing more will come.
    const bool awaiting_post = exchange->state() == ExchangeState::delivered;
    const bool awaiting_bridge = exchange->kind() == proto::RouteKind::ws_upgrade &&
                                 exchange->state() == ExchangeState::answered && exchange->head_status() == 200;
    if (awaiting_post || awaiting_bridge) lost.push_back(exchange);
  }
  for (auto& exchange : lost) {
    forget(*exchange, LookupMiss::expired);
    exchange->fail(DispatchFailure{502, "session-lost"});
    metrics_.request(std::string(proto::route_kind_name(exchange->kind())), 502).Increment();
  }
  drop_if_empty(*tunnel_id);
}

std::size_t SessionRegistry::outstanding_for(const AgentSession& session) const {
  if (!session.tunnel_id()) return 0;
  auto it = routes_.find(*session.tunnel_id());
  if (it == routes_.end()) return 0;
  std::size_t n = 0;
  for (const auto& [id, exchange] : it->second.outstanding) {
    if (exchange->intake_session.lock().get() != &session) continue;
    // Waiting for its post, or (ws) accepted and waiting for the bridge CONNECT that only this
    // session can open: a GOAWAY now would make the agent unable to open it.
    const bool awaiting_bridge = exchange->kind() == proto::RouteKind::ws_upgrade &&
                                 exchange->state() == ExchangeState::answered && exchange->head_status() == 200;
    if (!exchange->has_head() || awaiting_bridge) ++n;
  }
  return n;
}

std::size_t SessionRegistry::sessions_for_organization(const Uuid& organization_id) const {
  auto it = sessions_per_org_.find(organization_id);
  return it == sessions_per_org_.end() ? 0 : static_cast<std::size_t>(it->second);
}

void SessionRegistry::count_organization(const Uuid& organization_id, int delta) {
  int& n = sessions_per_org_[organization_id];
  n += delta;
  if (n <= 0) sessions_per_org_.erase(organization_id);
}

Expected<std::shared_ptr<Exchange>, LookupMiss> SessionRegistry::find_outstanding(const Uuid& tunnel_id,
                                                                                 const std::string& request_id) {
  TunnelRoute* r = find_route(tunnel_id);
  if (!r) return unexpected(LookupMiss::unknown);
  if (auto it = r->outstanding.find(request_id); it != r->outstanding.end()) {
    if (it->second->kind() == proto::RouteKind::tcp_stream) return unexpected(LookupMiss::unknown);
    if (it->second->has_head()) return unexpected(LookupMiss::answered);
    return it->second;
  }
  if (auto it = r->recent.find(request_id); it != r->recent.end()) return unexpected(it->second);
  return unexpected(LookupMiss::unknown);
}

Expected<std::shared_ptr<Exchange>, LookupMiss> SessionRegistry::take_bridge(const Uuid& tunnel_id,
                                                                            const std::string& bridge_id,
                                                                            proto::RouteKind kind) {
  TunnelRoute* r = find_route(tunnel_id);
  if (!r) return unexpected(LookupMiss::unknown);
  auto it = r->bridges.find(bridge_id);
  if (it == r->bridges.end()) return unexpected(LookupMiss::unknown);
  std::shared_ptr<Exchange> exchange = it->second;
  if (exchange->kind() != kind || exchange->is_done()) return unexpected(LookupMiss::unknown);
  // A ws bridge needs the agent's accepting post first (§4.8 step 3: "known, pending and accepted").
  if (kind == proto::RouteKind::ws_upgrade && !(exchange->has_head() && exchange->head_status() == 200))
    return unexpected(LookupMiss::unknown);
  r->bridges.erase(it);
  return exchange;
}

void SessionRegistry::complete(Exchange& exchange) { forget(exchange, LookupMiss::answered); }

void SessionRegistry::forget(Exchange& exchange, LookupMiss how) {
  TunnelRoute* r = find_route(exchange.call().tunnel_id);
  if (!r) return;
  if (r->outstanding.erase(exchange.request_id())) {
    metrics_.outstanding.Decrement();
    remember(*r, exchange.request_id(), how);
  }
  if (!exchange.bridge_id().empty()) {
    auto it = r->bridges.find(exchange.bridge_id());
    if (it != r->bridges.end() && it->second.get() == &exchange) r->bridges.erase(it);
  }
  for (auto it = r->waiting.begin(); it != r->waiting.end(); ++it) {
    if (it->get() == &exchange) {
      r->waiting.erase(it);
      metrics_.queued_requests.Decrement();
      break;
    }
  }
  drop_if_empty(r->tunnel_id);
}

void SessionRegistry::remember(TunnelRoute& r, const std::string& request_id, LookupMiss how) {
  const auto now = std::chrono::steady_clock::now();
  while (!r.recent_order.empty() &&
         (r.recent_order.size() >= kRecentPerTunnel || now - r.recent_order.front().first > kRecentFor)) {
    r.recent.erase(r.recent_order.front().second);
    r.recent_order.pop_front();
  }
  r.recent[request_id] = how;
  r.recent_order.emplace_back(now, request_id);
}

void SessionRegistry::redeliver(const std::shared_ptr<Exchange>& exchange) {
  TunnelRoute* r = find_route(exchange->call().tunnel_id);
  // Only a request still waiting for its answer goes back: one already answered or bridged (the
  // agent may post before the intake's END_STREAM) must not be delivered twice.
  if (!r || exchange->state() != ExchangeState::delivered) return;
  if (r->outstanding.erase(exchange->request_id())) metrics_.outstanding.Decrement();
  if (!exchange->bridge_id().empty()) r->bridges.erase(exchange->bridge_id());
  exchange->requeue();
  metrics_.redelivered.Increment();
  r->waiting.push_front(exchange);
  metrics_.queued_requests.Increment();
  try_match(*r);
}

void SessionRegistry::on_timeout(Exchange& exchange, const DispatchFailure& failure) {
  metrics_.deadline_expiries.Increment();
  metrics_.request(std::string(proto::route_kind_name(exchange.kind())), failure.status).Increment();
  logger_->info("relay: request {} for tunnel {} failed: {} ({})", exchange.request_id(),
                exchange.call().tunnel_id.to_string(), failure.status, failure.reason);
  if (auto session = exchange.intake_session.lock(); session && exchange.intake_stream != 0 &&
                                                     exchange.state() == ExchangeState::delivered &&
                                                     !exchange.envelope_complete) {
    session->cancel_stream(exchange.intake_stream);
  }
  if (auto session = exchange.bridge_session.lock(); session && exchange.bridge_stream != 0) {
    session->cancel_stream(exchange.bridge_stream);
  }
  forget(exchange, LookupMiss::expired);
}

void SessionRegistry::on_cancel(Exchange& exchange) {
  if (auto session = exchange.intake_session.lock(); session && exchange.intake_stream != 0 &&
                                                     !exchange.envelope_complete) {
    session->cancel_stream(exchange.intake_stream);
  }
  // A response body still arriving: stop the agent sending it (§4.7: "reads or resets the body").
  if (auto session = exchange.post_session.lock(); session && exchange.post_stream != 0 &&
                                                   exchange.response_body().end() == PipeEnd::open) {
    session->cancel_stream(exchange.post_stream);
  }
  if (auto session = exchange.bridge_session.lock(); session && exchange.bridge_stream != 0) {
    session->cancel_stream(exchange.bridge_stream);
  }
  forget(exchange, LookupMiss::expired);
}

void SessionRegistry::tunnel_removed(const Uuid& tunnel_id) {
  TunnelRoute* r = find_route(tunnel_id);
  if (!r) return;
  std::vector<AgentSession*> sessions(r->sessions.begin(), r->sessions.end());
  std::vector<std::shared_ptr<Exchange>> failing(r->waiting.begin(), r->waiting.end());
  for (auto& [id, exchange] : r->outstanding) failing.push_back(exchange);
  for (auto& exchange : failing) {
    forget(*exchange, LookupMiss::expired);
    exchange->fail(DispatchFailure{503, "tunnel-removed"});
  }
  for (AgentSession* session : sessions) session->close_now("tunnel removed");
}

void SessionRegistry::close_organization(const Uuid& organization_id) {
  std::vector<std::shared_ptr<AgentSession>> closing;
  for (auto& [id, r] : routes_) {
    for (AgentSession* session : r.sessions) {
      if (session->organization_id() == organization_id) closing.push_back(session->shared_from_this());
    }
  }
  for (auto& session : closing) session->close_now("organization disabled");
}

std::vector<std::shared_ptr<AgentSession>> SessionRegistry::owners() const {
  std::vector<std::shared_ptr<AgentSession>> out;
  for (const auto& [id, r] : routes_) {
    if (r.owner) out.push_back(r.owner);
  }
  return out;
}

}  // namespace inkwire::relay
