#include "controlplane/repo/pg/pg_access_repository.h"

#include <pqxx/pqxx>

#include "common/time_format.h"

namespace inkwire::controlplane {
namespace {

constexpr const char* kFindKey = "key_find";
constexpr const char* kInsertKey = "key_insert";
constexpr const char* kListKeys = "key_list";
constexpr const char* kRevokeKey = "key_revoke";
constexpr const char* kAudit = "access_audit";
constexpr const char* kListAudit = "audit_list";

#define KEY_COLUMNS                                                                                   \
  "k.id::text, k.organization_id::text, k.scope, k.description, k.secret_sha256,"                    \
  " inkwire_us(k.created_at), inkwire_us(k.revoked_at), o.disabled, o.daily_create_limit"

ApiKeyRecord row_to_key(const pqxx::row& r) {
  ApiKeyRecord k;
  k.id = *Uuid::parse(r[0].c_str());
  k.organization_id = *Uuid::parse(r[1].c_str());
  k.scope = parse_key_scope(r[2].c_str()).value_or(KeyScope::member);
  if (!r[3].is_null()) k.description = r[3].as<std::string>();
  k.secret_sha256 = r[4].as<std::string>();
  k.created_at = from_unix_micros(r[5].as<std::int64_t>());
  if (!r[6].is_null()) k.revoked_at = from_unix_micros(r[6].as<std::int64_t>());
  k.organization_disabled = r[7].as<bool>();
  if (!r[8].is_null()) k.organization_daily_create_limit = r[8].as<int>();
  return k;
}

OrganizationRecord row_to_org(const pqxx::row& r) {
  OrganizationRecord o;
  o.id = *Uuid::parse(r[0].c_str());
  o.name = r[1].as<std::string>();
  o.disabled = r[2].as<bool>();
  if (!r[3].is_null()) o.daily_create_limit = r[3].as<int>();
  o.created_at = from_unix_micros(r[4].as<std::int64_t>());
  return o;
}

std::optional<std::string> opt_uuid(const std::optional<Uuid>& u) {
  if (!u) return std::nullopt;
  return u->to_string();
}

std::optional<std::string> opt_nonempty(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

void audit(pqxx::transaction_base& tx, const Actor& actor, const std::string& action, const std::string& detail,
           Timestamp now) {
  tx.exec_prepared(kAudit, to_unix_micros(now), actor.organization_id.to_string(), opt_uuid(actor.api_key_id),
                   action, opt_nonempty(actor.source_ip), detail);
}

void insert_key(pqxx::connection& c, const ApiKeyRecord& key, const Actor& actor) {
  pqxx::work tx(c);
  tx.exec_prepared(kInsertKey, key.id.to_string(), key.organization_id.to_string(), std::string(to_string(key.scope)),
                   key.description, key.secret_sha256, to_unix_micros(key.created_at));
  audit(tx, actor, "api_key.created", key.id.to_string(), key.created_at);
  tx.commit();
}

std::vector<ApiKeyRecord> list_keys(pqxx::connection& c, const Uuid& org) {
  pqxx::nontransaction tx(c);
  std::vector<ApiKeyRecord> out;
  for (const auto& row : tx.exec_prepared(kListKeys, org.to_string())) out.push_back(row_to_key(row));
  return out;
}

bool revoke_key(pqxx::connection& c, const Uuid& key_id, const std::optional<Uuid>& org, const Actor& actor,
                Timestamp now) {
  pqxx::work tx(c);
  auto rows = tx.exec_prepared(kRevokeKey, key_id.to_string(), opt_uuid(org), to_unix_micros(now));
  if (rows.empty()) return false;
  Actor owner = actor;
  owner.organization_id = *Uuid::parse(rows[0][0].c_str());
  audit(tx, owner, "api_key.revoked", key_id.to_string(), now);
  // Every node drops the key from its authentication cache when this commits.
  tx.exec_params("SELECT pg_notify($1, $2)", std::string(PgAccessRepository::kApiKeyEventsChannel),
                 key_id.to_string());
  tx.commit();
  return true;
}

}  // namespace

PgAccessRepository::PgAccessRepository(PgPool& pool) : pool_(pool) {
  pool_.add_prepared(kFindKey, "SELECT " KEY_COLUMNS
                               " FROM api_keys k JOIN organizations o ON o.id = k.organization_id WHERE k.id = $1");
  pool_.add_prepared(kInsertKey,
                     "INSERT INTO api_keys (id, organization_id, scope, description, secret_sha256, created_at)"
                     " VALUES ($1, $2, $3, $4, $5, inkwire_ts($6))");
  pool_.add_prepared(kListKeys, "SELECT " KEY_COLUMNS
                                " FROM api_keys k JOIN organizations o ON o.id = k.organization_id"
                                " WHERE k.organization_id = $1 ORDER BY k.created_at, k.id");
  pool_.add_prepared(kRevokeKey,
                     "UPDATE api_keys SET revoked_at = inkwire_ts($3) WHERE id = $1"
                     " AND ($2::uuid IS NULL OR organization_id = $2) AND revoked_at IS NULL"
                     " RETURNING organization_id::text");
  pool_.add_prepared(kAudit,
                     "INSERT INTO audit_log (at, organization_id, api_key_id, action, source_ip, detail)"
                     " VALUES (inkwire_ts($1), $2, $3, $4, $5, $6)");
  pool_.add_prepared(kListAudit,
                     "SELECT id, inkwire_us(at), organization_id::text, api_key_id::text, action, tunnel_id::text,"
                     " source_ip, detail FROM audit_log WHERE organization_id = $1"
                     " AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3");
}

Expected<OrganizationRecord, DbError> PgAccessRepository::create_organization(const OrganizationRecord& org) {
  return pool_.run_blocking([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto row = tx.exec_params1(
        "INSERT INTO organizations (id, name, disabled, daily_create_limit, created_at)"
        " VALUES ($1, $2, $3, $4, inkwire_ts($5))"
        " RETURNING id::text, name, disabled, daily_create_limit, inkwire_us(created_at)",
        org.id.to_string(), org.name, org.disabled, org.daily_create_limit, to_unix_micros(org.created_at));
    tx.exec_params(
        "INSERT INTO audit_log (at, organization_id, action, detail) VALUES (inkwire_ts($1), $2, 'organization.created', $3)",
        to_unix_micros(org.created_at), org.id.to_string(), org.name);
    tx.commit();
    return row_to_org(row);
  });
}

Expected<std::optional<OrganizationRecord>, DbError> PgAccessRepository::find_organization(
    const std::string& name_or_id) {
  return pool_.run_blocking([&](pqxx::connection& c) -> std::optional<OrganizationRecord> {
    pqxx::nontransaction tx(c);
    const auto as_id = Uuid::parse(name_or_id);
    auto rows = tx.exec_params(
        "SELECT id::text, name, disabled, daily_create_limit, inkwire_us(created_at) FROM organizations"
        " WHERE name = $1 OR id = $2::uuid",
        name_or_id, as_id ? std::optional<std::string>(as_id->to_string()) : std::nullopt);
    if (rows.empty()) return std::nullopt;
    return row_to_org(rows[0]);
  });
}

Expected<bool, DbError> PgAccessRepository::update_organization(Uuid id, std::optional<bool> disabled,
                                                                 std::optional<std::optional<int>> limit) {
  return pool_.run_blocking([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto rows = tx.exec_params(
        "UPDATE organizations SET disabled = coalesce($2, disabled),"
        " daily_create_limit = CASE WHEN $3 THEN $4 ELSE daily_create_limit END WHERE id = $1 RETURNING name",
        id.to_string(), disabled, limit.has_value(), limit.value_or(std::nullopt));
    if (rows.empty()) return false;
    tx.exec_params(
        "INSERT INTO audit_log (at, organization_id, action, detail) VALUES (now(), $1, 'organization.updated', $2)",
        id.to_string(), std::string(disabled ? (*disabled ? "disabled" : "enabled") : "limit changed"));
    if (disabled) {
      tx.exec_params("SELECT pg_notify($1, $2)", std::string(kOrganizationEventsChannel),
                     std::string(R"({"organization_id":")") + id.to_string() + R"(","disabled":)" +
                         (*disabled ? "true" : "false") + "}");
    }
    tx.commit();
    return true;
  });
}

Expected<Unit, DbError> PgAccessRepository::insert_api_key(const ApiKeyRecord& key, const Actor& actor) {
  return pool_.run_blocking([&](pqxx::connection& c) {
    insert_key(c, key, actor);
    return Unit{};
  });
}

Expected<std::vector<ApiKeyRecord>, DbError> PgAccessRepository::list_api_keys_blocking(Uuid org) {
  return pool_.run_blocking([&](pqxx::connection& c) { return list_keys(c, org); });
}

Expected<bool, DbError> PgAccessRepository::revoke_api_key_blocking(Uuid key_id, std::optional<Uuid> org,
                                                                    const Actor& actor, Timestamp now) {
  return pool_.run_blocking([&](pqxx::connection& c) { return revoke_key(c, key_id, org, actor, now); });
}

boost::asio::awaitable<Expected<std::optional<ApiKeyRecord>, DbError>> PgAccessRepository::find_api_key(Uuid key_id) {
  co_return co_await pool_.run([&](pqxx::connection& c) -> std::optional<ApiKeyRecord> {
    pqxx::nontransaction tx(c);
    auto rows = tx.exec_prepared(kFindKey, key_id.to_string());
    if (rows.empty()) return std::nullopt;
    return row_to_key(rows[0]);
  });
}

boost::asio::awaitable<Expected<Unit, DbError>> PgAccessRepository::create_api_key(ApiKeyRecord key, Actor actor) {
  co_return co_await pool_.run([&](pqxx::connection& c) {
    insert_key(c, key, actor);
    return Unit{};
  });
}

boost::asio::awaitable<Expected<std::vector<ApiKeyRecord>, DbError>> PgAccessRepository::list_api_keys(Uuid org) {
  co_return co_await pool_.run([&](pqxx::connection& c) { return list_keys(c, org); });
}

boost::asio::awaitable<Expected<bool, DbError>> PgAccessRepository::revoke_api_key(Uuid key_id, Uuid org, Actor actor,
                                                                                   Timestamp now) {
  co_return co_await pool_.run([&](pqxx::connection& c) { return revoke_key(c, key_id, org, actor, now); });
}

boost::asio::awaitable<Expected<std::vector<AuditRecord>, DbError>> PgAccessRepository::list_audit(
    Uuid org, std::optional<std::int64_t> before_id, int limit) {
  co_return co_await pool_.run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    std::vector<AuditRecord> out;
    for (const auto& r : tx.exec_prepared(kListAudit, org.to_string(), before_id, limit)) {
      AuditRecord a;
      a.id = r[0].as<std::int64_t>();
      a.at = from_unix_micros(r[1].as<std::int64_t>());
      if (!r[2].is_null()) a.organization_id = Uuid::parse(r[2].c_str());
      if (!r[3].is_null()) a.api_key_id = Uuid::parse(r[3].c_str());
      a.action = r[4].as<std::string>();
      if (!r[5].is_null()) a.tunnel_id = Uuid::parse(r[5].c_str());
      if (!r[6].is_null()) a.source_ip = r[6].as<std::string>();
      if (!r[7].is_null()) a.detail = r[7].as<std::string>();
      out.push_back(std::move(a));
    }
    return out;
  });
}

boost::asio::awaitable<Expected<Unit, DbError>> PgAccessRepository::ping() {
  co_return co_await pool_.run([](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec("SELECT 1");
    return Unit{};
  });
}

}  // namespace inkwire::controlplane
