#include "proto/tunnel_name.h"

namespace inkwire::proto {
namespace {
bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
}  // namespace

std::string_view tunnel_name_error(std::string_view name) {
  if (name.size() < kTunnelNameMinLength) return "tunnel_name must be at least 3 characters";
  if (name.size() > kTunnelNameMaxLength) return "tunnel_name must be at most 63 characters";
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '-') {
      if (i > 0 && name[i - 1] == '-') return "tunnel_name must not contain two hyphens in a row";
      continue;
    }
    if (!is_alnum(c)) return "tunnel_name may contain only lowercase letters, digits and hyphens";
  }
  if (!is_alnum(name.front()) || !is_alnum(name.back()))
    return "tunnel_name must start and end with a letter or digit";
  return {};
}

}  // namespace inkwire::proto
