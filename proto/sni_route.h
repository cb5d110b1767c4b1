#pragma once
// Where the shared port-443 listener sends a connection, decided from the ClientHello's SNI alone
// (PROTOCOL.md §8 A31): agents dial the zone itself (or an IP, with no SNI), third parties dial
// {name}.{zone}. Pure; the listener looks the tunnel up afterwards (passthrough or terminate).

#include <optional>
#include <string>
#include <string_view>

namespace inkwire::proto {

enum class SniTarget {
  relay,         // no SNI, or SNI equal to the zone: an agent's data-plane connection
  tunnel,        // {name}.{zone} with a well-formed tunnel name: the edge (lookup by name)
  unknown_name,  // under the zone but no tunnel could have that name (a.b.zone, bad label): 404 page
  outside_zone,  // anything else: refused with a TLS unrecognized_name alert, never a default route
};

struct SniRoute {
  SniTarget target = SniTarget::relay;
  std::string tunnel_name;  // for SniTarget::tunnel
};

// `sni` is as parsed from the ClientHello (lowercase, no trailing dot); `zone` is the configured
// zone (lowercase DNS name or IPv4 literal).
SniRoute route_by_sni(const std::optional<std::string>& sni, std::string_view zone);

}  // namespace inkwire::proto
