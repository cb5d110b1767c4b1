#include "tests/support/test_database.h"

#include <pqxx/pqxx>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>
#include <unistd.h>

#include "controlplane/repo/pg/migrator.h"

namespace inkwire::testing {

std::string test_cluster_admin_url() {
  const char* dir = std::getenv("INKWIRE_TEST_PG_DIR");
  if (!dir) throw std::runtime_error("INKWIRE_TEST_PG_DIR is not set: run through ctest (fixture 'pg')");
  std::ifstream in(std::string(dir) + "/url");
  std::string url;
  if (!std::getline(in, url) || url.empty())
    throw std::runtime_error(std::string("no cluster URL in ") + dir + "/url: is the pg fixture running?");
  return url;
}

std::string with_database(const std::string& url, const std::string& database) {
  const auto slash = url.rfind('/');
  const auto query = url.find('?', slash);
  return url.substr(0, slash + 1) + database + (query == std::string::npos ? "" : url.substr(query));
}

std::string TestDatabase::create_empty(const std::string& admin_url, const std::string& name) {
  pqxx::connection c(admin_url);
  pqxx::nontransaction tx(c);
  tx.exec("CREATE DATABASE " + tx.quote_name(name));
  return with_database(admin_url, name);
}

TestDatabase::TestDatabase() : admin_url_(test_cluster_admin_url()) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  name_ = "t_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + std::to_string(rd() % 100000);
  url_ = create_empty(admin_url_, name_);
  pqxx::connection c(url_);
  controlplane::Migrator migrator(controlplane::embedded_migrations());
  auto r = migrator.migrate(c);
  if (!r) throw std::runtime_error(r.error());
}

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection c(admin_url_);
    pqxx::nontransaction tx(c);
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name_) + " WITH (FORCE)");
  } catch (...) {
    // The cluster is deleted at the end of the run anyway.
  }
}

}  // namespace inkwire::testing
