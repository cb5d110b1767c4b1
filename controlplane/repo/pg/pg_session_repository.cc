#include "controlplane/repo/pg/pg_session_repository.h"

#include <pqxx/pqxx>

#include "common/time_format.h"

namespace inkwire::controlplane {
namespace {
constexpr const char* kLookup = "session_lookup";
constexpr const char* kLookupByName = "session_lookup_by_name";
constexpr const char* kConnected = "session_connected";
constexpr const char* kDisconnected = "session_disconnected";
}  // namespace

PgSessionRepository::PgSessionRepository(PgPool& pool) : pool_(pool) {
  pool_.add_prepared(kLookup,
                     "SELECT t.id::text, t.organization_id::text, t.status, t.tls_mode, t.secret_sha256, o.disabled"
                     " FROM tunnels t JOIN organizations o ON o.id = t.organization_id"
                     " WHERE t.id = $1 AND t.status <> 'deleted'"
                     " AND NOT (t.status = 'delete_pending' AND t.restore_deadline_at <= inkwire_ts($2))");
  // The edge's lookup by public name: no secret hash (it never authenticates anyone).
  pool_.add_prepared(kLookupByName,
                     "SELECT t.id::text, t.organization_id::text, t.status, t.tls_mode, o.disabled"
                     " FROM tunnels t JOIN organizations o ON o.id = t.organization_id"
                     " WHERE t.tunnel_name = $1 AND t.status <> 'deleted'"
                     " AND NOT (t.status = 'delete_pending' AND t.restore_deadline_at <= inkwire_ts($2))");
  pool_.add_prepared(kConnected,
                     "UPDATE tunnels SET last_connected_at = inkwire_ts($3), last_connected_ip_addr = $2,"
                     " currently_connected = true WHERE id = $1 AND status <> 'deleted'");
  pool_.add_prepared(kDisconnected, "UPDATE tunnels SET currently_connected = false WHERE id = $1");
}

boost::asio::awaitable<Expected<std::optional<HelloRecord>, DbError>> PgSessionRepository::lookup_for_hello(
    Uuid id, Timestamp now) {
  co_return co_await pool_.run([&](pqxx::connection& c) -> std::optional<HelloRecord> {
    pqxx::nontransaction tx(c);
    auto rows = tx.exec_prepared(kLookup, id.to_string(), to_unix_micros(now));
    if (rows.empty()) return std::nullopt;
    const auto& r = rows[0];
    HelloRecord h;
    h.id = *Uuid::parse(r[0].c_str());
    h.organization_id = *Uuid::parse(r[1].c_str());
    h.status = parse_tunnel_status(r[2].c_str()).value_or(TunnelStatus::deleted);
    h.tls_mode = parse_tls_mode(r[3].c_str()).value_or(TlsMode::edge);
    h.secret_sha256 = std::string(r[4].c_str(), r[4].size());
    h.organization_disabled = r[5].c_str()[0] == 't';
    return h;
  });
}

boost::asio::awaitable<Expected<std::optional<HelloRecord>, DbError>> PgSessionRepository::lookup_by_name(
    std::string name, Timestamp now) {
  co_return co_await pool_.run([&](pqxx::connection& c) -> std::optional<HelloRecord> {
    pqxx::nontransaction tx(c);
    auto rows = tx.exec_prepared(kLookupByName, name, to_unix_micros(now));
    if (rows.empty()) return std::nullopt;
    const auto& r = rows[0];
    HelloRecord h;
    h.id = *Uuid::parse(r[0].c_str());
    h.organization_id = *Uuid::parse(r[1].c_str());
    h.status = parse_tunnel_status(r[2].c_str()).value_or(TunnelStatus::deleted);
    h.tls_mode = parse_tls_mode(r[3].c_str()).value_or(TlsMode::edge);
    h.organization_disabled = r[4].c_str()[0] == 't';
    return h;
  });
}

boost::asio::awaitable<Expected<Unit, DbError>> PgSessionRepository::mark_connected(Uuid id, std::string ip,
                                                                                   Timestamp now) {
  co_return co_await pool_.run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec_prepared(kConnected, id.to_string(), ip, to_unix_micros(now));
    return Unit{};
  });
}

boost::asio::awaitable<Expected<Unit, DbError>> PgSessionRepository::mark_disconnected(Uuid id) {
  co_return co_await pool_.run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec_prepared(kDisconnected, id.to_string());
    return Unit{};
  });
}

}  // namespace inkwire::controlplane
