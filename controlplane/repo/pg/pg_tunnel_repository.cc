#include "controlplane/repo/pg/pg_tunnel_repository.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <pqxx/pqxx>

#include "common/time_format.h"
#include "controlplane/repo/pg/pg_time.h"

namespace inkwire::controlplane {
namespace {

using Kind = RepoFailure::Kind;

// The column list every statement returns, in the order row_to_tunnel reads it.
// Timestamps come back as PostgreSQL's own ISO text (the session runs in UTC): converting them in
// SQL (extract/epoch arithmetic) tripled the time of listing 10,000 tunnels.
#define TUNNEL_COLUMNS                                                                                 \
  "id::text, organization_id::text, tunnel_name, description, tls_mode, status, "                     \
  "cert_pem, cert_fingerprint_sha256, cert_expires_at, last_connected_at, "                           \
  "last_connected_ip_addr, currently_connected, restore_deadline_at, metadata, created_at, updated_at"

// A tunnel the caller can still see: not finalised, and not past its grace window (the reaper
// may not have run yet; an expired tunnel must already behave as removed).
#define LIVE(now_param) \
  " status <> 'deleted' AND NOT (status = 'delete_pending' AND restore_deadline_at <= inkwire_ts(" now_param "))"

constexpr int kCountShards = 16;
constexpr const char* kFinalizeExpired = "tunnel_finalize_expired";
constexpr const char* kFinalizeExpiredName = "tunnel_finalize_expired_name";
constexpr const char* kGet = "tunnel_get";
constexpr const char* kList = "tunnel_list";
constexpr const char* kStatus = "tunnel_status";
constexpr const char* kCount = "tunnel_count_create";
constexpr const char* kInsert = "tunnel_insert";
constexpr const char* kUpdate = "tunnel_update";
constexpr const char* kMarkDeleted = "tunnel_mark_deleted";
constexpr const char* kRestore = "tunnel_restore";
constexpr const char* kFinalize = "tunnel_finalize";
constexpr const char* kRotate = "tunnel_rotate";
constexpr const char* kCert = "tunnel_cert";
constexpr const char* kReap = "tunnel_reap";
constexpr const char* kAudit = "tunnel_audit_notify";

std::optional<Timestamp> ts(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return parse_pg_timestamptz(f.c_str());
}

// Text fields are copied straight from libpq's buffer (pqxx's as<std::string>() goes through
// its conversion machinery: measurable when listing 10,000 tunnels).
std::string text(const pqxx::field& f) { return std::string(f.c_str(), f.size()); }

std::optional<std::string> opt_text(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return text(f);
}

// The secret hash is not read: the API never shows it, and the relay reads it on its own path.
TunnelRecord row_to_tunnel(const pqxx::row& r) {
  TunnelRecord t;
  t.id = *Uuid::parse(std::string_view(r[0].c_str(), r[0].size()));
  t.organization_id = *Uuid::parse(std::string_view(r[1].c_str(), r[1].size()));
  t.tunnel_name = text(r[2]);
  t.description = opt_text(r[3]);
  t.tls_mode = parse_tls_mode(r[4].c_str()).value_or(TlsMode::edge);
  t.status = parse_tunnel_status(r[5].c_str()).value_or(TunnelStatus::active);
  t.cert_pem = opt_text(r[6]);
  t.cert_fingerprint_sha256 = opt_text(r[7]);
  t.cert_expires_at = ts(r[8]);
  t.last_connected_at = ts(r[9]);
  t.last_connected_ip_addr = opt_text(r[10]);
  t.currently_connected = r[11].c_str()[0] == 't';
  t.restore_deadline_at = ts(r[12]);
  t.metadata_json = text(r[13]);
  t.created_at = *ts(r[14]);
  t.updated_at = *ts(r[15]);
  return t;
}

std::string notify_payload(std::string_view event, const TunnelRecord& t) {
  boost::json::object o;
  o["event"] = event;
  o["tunnel_id"] = t.id.to_string();
  o["organization_id"] = t.organization_id.to_string();
  o["tunnel_name"] = t.tunnel_name;
  o["status"] = to_string(t.status);
  return boost::json::serialize(o);
}

std::optional<std::string> opt_uuid(const std::optional<Uuid>& u) {
  if (!u) return std::nullopt;
  return u->to_string();
}

std::optional<std::string> opt_nonempty(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

// Audit row and event row in one round trip; both take effect at COMMIT.
void audit_and_notify(pqxx::transaction_base& tx, const Actor& actor, std::string_view action, const TunnelRecord& t,
                      Timestamp now, const std::optional<std::string>& detail = std::nullopt) {
  tx.exec_prepared(kAudit, to_unix_micros(now), actor.organization_id.to_string(), opt_uuid(actor.api_key_id),
                   std::string(action), t.id.to_string(), opt_nonempty(actor.source_ip), detail,
                   notify_payload(action, t), std::string(PgTunnelRepository::kTunnelEventsChannel));
}

// After a conditional UPDATE matched nothing: was the tunnel missing or in the wrong state?
RepoFailure explain_miss(pqxx::transaction_base& tx, const Uuid& id, const Uuid& org, Timestamp now) {
  auto r = tx.exec_prepared(kStatus, id.to_string(), org.to_string(), to_unix_micros(now));
  if (r.empty()) return {Kind::not_found, std::nullopt};
  return {Kind::conflict, parse_tunnel_status(r[0][0].c_str())};
}

// Runs one conditional UPDATE (`statement` with `args`), explains a miss, and writes the audit row:
// the shape shared by every lifecycle transition.
template <typename... Args>
boost::asio::awaitable<RepoResult<TunnelRecord>> transition(PgPool& pool, const std::function<void()>& committed,
                                                            const char* action, const char* statement, Uuid id,
                                                            Actor actor, Timestamp now, Args... args) {
  auto r = co_await pool.run([&](pqxx::connection& c) -> RepoResult<TunnelRecord> {
    pqxx::work tx(c);
    auto rows = tx.exec_prepared(statement, id.to_string(), actor.organization_id.to_string(), args...);
    if (rows.empty()) return unexpected(explain_miss(tx, id, actor.organization_id, now));
    TunnelRecord t = row_to_tunnel(rows[0]);
    audit_and_notify(tx, actor, action, t, now);
    tx.commit();
    return t;
  });
  if (!r) co_return unexpected(RepoFailure{Kind::unavailable, std::nullopt});
  if (r->has_value() && committed) committed();
  co_return std::move(*r);
}

}  // namespace

PgTunnelRepository::PgTunnelRepository(PgPool& pool) : pool_(pool) {
  pool_.add_prepared(kGet, "SELECT " TUNNEL_COLUMNS " FROM tunnels WHERE id = $1 AND organization_id = $2 AND" LIVE("$3"));
  pool_.add_prepared(kList, "SELECT " TUNNEL_COLUMNS
                            " FROM tunnels WHERE organization_id = $1 AND" LIVE("$2")
                            " ORDER BY tunnels.created_at, tunnels.id");
  pool_.add_prepared(kStatus, "SELECT status FROM tunnels WHERE id = $1 AND organization_id = $2 AND" LIVE("$3"));
  pool_.add_prepared(kFinalizeExpired,
                     "UPDATE tunnels SET status = 'deleted', restore_deadline_at = NULL, currently_connected = false,"
                     " finalized_at = inkwire_ts($3), updated_at = inkwire_ts($3)"
                     " WHERE id = $1 AND organization_id = $2 AND status = 'delete_pending'"
                     " AND restore_deadline_at <= inkwire_ts($3) RETURNING " TUNNEL_COLUMNS);
  pool_.add_prepared(kFinalizeExpiredName,
                     "UPDATE tunnels SET status = 'deleted', restore_deadline_at = NULL, currently_connected = false,"
                     " finalized_at = inkwire_ts($2), updated_at = inkwire_ts($2)"
                     " WHERE tunnel_name = $1 AND status = 'delete_pending'"
                     " AND restore_deadline_at <= inkwire_ts($2) RETURNING " TUNNEL_COLUMNS);
  // One shard row is incremented (no single hot row); the total is that row plus the others as
  // committed. Concurrent creates may overshoot the limit by at most their number.
  pool_.add_prepared(kCount,
                     "WITH up AS (INSERT INTO tunnel_create_counts (organization_id, day, shard, created)"
                     " VALUES ($1, (inkwire_ts($2) AT TIME ZONE 'UTC')::date, $3, 1)"
                     " ON CONFLICT (organization_id, day, shard) DO UPDATE"
                     " SET created = tunnel_create_counts.created + 1 RETURNING created)"
                     " SELECT (SELECT created FROM up) + coalesce((SELECT sum(created) FROM tunnel_create_counts"
                     " WHERE organization_id = $1 AND day = (inkwire_ts($2) AT TIME ZONE 'UTC')::date"
                     " AND shard <> $3), 0)");
  pool_.add_prepared(kInsert,
                     "INSERT INTO tunnels (id, organization_id, tunnel_name, description, tls_mode, status,"
                     " secret_sha256, metadata, created_at, updated_at)"
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, inkwire_ts($9), inkwire_ts($9))"
                     " RETURNING " TUNNEL_COLUMNS);
  pool_.add_prepared(kUpdate,
                     "UPDATE tunnels SET description = CASE WHEN $3 THEN $4 ELSE description END,"
                     " metadata = CASE WHEN $5 THEN $6 ELSE metadata END, updated_at = inkwire_ts($7)"
                     " WHERE id = $1 AND organization_id = $2 AND" LIVE("$7") " RETURNING " TUNNEL_COLUMNS);
  pool_.add_prepared(kMarkDeleted,
                     "UPDATE tunnels SET status = 'delete_pending', restore_deadline_at = inkwire_ts($4),"
                     " updated_at = inkwire_ts($3)"
                     " WHERE id = $1 AND organization_id = $2 AND status IN ('active', 'awaiting_cert')"
                     " RETURNING " TUNNEL_COLUMNS);
  pool_.add_prepared(kRestore,
                     "UPDATE tunnels SET status = CASE WHEN tls_mode = 'edge' OR cert_pem IS NOT NULL"
                     " THEN 'active' ELSE 'awaiting_cert' END, restore_deadline_at = NULL,"
                     " updated_at = inkwire_ts($3)"
                     " WHERE id = $1 AND organization_id = $2 AND status = 'delete_pending'"
                     " AND restore_deadline_at > inkwire_ts($3) RETURNING " TUNNEL_COLUMNS);
  // Force-delete; a tunnel already past its deadline is gone for the caller (404 via explain_miss).
  pool_.add_prepared(kFinalize,
                     "UPDATE tunnels SET status = 'deleted', restore_deadline_at = NULL, currently_connected = false,"
                     " finalized_at = inkwire_ts($3), updated_at = inkwire_ts($3)"
                     " WHERE id = $1 AND organization_id = $2 AND status = 'delete_pending'"
                     " AND restore_deadline_at > inkwire_ts($3) RETURNING " TUNNEL_COLUMNS);
  pool_.add_prepared(kRotate,
                     "UPDATE tunnels SET secret_sha256 = $3, updated_at = inkwire_ts($4)"
                     " WHERE id = $1 AND organization_id = $2 AND" LIVE("$4") " RETURNING " TUNNEL_COLUMNS);
  pool_.add_prepared(kCert,
                     "UPDATE tunnels SET cert_pem = $3, cert_fingerprint_sha256 = $4,"
                     " cert_expires_at = inkwire_ts($5), status = 'active', updated_at = inkwire_ts($6)"
                     " WHERE id = $1 AND organization_id = $2 AND tls_mode = 'passthrough'"
                     " AND status IN ('awaiting_cert', 'active') RETURNING " TUNNEL_COLUMNS);
  // SKIP LOCKED: several nodes may reap at once without waiting on each other.
  pool_.add_prepared(kReap,
                     "UPDATE tunnels SET status = 'deleted', restore_deadline_at = NULL, currently_connected = false,"
                     " finalized_at = inkwire_ts($1), updated_at = inkwire_ts($1)"
                     " WHERE id IN (SELECT id FROM tunnels WHERE status = 'delete_pending'"
                     " AND restore_deadline_at <= inkwire_ts($1) ORDER BY restore_deadline_at LIMIT $2"
                     " FOR UPDATE SKIP LOCKED) RETURNING " TUNNEL_COLUMNS);
  // The audit row and the event (outbox) row in one round trip; EventPublisher sends the NOTIFY.
  pool_.add_prepared(kAudit,
                     "WITH a AS (INSERT INTO audit_log (at, organization_id, api_key_id, action, tunnel_id,"
                     " source_ip, detail) VALUES (inkwire_ts($1), $2, $3, $4, $5, $6, $7))"
                     " INSERT INTO tunnel_events (at, channel, payload) VALUES (inkwire_ts($1), $9, $8)");
}

void PgTunnelRepository::committed() const {
  if (on_commit_) on_commit_();
}

boost::asio::awaitable<RepoResult<TunnelRecord>> PgTunnelRepository::create(NewTunnel n, Actor actor) {
  auto r = co_await insert(n, actor);
  if (r || r.error().kind != Kind::name_taken) co_return r;
  // The name may be held by a tunnel whose grace window ended before the reaper ran: free it, then
  // try once more.
  auto freed = co_await pool_.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto rows = tx.exec_prepared(kFinalizeExpiredName, n.tunnel_name, to_unix_micros(n.now));
    for (const auto& row : rows) {
      TunnelRecord t = row_to_tunnel(row);
      audit_and_notify(tx, Actor{t.organization_id, std::nullopt, {}}, "tunnel.finalized", t, n.now);
    }
    tx.commit();
    return !rows.empty();
  });
  if (!freed || !*freed) co_return r;
  committed();
  co_return co_await insert(n, actor);
}

boost::asio::awaitable<RepoResult<TunnelRecord>> PgTunnelRepository::insert(const NewTunnel& n, const Actor& actor) {
  auto r = co_await pool_.run([&](pqxx::connection& c) -> RepoResult<TunnelRecord> {
    pqxx::work tx(c);
    // The counter row is taken last-but-one so its lock is held only briefly before COMMIT.
    pqxx::result inserted;
    try {
      inserted = tx.exec_prepared(kInsert, n.id.to_string(), n.organization_id.to_string(), n.tunnel_name,
                                  n.description, std::string(to_string(n.tls_mode)),
                                  std::string(to_string(n.tls_mode == TlsMode::edge ? TunnelStatus::active
                                                                                    : TunnelStatus::awaiting_cert)),
                                  n.secret_sha256, n.metadata_json, to_unix_micros(n.now));
    } catch (const pqxx::unique_violation&) {
      return unexpected(RepoFailure{Kind::name_taken, std::nullopt});
    }
    auto count = tx.exec_prepared1(kCount, n.organization_id.to_string(), to_unix_micros(n.now),
                                   static_cast<int>(n.id.bytes()[15] % kCountShards));
    if (count[0].as<int>() > n.daily_create_limit) return unexpected(RepoFailure{Kind::limit_reached, std::nullopt});
    TunnelRecord t = row_to_tunnel(inserted[0]);
    audit_and_notify(tx, actor, "tunnel.created", t, n.now);
    tx.commit();
    return t;
  });
  if (!r) co_return unexpected(RepoFailure{Kind::unavailable, std::nullopt});
  if (r->has_value()) committed();
  co_return std::move(*r);
}

boost::asio::awaitable<RepoResult<TunnelRecord>> PgTunnelRepository::get(Uuid org, Uuid id, Timestamp now) {
  auto r = co_await pool_.run([&](pqxx::connection& c) -> RepoResult<TunnelRecord> {
    pqxx::nontransaction tx(c);
    auto rows = tx.exec_prepared(kGet, id.to_string(), org.to_string(), to_unix_micros(now));
    if (rows.empty()) return unexpected(RepoFailure{Kind::not_found, std::nullopt});
    return row_to_tunnel(rows[0]);
  });
  if (!r) co_return unexpected(RepoFailure{Kind::unavailable, std::nullopt});
  co_return std::move(*r);
}

boost::asio::awaitable<RepoResult<std::vector<TunnelRecord>>> PgTunnelRepository::list(Uuid org, Timestamp now) {
  auto r = co_await pool_.run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    auto rows = tx.exec_prepared(kList, org.to_string(), to_unix_micros(now));
    std::vector<TunnelRecord> out;
    out.reserve(rows.size());
    for (const auto& row : rows) out.push_back(row_to_tunnel(row));
    return out;
  });
  if (!r) co_return unexpected(RepoFailure{Kind::unavailable, std::nullopt});
  co_return std::move(*r);
}

boost::asio::awaitable<RepoResult<TunnelRecord>> PgTunnelRepository::update(Uuid id, TunnelPatch p, Actor actor,
                                                                             Timestamp now) {
  const bool set_description = p.description.has_value();
  const std::optional<std::string> description = set_description ? *p.description : std::nullopt;
  const bool set_metadata = p.metadata_json.has_value();
  const std::string metadata = p.metadata_json.value_or("{}");
  co_return co_await transition(pool_, on_commit_, "tunnel.updated", kUpdate, id, actor, now, set_description, description,
                                set_metadata, metadata, to_unix_micros(now));
}

boost::asio::awaitable<RepoResult<TunnelRecord>> PgTunnelRepository::mark_deleted(Uuid id, Actor actor, Timestamp now,
                                                                                  Timestamp deadline) {
  co_return co_await transition(pool_, on_commit_, "tunnel.deleted", kMarkDeleted, id, actor, now, to_unix_micros(now),
                                to_unix_micros(deadline));
}

boost::asio::awaitable<RepoResult<TunnelRecord>> PgTunnelRepository::restore(Uuid id, Actor actor, Timestamp now) {
  auto r = co_await pool_.run([&](pqxx::connection& c) -> RepoResult<TunnelRecord> {
    pqxx::work tx(c);
    auto rows = tx.exec_prepared(kRestore, id.to_string(), actor.organization_id.to_string(), to_unix_micros(now));
    if (rows.empty()) {
      // Past the deadline and not reaped yet: the tunnel is gone for the caller; finalise it now
      // so the name is free at once.
      auto fin = tx.exec_prepared(kFinalizeExpired, id.to_string(), actor.organization_id.to_string(),
                                  to_unix_micros(now));
      if (fin.empty()) return unexpected(explain_miss(tx, id, actor.organization_id, now));
      audit_and_notify(tx, actor, "tunnel.finalized", row_to_tunnel(fin[0]), now);
      tx.commit();
      return unexpected(RepoFailure{Kind::not_found, std::nullopt});
    }
    TunnelRecord t = row_to_tunnel(rows[0]);
    audit_and_notify(tx, actor, "tunnel.restored", t, now);
    tx.commit();
    return t;
  });
  if (!r) co_return unexpected(RepoFailure{Kind::unavailable, std::nullopt});
  // Also after a miss: an expired tunnel may just have been finalised.
  committed();
  co_return std::move(*r);
}

boost::asio::awaitable<RepoResult<TunnelRecord>> PgTunnelRepository::force_delete(Uuid id, Actor actor,
                                                                                  Timestamp now) {
  co_return co_await transition(pool_, on_commit_, "tunnel.force_deleted", kFinalize, id, actor, now, to_unix_micros(now));
}

boost::asio::awaitable<RepoResult<TunnelRecord>> PgTunnelRepository::rotate_secret(Uuid id, std::string hash,
                                                                                   Actor actor, Timestamp now) {
  co_return co_await transition(pool_, on_commit_, "tunnel.secret_rotated", kRotate, id, actor, now, hash, to_unix_micros(now));
}

boost::asio::awaitable<RepoResult<TunnelRecord>> PgTunnelRepository::record_certificate(Uuid id,
                                                                                        IssuedCertificateFields cert,
                                                                                        Actor actor, Timestamp now) {
  co_return co_await transition(pool_, on_commit_, "tunnel.certificate_issued", kCert, id, actor, now, cert.cert_pem,
                                cert.fingerprint_sha256, to_unix_micros(cert.expires_at), to_unix_micros(now));
}

boost::asio::awaitable<RepoResult<int>> PgTunnelRepository::finalize_expired(Timestamp now, int batch) {
  auto r = co_await pool_.run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto rows = tx.exec_prepared(kReap, to_unix_micros(now), batch);
    for (const auto& row : rows) {
      TunnelRecord t = row_to_tunnel(row);
      audit_and_notify(tx, Actor{t.organization_id, std::nullopt, {}}, "tunnel.finalized", t, now);
    }
    tx.commit();
    return static_cast<int>(rows.size());
  });
  if (!r) co_return unexpected(RepoFailure{Kind::unavailable, std::nullopt});
  if (*r > 0) committed();
  co_return *r;
}

}  // namespace inkwire::controlplane
