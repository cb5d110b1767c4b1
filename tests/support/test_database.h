#pragma once
#include <string>

namespace inkwire::testing {

// A fresh, migrated database in the ctest run's private PostgreSQL cluster (tests/support/pg-cluster,
// found through INKWIRE_TEST_PG_DIR). Dropped when the object goes away, so tests never share state.
class TestDatabase {
 public:
  TestDatabase();
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const std::string& url() const { return url_; }
  const std::string& admin_url() const { return admin_url_; }
  const std::string& name() const { return name_; }

  // Creates an empty (unmigrated) database alongside; for migration tests.
  static std::string create_empty(const std::string& admin_url, const std::string& name);

 private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

// The cluster's admin URL; fails the test (throws) when the fixture is missing.
std::string test_cluster_admin_url();
// Replaces the database name in a postgresql:// URL.
std::string with_database(const std::string& url, const std::string& database);

}  // namespace inkwire::testing
