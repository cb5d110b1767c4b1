#include "edge/edge_metrics.h"

namespace inkwire::edge {

namespace {
constexpr const char* kOther = "_other";
}

EdgeMetrics::EdgeMetrics(prometheus::Registry& registry, int max_tunnels)
    : connections_open(prometheus::BuildGauge()
                           .Name("inkwire_edge_connections_open")
                           .Help("Public connections held by the edge")
                           .Register(registry)
                           .Add({})),
      passthrough_open(prometheus::BuildGauge()
                           .Name("inkwire_edge_passthrough_open")
                           .Help("Raw TLS connections relayed to passthrough tunnels")
                           .Register(registry)
                           .Add({})),
      h2_goaways_sent(prometheus::BuildCounter()
                          .Name("inkwire_edge_h2_goaways_total")
                          .Help("GOAWAY frames the edge sent to public HTTP/2 clients")
                          .Register(registry)
                          .Add({})),
      h2_protocol_errors(prometheus::BuildCounter()
                             .Name("inkwire_edge_h2_protocol_errors_total")
                             .Help("Public HTTP/2 connections ended for protocol errors, floods or misbehaviour")
                             .Register(registry)
                             .Add({})),
      certificate_reloads_ok(prometheus::BuildCounter()
                                 .Name("inkwire_edge_certificate_reloads_total")
                                 .Help("Zone certificate loads, by result")
                                 .Register(registry)
                                 .Add({{"result", "ok"}})),
      certificate_reloads_failed(prometheus::BuildCounter()
                                     .Name("inkwire_edge_certificate_reloads_total")
                                     .Help("Zone certificate loads, by result")
                                     .Register(registry)
                                     .Add({{"result", "failed"}})),
      certificate_not_after(prometheus::BuildGauge()
                                .Name("inkwire_edge_certificate_not_after_seconds")
                                .Help("Unix time at which the zone certificate in use expires")
                                .Register(registry)
                                .Add({})),
      connections_(prometheus::BuildCounter()
                       .Name("inkwire_edge_connections_total")
                       .Help("Public connections accepted or refused, by listener and outcome")
                       .Register(registry)),
      routes_(prometheus::BuildCounter()
                  .Name("inkwire_edge_sni_routes_total")
                  .Help("Where the shared TLS listener sent each connection (by the ClientHello's SNI)")
                  .Register(registry)),
      handshake_failures_(prometheus::BuildCounter()
                              .Name("inkwire_edge_tls_handshake_failures_total")
                              .Help("TLS handshakes with third parties that failed, by reason")
                              .Register(registry)),
      timeouts_(prometheus::BuildCounter()
                    .Name("inkwire_edge_timeouts_total")
                    .Help("Public connections cut by a deadline, by kind")
                    .Register(registry)),
      errors_(prometheus::BuildCounter()
                  .Name("inkwire_edge_error_responses_total")
                  .Help("Answers the edge made itself, by x-inkwire-error code")
                  .Register(registry)),
      requests_(prometheus::BuildCounter()
                    .Name("inkwire_edge_requests_total")
                    .Help("Public requests, by protocol")
                    .Register(registry)),
      tunnel_requests_(prometheus::BuildCounter()
                           .Name("inkwire_edge_tunnel_requests_total")
                           .Help("Public requests per tunnel, by status class")
                           .Register(registry)),
      tunnel_bytes_(prometheus::BuildCounter()
                        .Name("inkwire_edge_tunnel_bytes_total")
                        .Help("Body and WebSocket bytes per tunnel, by direction (in = from third parties)")
                        .Register(registry)),
      tunnel_seconds_(prometheus::BuildHistogram()
                          .Name("inkwire_edge_tunnel_request_seconds")
                          .Help("Public request duration per tunnel, from the request head to the last response byte")
                          .Register(registry)),
      tunnel_websockets_(prometheus::BuildGauge()
                             .Name("inkwire_edge_tunnel_websockets_open")
                             .Help("Open public WebSockets per tunnel")
                             .Register(registry)),
      max_tunnels_(max_tunnels) {}

prometheus::Counter& EdgeMetrics::cached(prometheus::Family<prometheus::Counter>& family, const std::string& key,
                                         const std::map<std::string, std::string>& labels) {
  auto it = counters_.find(key);
  if (it != counters_.end()) return *it->second;
  prometheus::Counter& counter = family.Add(labels);
  counters_.emplace(key, &counter);
  return counter;
}

prometheus::Counter& EdgeMetrics::connection(std::string_view listener, std::string_view outcome) {
  return cached(connections_, "c|" + std::string(listener) + "|" + std::string(outcome),
                {{"listener", std::string(listener)}, {"outcome", std::string(outcome)}});
}

prometheus::Counter& EdgeMetrics::route(std::string_view target) {
  return cached(routes_, "r|" + std::string(target), {{"target", std::string(target)}});
}

prometheus::Counter& EdgeMetrics::handshake_failure(std::string_view reason) {
  return cached(handshake_failures_, "h|" + std::string(reason), {{"reason", std::string(reason)}});
}

prometheus::Counter& EdgeMetrics::timeout(std::string_view kind) {
  return cached(timeouts_, "t|" + std::string(kind), {{"kind", std::string(kind)}});
}

prometheus::Counter& EdgeMetrics::error(std::string_view code) {
  return cached(errors_, "e|" + std::string(code), {{"code", std::string(code)}});
}

prometheus::Counter& EdgeMetrics::request(std::string_view protocol) {
  return cached(requests_, "q|" + std::string(protocol), {{"protocol", std::string(protocol)}});
}

TunnelSeries& EdgeMetrics::tunnel(const std::string& name) {
  auto it = tunnels_.find(name);
  if (it != tunnels_.end()) return it->second;
  // Past the cap every new tunnel shares one series (the cap counts named tunnels only).
  const bool own = static_cast<int>(tunnels_.size()) < max_tunnels_;
  const std::string label = own ? name : kOther;
  if (!own) {
    if (auto other = tunnels_.find(kOther); other != tunnels_.end()) return other->second;
  }
  TunnelSeries series;
  static constexpr const char* kClasses[] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (int c = 1; c <= 5; ++c) series.requests[c] = &tunnel_requests_.Add({{"tunnel", label}, {"class", kClasses[c]}});
  series.bytes_in = &tunnel_bytes_.Add({{"tunnel", label}, {"direction", "in"}});
  series.bytes_out = &tunnel_bytes_.Add({{"tunnel", label}, {"direction", "out"}});
  series.seconds = &tunnel_seconds_.Add(
      {{"tunnel", label}},
      prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  series.websockets_open = &tunnel_websockets_.Add({{"tunnel", label}});
  return tunnels_.emplace(label, series).first->second;
}

}  // namespace inkwire::edge
