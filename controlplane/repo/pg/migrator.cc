#include "controlplane/repo/pg/migrator.h"

#include <pqxx/pqxx>

namespace inkwire::controlplane {
namespace {

// Arbitrary constant shared by every inkwired: the advisory lock that serialises migrations.
constexpr std::int64_t kMigrationLock = 0x696e6b77697265;  // "inkwire"

int current_version(pqxx::transaction_base& tx) {
  auto exists = tx.exec1("SELECT to_regclass('schema_migrations') IS NOT NULL");
  if (!exists[0].as<bool>()) return 0;
  return tx.exec1("SELECT coalesce(max(version), 0) FROM schema_migrations")[0].as<int>();
}

}  // namespace

Expected<std::vector<std::string>, std::string> Migrator::migrate(pqxx::connection& conn) const {
  std::vector<std::string> applied;
  try {
    pqxx::work tx(conn);
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLock);
    tx.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    const int current = current_version(tx);
    if (current > latest_version())
      return unexpected("database schema is at version " + std::to_string(current) + " but this inkwired knows only up to " +
                        std::to_string(latest_version()) + "; upgrade inkwired");
    for (const auto& m : migrations_) {
      if (m.version <= current) continue;
      tx.exec(m.sql);
      tx.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name);
      applied.push_back(m.name);
    }
    tx.commit();
  } catch (const std::exception& e) {
    return unexpected(std::string("migration failed: ") + e.what());
  }
  return applied;
}

Expected<int, std::string> Migrator::check(pqxx::connection& conn) const {
  try {
    pqxx::nontransaction tx(conn);
    const int current = current_version(tx);
    if (current > latest_version())
      return unexpected("database schema is at version " + std::to_string(current) + " but this inkwired knows only up to " +
                        std::to_string(latest_version()) + "; upgrade inkwired");
    if (current < latest_version())
      return unexpected("database schema is at version " + std::to_string(current) + ", expected " +
                        std::to_string(latest_version()) + "; run `inkwired migrate`");
    return current;
  } catch (const std::exception& e) {
    return unexpected(std::string("cannot read the schema version: ") + e.what());
  }
}

}  // namespace inkwire::controlplane
