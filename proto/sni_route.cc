#include "proto/sni_route.h"

#include "proto/tunnel_name.h"

namespace inkwire::proto {

SniRoute route_by_sni(const std::optional<std::string>& sni, std::string_view zone) {
  if (!sni || sni->empty() || *sni == zone) return {SniTarget::relay, {}};
  const std::string_view host = *sni;
  if (host.size() <= zone.size() + 1 || !host.ends_with(zone) || host[host.size() - zone.size() - 1] != '.')
    return {SniTarget::outside_zone, {}};
  const std::string_view name = host.substr(0, host.size() - zone.size() - 1);
  if (name.find('.') != std::string_view::npos || !is_valid_tunnel_name(name)) return {SniTarget::unknown_name, {}};
  return {SniTarget::tunnel, std::string(name)};
}

}  // namespace inkwire::proto
