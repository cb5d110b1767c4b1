#pragma once
// Everything an operator graphs about the relay (issue 3 "Metrics"). One object, registered once,
// passed to the parts that count. The labelled counters are looked up once per label set and then
// cached (Family::Add takes a lock and builds a label map), so the per-request cost is a hash
// lookup; the cache is unsynchronised because the relay runs on one thread.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <string>
#include <unordered_map>

namespace inkwire::relay {

class RelayMetrics {
 public:
  explicit RelayMetrics(prometheus::Registry& registry);

  prometheus::Gauge& sessions;           // TLS connections (after the handshake)
  prometheus::Gauge& sessions_owning;    // sessions that own their tunnel
  prometheus::Gauge& parked_intakes;
  prometheus::Gauge& queued_requests;    // waiting for a parked intake
  prometheus::Gauge& outstanding;        // delivered, waiting for the post or bridge
  prometheus::Gauge& bridges_open;
  prometheus::Histogram& queue_wait_seconds;
  prometheus::Histogram& response_seconds;  // delivery to response head
  prometheus::Counter& bytes_to_agent;
  prometheus::Counter& bytes_from_agent;
  prometheus::Counter& deadline_expiries;
  prometheus::Counter& drains;
  prometheus::Counter& pings_timed_out;
  prometheus::Counter& superseded;
  prometheus::Counter& redelivered;      // A11
  prometheus::Counter& resets_sent;      // RST_STREAM we had to send
  prometheus::Counter& protocol_errors;  // h2 protocol errors and floods from agents

  prometheus::Counter& hello(const std::string& result);         // ok, unauthorized, forbidden, pending_removal, ...
  prometheus::Counter& request(const std::string& kind, int status);  // by route kind and third-party status
  prometheus::Counter& post(int status);                         // our reply to a response post
  prometheus::Counter& rejected(const std::string& reason);      // connections/streams refused by a limit
  prometheus::Counter& intake(const std::string& outcome);       // delivered, idle_204, replaced, unauthorized, superseded

 private:
  prometheus::Family<prometheus::Counter>& hello_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& posts_;
  prometheus::Family<prometheus::Counter>& rejected_;
  prometheus::Family<prometheus::Counter>& intakes_;
  std::unordered_map<std::string, prometheus::Counter*> by_name_;      // hello, rejected, intake
  std::unordered_map<std::uint64_t, prometheus::Counter*> by_status_;  // request, post
};

}  // namespace inkwire::relay
