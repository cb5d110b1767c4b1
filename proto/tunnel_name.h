#pragma once
#include <string_view>

namespace inkwire::proto {

// Tunnel names are DNS labels under the zone (PROTOCOL.md §2.6): 3–63 characters of [a-z0-9-],
// alphanumeric at both ends, never two hyphens in a row. No normalisation: "My-Agent" is invalid,
// not lowercased. Returns an empty view when valid, else a one-line reason.
std::string_view tunnel_name_error(std::string_view name);

inline bool is_valid_tunnel_name(std::string_view name) { return tunnel_name_error(name).empty(); }

inline constexpr std::size_t kTunnelNameMinLength = 3;
inline constexpr std::size_t kTunnelNameMaxLength = 63;

}  // namespace inkwire::proto
