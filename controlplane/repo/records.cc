#include "controlplane/repo/records.h"

namespace inkwire::controlplane {

std::string_view to_string(TlsMode mode) { return mode == TlsMode::edge ? "edge" : "passthrough"; }

std::string_view to_string(TunnelStatus status) {
  switch (status) {
    case TunnelStatus::awaiting_cert: return "awaiting_cert";
    case TunnelStatus::active: return "active";
    case TunnelStatus::delete_pending: return "delete_pending";
    case TunnelStatus::deleted: return "deleted";
  }
  return "active";
}

std::string_view to_string(KeyScope scope) { return scope == KeyScope::admin ? "admin" : "member"; }

std::optional<TlsMode> parse_tls_mode(std::string_view text) {
  if (text == "edge") return TlsMode::edge;
  if (text == "passthrough") return TlsMode::passthrough;
  return std::nullopt;
}

std::optional<TunnelStatus> parse_tunnel_status(std::string_view text) {
  if (text == "awaiting_cert") return TunnelStatus::awaiting_cert;
  if (text == "active") return TunnelStatus::active;
  if (text == "delete_pending") return TunnelStatus::delete_pending;
  if (text == "deleted") return TunnelStatus::deleted;
  return std::nullopt;
}

std::optional<KeyScope> parse_key_scope(std::string_view text) {
  if (text == "admin") return KeyScope::admin;
  if (text == "member") return KeyScope::member;
  return std::nullopt;
}

}  // namespace inkwire::controlplane
