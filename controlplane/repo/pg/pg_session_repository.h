#pragma once
#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>

#include "common/expected.h"
#include "controlplane/repo/pg/pg_pool.h"
#include "controlplane/repo/records.h"

namespace inkwire::controlplane {

// What the relay needs to answer a hello (PROTOCOL.md §4.3, §8 A1): the tunnel's state and the
// stored secret hash to compare against, plus whether its organisation is disabled.
struct HelloRecord {
  Uuid id;
  Uuid organization_id;
  TunnelStatus status = TunnelStatus::active;
  TlsMode tls_mode = TlsMode::edge;
  std::string secret_sha256;  // lowercase hex; compared in constant time by the caller
  bool organization_disabled = false;
};

// The relay's view of the tunnels table: hello lookups and the connection facts of §8 A34
// (last_connected_at, last_connected_ip_addr, currently_connected). Kept apart from
// PgTunnelRepository because the API never reads secret hashes.
class PgSessionRepository {
 public:
  explicit PgSessionRepository(PgPool& pool);

  // nullopt for an unknown, finalised or expired (past its grace window) tunnel: all answered 401.
  boost::asio::awaitable<Expected<std::optional<HelloRecord>, DbError>> lookup_for_hello(Uuid id, Timestamp now);
  // The edge's lookup of a public name ({name}.{zone}); the same visibility rules, no secret hash.
  boost::asio::awaitable<Expected<std::optional<HelloRecord>, DbError>> lookup_by_name(std::string name, Timestamp now);
  // At a successful hello.
  boost::asio::awaitable<Expected<Unit, DbError>> mark_connected(Uuid id, std::string ip, Timestamp now);
  // When the tunnel's last session on this node ends.
  boost::asio::awaitable<Expected<Unit, DbError>> mark_disconnected(Uuid id);

 private:
  PgPool& pool_;
};

}  // namespace inkwire::controlplane
