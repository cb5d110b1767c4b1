#pragma once
#include <string>
#include <vector>

#include <pqxx/connection>

#include "common/expected.h"


namespace inkwire::controlplane {

struct Migration {
  int version;
  std::string name;  // e.g. "0001_initial"
  std::string sql;
};

// migrations/*.sql, compiled into the binary (see cmake/EmbedMigrations.cmake).
const std::vector<Migration>& embedded_migrations();

// Forward-only schema migrations recorded in schema_migrations. Concurrent migrators serialise on
// an advisory lock, so two nodes starting at once apply each migration exactly once.
class Migrator {
 public:
  explicit Migrator(const std::vector<Migration>& migrations) : migrations_(migrations) {}

  // Applies what is missing; returns the names applied (empty when already current).
  // Error: one line (e.g. the schema is newer than this binary knows).
  Expected<std::vector<std::string>, std::string> migrate(pqxx::connection& conn) const;

  // For `serve`: ok only when the schema is exactly at the latest known version.
  Expected<int, std::string> check(pqxx::connection& conn) const;

  int latest_version() const { return migrations_.empty() ? 0 : migrations_.back().version; }

 private:
  const std::vector<Migration>& migrations_;
};

}  // namespace inkwire::controlplane
