#pragma once
// Everything an operator graphs about the public edge: connections by listener and outcome, the
// SNI routing decisions, handshake failures, timeouts and limits that cut clients, and per-tunnel
// requests (by status class), bytes, latency and open WebSockets. Labelled series are looked up
// once and cached; the edge runs on one thread, like the relay, so the caches need no lock.
//
// Per-tunnel series are bounded: the first `max_tunnels` names get their own label, every other
// tunnel is counted under "_other", so a busy installation cannot blow up the metrics endpoint.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

namespace inkwire::edge {

struct TunnelSeries {
  prometheus::Counter* requests[6] = {};  // status class 1xx..5xx at [1..5]; [0] unused
  prometheus::Counter* bytes_in = nullptr;   // request bodies and WebSocket bytes from third parties
  prometheus::Counter* bytes_out = nullptr;  // response bodies and WebSocket bytes to third parties
  prometheus::Histogram* seconds = nullptr;  // request start to the last byte of the response
  prometheus::Gauge* websockets_open = nullptr;
};

class EdgeMetrics {
 public:
  EdgeMetrics(prometheus::Registry& registry, int max_tunnels);

  prometheus::Gauge& connections_open;     // public connections held by the edge (all kinds)
  prometheus::Gauge& passthrough_open;     // raw TLS relays to passthrough tunnels
  prometheus::Counter& h2_goaways_sent;
  prometheus::Counter& h2_protocol_errors;  // protocol errors, floods and glitch budgets run out
  prometheus::Counter& certificate_reloads_ok;
  prometheus::Counter& certificate_reloads_failed;
  prometheus::Gauge& certificate_not_after;  // unix time when the zone certificate expires

  // accepted, rejected_max_connections, rejected_per_ip
  prometheus::Counter& connection(std::string_view listener, std::string_view outcome);
  // relay, tunnel, passthrough, unknown_name, outside_zone, not_tls, malformed, too_large, timeout
  prometheus::Counter& route(std::string_view target);
  prometheus::Counter& handshake_failure(std::string_view reason);
  // handshake, request_head, idle, send, body_rate, ws_ping
  prometheus::Counter& timeout(std::string_view kind);
  // The edge's own answers by x-inkwire-error code.
  prometheus::Counter& error(std::string_view code);
  // Requests by protocol (http1, h2, ws) for a volume graph that does not depend on tunnels.
  prometheus::Counter& request(std::string_view protocol);
  TunnelSeries& tunnel(const std::string& name);

 private:
  prometheus::Counter& cached(prometheus::Family<prometheus::Counter>& family, const std::string& key,
                              const std::map<std::string, std::string>& labels);

  prometheus::Family<prometheus::Counter>& connections_;
  prometheus::Family<prometheus::Counter>& routes_;
  prometheus::Family<prometheus::Counter>& handshake_failures_;
  prometheus::Family<prometheus::Counter>& timeouts_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& tunnel_requests_;
  prometheus::Family<prometheus::Counter>& tunnel_bytes_;
  prometheus::Family<prometheus::Histogram>& tunnel_seconds_;
  prometheus::Family<prometheus::Gauge>& tunnel_websockets_;
  int max_tunnels_;
  std::unordered_map<std::string, prometheus::Counter*> counters_;
  std::unordered_map<std::string, TunnelSeries> tunnels_;
};

}  // namespace inkwire::edge
