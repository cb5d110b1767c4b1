#include "relay/relay_metrics.h"

namespace inkwire::relay {

namespace {

prometheus::Gauge& gauge(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}
prometheus::Counter& counter(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}
prometheus::Histogram& histogram(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r).Add(
      {}, prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30});
}
prometheus::Family<prometheus::Counter>& family(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}

}  // namespace

RelayMetrics::RelayMetrics(prometheus::Registry& r)
    : sessions(gauge(r, "inkwire_relay_sessions", "Agent connections past the TLS handshake")),
      sessions_owning(gauge(r, "inkwire_relay_owning_sessions", "Agent sessions that own their tunnel")),
      parked_intakes(gauge(r, "inkwire_relay_parked_intakes", "Intake streams parked by agents")),
      queued_requests(gauge(r, "inkwire_relay_queued_requests", "Requests waiting for a parked intake")),
      outstanding(gauge(r, "inkwire_relay_outstanding_requests", "Requests delivered to an agent, not yet answered")),
      bridges_open(gauge(r, "inkwire_relay_bridges_open", "WebSocket and TCP bridges open")),
      queue_wait_seconds(histogram(r, "inkwire_relay_queue_wait_seconds", "Time requests waited for an intake")),
      response_seconds(histogram(r, "inkwire_relay_response_seconds", "Envelope delivery to response head")),
      bytes_to_agent(counter(r, "inkwire_relay_bytes_to_agent_total", "Body and bridge bytes sent to agents")),
      bytes_from_agent(counter(r, "inkwire_relay_bytes_from_agent_total", "Body and bridge bytes received from agents")),
      deadline_expiries(counter(r, "inkwire_relay_deadline_expiries_total", "Requests failed by a queue, response or bridge deadline")),
      drains(counter(r, "inkwire_relay_drains_total", "Sessions closed by a relay drain")),
      pings_timed_out(counter(r, "inkwire_relay_ping_timeouts_total", "Sessions dropped for an unanswered PING")),
      superseded(counter(r, "inkwire_relay_superseded_total", "Sessions displaced by a newer hello (A2)")),
      redelivered(counter(r, "inkwire_relay_redelivered_total", "Requests queued again after an intake reset (A11)")),
      resets_sent(counter(r, "inkwire_relay_resets_sent_total", "RST_STREAM frames the relay sent")),
      protocol_errors(counter(r, "inkwire_relay_protocol_errors_total", "HTTP/2 protocol errors and floods from agents")),
      hello_(family(r, "inkwire_relay_hellos_total", "Hellos by result")),
      requests_(family(r, "inkwire_relay_requests_total", "Requests through the relay by route kind and third-party status")),
      posts_(family(r, "inkwire_relay_response_posts_total", "Response posts by the relay's reply status")),
      rejected_(family(r, "inkwire_relay_rejected_total", "Connections and streams refused by a limit, by reason")),
      intakes_(family(r, "inkwire_relay_intakes_total", "Intake streams by outcome")) {}

prometheus::Counter& RelayMetrics::hello(const std::string& result) {
  auto [it, inserted] = by_name_.try_emplace("h" + result, nullptr);
  if (inserted) it->second = &hello_.Add({{"result", result}});
  return *it->second;
}
prometheus::Counter& RelayMetrics::request(const std::string& kind, int status) {
  // Route kinds are a handful of fixed strings; their first letter and length tell them apart.
  const std::uint64_t key = (1ull << 40) | (static_cast<std::uint64_t>(static_cast<unsigned char>(kind.empty() ? 0 : kind[0])) << 24) |
                            (static_cast<std::uint64_t>(kind.size()) << 16) | static_cast<std::uint16_t>(status);
  auto [it, inserted] = by_status_.try_emplace(key, nullptr);
  if (inserted) it->second = &requests_.Add({{"kind", kind}, {"status", std::to_string(status)}});
  return *it->second;
}
prometheus::Counter& RelayMetrics::post(int status) {
  auto [it, inserted] = by_status_.try_emplace(static_cast<std::uint16_t>(status), nullptr);
  if (inserted) it->second = &posts_.Add({{"status", std::to_string(status)}});
  return *it->second;
}
prometheus::Counter& RelayMetrics::rejected(const std::string& reason) {
  auto [it, inserted] = by_name_.try_emplace("r" + reason, nullptr);
  if (inserted) it->second = &rejected_.Add({{"reason", reason}});
  return *it->second;
}
prometheus::Counter& RelayMetrics::intake(const std::string& outcome) {
  auto [it, inserted] = by_name_.try_emplace("i" + outcome, nullptr);
  if (inserted) it->second = &intakes_.Add({{"outcome", outcome}});
  return *it->second;
}

}  // namespace inkwire::relay
