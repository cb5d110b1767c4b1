#include "proto/protocol_constants.h"

#include <algorithm>

namespace inkwire::proto {

std::string_view route_kind_name(RouteKind kind) {
  switch (kind) {
    case RouteKind::webhook:
      return route_kind::kWebhook;
    case RouteKind::ws_upgrade:
      return route_kind::kWsUpgrade;
    case RouteKind::tcp_stream:
      return route_kind::kTcpStream;
  }
  return route_kind::kWebhook;  // unreachable; keeps -Wreturn-type quiet
}

std::optional<RouteKind> parse_route_kind(std::string_view value) {
  if (value == route_kind::kWebhook) return RouteKind::webhook;
  if (value == route_kind::kWsUpgrade) return RouteKind::ws_upgrade;
  if (value == route_kind::kTcpStream) return RouteKind::tcp_stream;
  return std::nullopt;
}

bool is_hop_by_hop_request_header(std::string_view lowercase_name) {
  return std::find(kHopByHopRequest.begin(), kHopByHopRequest.end(), lowercase_name) != kHopByHopRequest.end();
}

bool is_hop_by_hop_response_header(std::string_view lowercase_name) {
  return std::find(kHopByHopResponse.begin(), kHopByHopResponse.end(), lowercase_name) !=
         kHopByHopResponse.end();
}

}  // namespace inkwire::proto
