#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/uuid.h"

namespace inkwire::controlplane {

enum class TlsMode { edge, passthrough };
enum class TunnelStatus { awaiting_cert, active, delete_pending, deleted };
enum class KeyScope { admin, member };

std::string_view to_string(TlsMode mode);
std::string_view to_string(TunnelStatus status);
std::string_view to_string(KeyScope scope);
std::optional<TlsMode> parse_tls_mode(std::string_view text);
std::optional<TunnelStatus> parse_tunnel_status(std::string_view text);
std::optional<KeyScope> parse_key_scope(std::string_view text);

struct TunnelRecord {
  Uuid id;
  Uuid organization_id;
  std::string tunnel_name;
  std::optional<std::string> description;
  TlsMode tls_mode = TlsMode::edge;
  TunnelStatus status = TunnelStatus::active;
  std::optional<std::string> cert_pem;
  std::optional<std::string> cert_fingerprint_sha256;
  std::optional<Timestamp> cert_expires_at;
  std::optional<Timestamp> last_connected_at;
  std::optional<std::string> last_connected_ip_addr;
  bool currently_connected = false;
  std::optional<Timestamp> restore_deadline_at;
  std::string metadata_json = "{}";  // compact JSON object text
  Timestamp created_at;
  Timestamp updated_at;
};

struct OrganizationRecord {
  Uuid id;
  std::string name;
  bool disabled = false;
  std::optional<int> daily_create_limit;
  Timestamp created_at;
};

struct ApiKeyRecord {
  Uuid id;
  Uuid organization_id;
  KeyScope scope = KeyScope::member;
  std::optional<std::string> description;
  std::string secret_sha256;
  Timestamp created_at;
  std::optional<Timestamp> revoked_at;
  bool organization_disabled = false;                   // joined in at lookup
  std::optional<int> organization_daily_create_limit;   // joined in at lookup
};

// Who did something, for the audit log (written in the same transaction as the change).
struct Actor {
  Uuid organization_id;
  std::optional<Uuid> api_key_id;  // empty for CLI/admin actions and the reaper
  std::string source_ip;           // empty when not from the network
};

struct AuditRecord {
  std::int64_t id = 0;
  Timestamp at;
  std::optional<Uuid> organization_id;
  std::optional<Uuid> api_key_id;
  std::string action;
  std::optional<Uuid> tunnel_id;
  std::optional<std::string> source_ip;
  std::optional<std::string> detail;
};

}  // namespace inkwire::controlplane
