// Forward-only migrations recorded in schema_migrations (issue 2 §1): the Migrator on empty
// databases, two migrators at once, the version check `serve` relies on (the server refuses a
// schema newer than it knows), and the built `inkwired migrate` / `inkwired serve` binaries.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/logging.h"
#include "common/random_source.h"
#include "controlplane/control_plane.h"
#include "controlplane/repo/pg/migrator.h"
#include "tests/fakes/fake_clock.h"
#include "tests/support/lifecycle_test_helpers.h"
#include "tests/support/test_database.h"

extern char** environ;

using namespace inkwire;
using namespace inkwire::testing;
namespace fs = std::filesystem;

namespace {

std::string unique_suffix() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  return std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + std::to_string(rd() % 100000);
}

// An empty (unmigrated) database in the test cluster, dropped when the object goes away.
class ScratchDatabase {
 public:
  ScratchDatabase() : admin_url_(test_cluster_admin_url()), name_("mig_" + unique_suffix()) {
    url_ = TestDatabase::create_empty(admin_url_, name_);
  }
  ~ScratchDatabase() {
    try {
      pqxx::connection c(admin_url_);
      pqxx::nontransaction tx(c);
      tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name_) + " WITH (FORCE)");
    } catch (...) {
      // The cluster is deleted at the end of the run anyway.
    }
  }
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;
  const std::string& url() const { return url_; }

 private:
  std::string admin_url_, name_, url_;
};

// A temporary directory, removed when the object goes away.
class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("inkwire-mig-" + unique_suffix())) { fs::create_directories(path_); }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<std::pair<int, std::string>> recorded_migrations(const std::string& url) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  std::vector<std::pair<int, std::string>> out;
  for (const auto& row : tx.exec("SELECT version, name FROM schema_migrations ORDER BY version"))
    out.emplace_back(row[0].as<int>(), row[1].as<std::string>());
  return out;
}

std::vector<std::string> all_migration_names() {
  std::vector<std::string> out;
  for (const auto& m : controlplane::embedded_migrations()) out.push_back(m.name);
  return out;
}

void migrate_or_throw(const std::string& url) {
  pqxx::connection c(url);
  controlplane::Migrator m(controlplane::embedded_migrations());
  auto r = m.migrate(c);
  if (!r) throw std::runtime_error(r.error());
}

void insert_future_version(const std::string& url) {
  pqxx::connection c(url);
  pqxx::work tx(c);
  tx.exec("INSERT INTO schema_migrations VALUES (9999, 'future')");
  tx.commit();
}

// controlplane::ControlPlane::start() against `url`: the error, or "" when it started (then stopped).
std::string start_control_plane(const std::string& url) {
  TempDir ca;
  Config config;
  config.database.url = url;
  config.database.pool_size = 1;
  config.api.listen = "127.0.0.1:0";
  config.metrics.listen = "";
  config.ca.dir = (ca.path() / "ca").string();
  config.controlplane.reaper_interval_seconds = 3600;
  FakeClock clock;
  SecureRandom random;
  boost::asio::io_context io;
  controlplane::ControlPlane cp(config, clock, random, std::make_shared<prometheus::Registry>(),
                                make_logger("migration-test", "off"));
  auto ok = cp.start(io);
  if (ok) {
    cp.stop();
    cp.close_all();
    io.run_for(std::chrono::seconds(5));
    return "";
  }
  return ok.error();
}

// ---- Running the built inkwired ----

struct ProcessResult {
  int exit_code = -1;  // -1: killed after the time limit
  std::string out, err;
};

fs::path inkwired_binary() {
  // This test is build*/tests/integration/controlplane_lifecycle_test; the server is build*/inkwired/inkwired.
  const fs::path self = fs::read_symlink("/proc/self/exe");
  return self.parent_path().parent_path().parent_path() / "inkwired" / "inkwired";
}

// Runs `args` with the environment minus INKWIRE_* (so the caller's stack settings cannot leak
// into the config), collects stdout and stderr, and kills it after `limit`.
ProcessResult run_process(const std::vector<std::string>& args, std::chrono::milliseconds limit) {
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; ++e)
    if (!std::string_view(*e).starts_with("INKWIRE_")) env_storage.emplace_back(*e);
  std::vector<char*> envp, argv;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> arg_storage = args;
  for (auto& a : arg_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    throw std::runtime_error("cannot run " + args[0] + ": " + std::strerror(rc));
  }

  ProcessResult result;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  bool killed = false;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 && !killed) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    const int n = ::poll(fds, 2, killed ? 1000 : static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (killed) break;
      continue;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        (i == 0 ? result.out : result.err).append(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = killed ? -1 : (WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return result;
}

// A TOML configuration for inkwired with this database URL; returns its path.
std::string write_config(const TempDir& dir, const std::string& database_url) {
  const fs::path file = dir.path() / "inkwired.toml";
  std::ofstream out(file);
  out << "[database]\nurl = \"" << database_url << "\"\nconnect_timeout_seconds = 2\n\n"
      << "[api]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_seconds = 0\n\n"
      << "[metrics]\nlisten = \"\"\n\n"
      << "[ca]\ndir = \"" << (dir.path() / "ca").string() << "\"\n\n"
      << "[log]\nlevel = \"warn\"\n";
  return file.string();
}

std::size_t count_lines(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += c == '\n';
  if (!s.empty() && s.back() != '\n') ++n;
  return n;
}

std::string require_inkwired() {
  const fs::path bin = inkwired_binary();
  if (!fs::exists(bin)) throw std::runtime_error("inkwired not built at " + bin.string() + " (build target inkwired)");
  return bin.string();
}

}  // namespace

TEST(Migration, AppliesTheInitialMigrationToAnEmptyDatabaseAndRecordsIt) {
  ScratchDatabase db;
  controlplane::Migrator migrator(controlplane::embedded_migrations());
  ASSERT_FALSE(controlplane::embedded_migrations().empty());
  EXPECT_EQ(controlplane::embedded_migrations().front().name, "0001_initial");
  pqxx::connection c(db.url());

  auto first = migrator.migrate(c);
  ASSERT_TRUE(first) << first.error();
  ASSERT_FALSE(first->empty());
  EXPECT_EQ(first->front(), "0001_initial");
  EXPECT_EQ(*first, all_migration_names()) << "every embedded migration, in order";
  auto recorded = recorded_migrations(db.url());
  ASSERT_EQ(recorded.size(), controlplane::embedded_migrations().size());
  EXPECT_EQ(recorded.front(), (std::pair<int, std::string>{1, "0001_initial"}));
  auto check = migrator.check(c);
  ASSERT_TRUE(check) << check.error();
  EXPECT_EQ(*check, migrator.latest_version());
  {
    pqxx::nontransaction tx(c);
    for (const char* table : {"organizations", "api_keys", "tunnels", "tunnel_create_counts", "audit_log"})
      EXPECT_TRUE(tx.exec1("SELECT to_regclass(" + tx.quote(table) + ") IS NOT NULL")[0].as<bool>()) << table;
  }

  // Idempotent: nothing to apply, nothing recorded twice.
  auto second = migrator.migrate(c);
  ASSERT_TRUE(second) << second.error();
  EXPECT_TRUE(second->empty());
  EXPECT_EQ(recorded_migrations(db.url()), recorded);
}

TEST(Migration, TwoMigratorsAtOnceBothSucceedAndApplyOnce) {
  for (int round = 0; round < 3; ++round) {
    ScratchDatabase db;
    std::array<std::optional<Expected<std::vector<std::string>, std::string>>, 2> results;
    run_together(2, [&](int i) {
      pqxx::connection c(db.url());
      controlplane::Migrator m(controlplane::embedded_migrations());
      results[static_cast<std::size_t>(i)] = m.migrate(c);
    });
    std::size_t applied = 0;
    for (const auto& r : results) {
      ASSERT_TRUE(r.has_value());
      ASSERT_TRUE(*r) << "round " << round << ": " << r->error();
      applied += (*r)->size();
    }
    EXPECT_EQ(applied, controlplane::embedded_migrations().size()) << "round " << round << ": applied once in total";
    EXPECT_EQ(recorded_migrations(db.url()).size(), controlplane::embedded_migrations().size());
  }
}

TEST(Migration, CheckRefusesASchemaNewerThanTheBinaryAndTheServerDoesNotStart) {
  ScratchDatabase db;
  migrate_or_throw(db.url());
  insert_future_version(db.url());
  controlplane::Migrator migrator(controlplane::embedded_migrations());
  pqxx::connection c(db.url());

  auto check = migrator.check(c);
  ASSERT_FALSE(check) << "check accepted schema version 9999";
  EXPECT_NE(check.error().find("9999"), std::string::npos) << check.error();
  EXPECT_NE(check.error().find(std::to_string(migrator.latest_version())), std::string::npos) << check.error();
  EXPECT_EQ(check.error().find('\n'), std::string::npos) << "one line: " << check.error();
  // migrate refuses too, and changes nothing.
  auto migrate = migrator.migrate(c);
  ASSERT_FALSE(migrate);
  EXPECT_NE(migrate.error().find("9999"), std::string::npos) << migrate.error();
  EXPECT_EQ(recorded_migrations(db.url()).back(), (std::pair<int, std::string>{9999, "future"}));

  // The control plane refuses to start against it, with a one-line reason naming the versions.
  const std::string error = start_control_plane(db.url());
  EXPECT_FALSE(error.empty()) << "ControlPlane::start() accepted a schema newer than it knows";
  EXPECT_NE(error.find("9999"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

TEST(Migration, CheckOnAnUnmigratedDatabaseSaysToRunInkwiredMigrate) {
  ScratchDatabase db;
  controlplane::Migrator migrator(controlplane::embedded_migrations());
  pqxx::connection c(db.url());
  auto check = migrator.check(c);
  ASSERT_FALSE(check);
  EXPECT_NE(check.error().find("inkwired migrate"), std::string::npos) << check.error();
  EXPECT_EQ(check.error().find('\n'), std::string::npos) << check.error();

  const std::string error = start_control_plane(db.url());
  EXPECT_NE(error.find("inkwired migrate"), std::string::npos) << "start: " << error;

  // Once migrated, the same server starts.
  migrate_or_throw(db.url());
  EXPECT_EQ(start_control_plane(db.url()), "");
}

TEST(Migration, InkwiredMigrateCommandIsIdempotent) {
  const std::string bin = require_inkwired();
  ScratchDatabase db;
  TempDir dir;
  const std::string config = write_config(dir, db.url());

  auto first = run_process({bin, "migrate", "--config", config}, std::chrono::seconds(20));
  EXPECT_EQ(first.exit_code, 0) << "stdout: " << first.out << "\nstderr: " << first.err;
  EXPECT_TRUE(first.out.starts_with("applied 0001_initial\n")) << first.out;
  std::string expected;
  for (const auto& name : all_migration_names()) expected += "applied " + name + "\n";
  EXPECT_EQ(first.out, expected) << first.err;
  EXPECT_EQ(first.err, "");

  auto second = run_process({bin, "migrate", "--config", config}, std::chrono::seconds(20));
  EXPECT_EQ(second.exit_code, 0) << "stdout: " << second.out << "\nstderr: " << second.err;
  EXPECT_TRUE(second.out.starts_with("schema is up to date")) << second.out;
  EXPECT_EQ(count_lines(second.out), 1u) << second.out;
  EXPECT_EQ(second.err, "");
  EXPECT_EQ(recorded_migrations(db.url()).size(), controlplane::embedded_migrations().size());
}

TEST(Migration, InkwiredRefusesAFutureSchemaWithOneLine) {
  const std::string bin = require_inkwired();
  ScratchDatabase db;
  migrate_or_throw(db.url());
  insert_future_version(db.url());
  TempDir dir;
  const std::string config = write_config(dir, db.url());

  auto migrate = run_process({bin, "migrate", "--config", config}, std::chrono::seconds(20));
  EXPECT_NE(migrate.exit_code, 0) << migrate.out << migrate.err;
  EXPECT_EQ(count_lines(migrate.err), 1u) << "stderr: " << migrate.err;
  EXPECT_NE(migrate.err.find("9999"), std::string::npos) << migrate.err;

  // `serve` exits at once (it must not bind and run) with a one-line reason.
  auto serve = run_process({bin, "serve", "--config", config}, std::chrono::seconds(20));
  EXPECT_NE(serve.exit_code, -1) << "inkwired serve kept running against a newer schema; stderr: " << serve.err;
  EXPECT_NE(serve.exit_code, 0) << serve.err;
  EXPECT_EQ(count_lines(serve.err), 1u) << "stderr: " << serve.err;
  EXPECT_NE(serve.err.find("9999"), std::string::npos) << serve.err;
}

TEST(Migration, InkwiredMigrateWithAWrongDatabaseUrlFailsWithOneLine) {
  const std::string bin = require_inkwired();
  TempDir dir;
  // Nothing listens on port 1; and a database that does not exist in the running cluster.
  const std::vector<std::string> urls = {
      "postgresql://postgres@127.0.0.1:1/inkwire?connect_timeout=2",
      with_database(test_cluster_admin_url(), "no_such_db_" + unique_suffix()),
  };
  for (const auto& url : urls) {
    const std::string config = write_config(dir, url);
    auto r = run_process({bin, "migrate", "--config", config}, std::chrono::seconds(20));
    EXPECT_NE(r.exit_code, 0) << url;
    EXPECT_NE(r.exit_code, -1) << url << ": timed out";
    EXPECT_EQ(r.out, "") << url;
    EXPECT_EQ(count_lines(r.err), 1u) << url << ": stderr must be one line, got:\n" << r.err;
    EXPECT_TRUE(r.err.starts_with("inkwired: ")) << r.err;
  }
}
