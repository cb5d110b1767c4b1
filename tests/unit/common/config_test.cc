#include "common/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace inkwire {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A TOML file under the system temp directory, unique per process and test, removed at scope end.
class TempToml {
 public:
  explicit TempToml(const std::string& contents) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() / ("inkwire-config-test-" + std::to_string(::getpid()) + "-" +
                                                      info->name() + "-" + std::to_string(counter_++) + ".toml");
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << contents;
  }
  ~TempToml() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  TempToml(const TempToml&) = delete;
  TempToml& operator=(const TempToml&) = delete;

  std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

constexpr char kUrl[] = "postgresql://inkwire:s3cret-pw@db.example:5432/inkwire";

// The smallest sources that validate with the default roles (controlplane needs a database and a CA).
ConfigSources minimal_sources() {
  ConfigSources sources;
  sources.overrides = {{"database.url", kUrl}, {"ca.dir", "/var/lib/inkwire/ca"}};
  return sources;
}

Config load_ok(const ConfigSources& sources) {
  auto result = load_config(sources);
  EXPECT_TRUE(result.has_value()) << (result ? "" : result.error().message);
  return result ? std::move(result).value() : Config{};
}

std::string load_error(const ConfigSources& sources) {
  auto result = load_config(sources);
  EXPECT_FALSE(result.has_value());
  return result ? std::string() : result.error().message;
}

std::string load_error_with(std::vector<std::pair<std::string, std::string>> extra) {
  ConfigSources sources = minimal_sources();
  for (auto& kv : extra) sources.overrides.push_back(std::move(kv));
  return load_error(sources);
}

Config load_ok_with(std::vector<std::pair<std::string, std::string>> extra) {
  ConfigSources sources = minimal_sources();
  for (auto& kv : extra) sources.overrides.push_back(std::move(kv));
  return load_ok(sources);
}

// ---- defaults and the file ------------------------------------------------------------------------

TEST(ConfigTest, DefaultsMatchTheHeader) {
  const Config c = load_ok(minimal_sources());
  EXPECT_EQ(c.roles, std::vector<std::string>{"controlplane"});
  EXPECT_EQ(c.zone, "inkwire.localhost");
  EXPECT_EQ(c.data_plane_host, "");
  EXPECT_EQ(c.effective_data_plane_host(), "inkwire.localhost");
  EXPECT_EQ(c.database.pool_size, 4);
  EXPECT_EQ(c.database.connect_timeout_seconds, 5);
  EXPECT_EQ(c.database.statement_timeout_ms, 10000);
  EXPECT_EQ(c.api.listen, "127.0.0.1:8081");
  EXPECT_EQ(c.api.public_url, "");
  EXPECT_EQ(c.api.threads, 2);
  EXPECT_EQ(c.api.max_body_bytes, 65536u);
  EXPECT_EQ(c.api.max_header_bytes, 16384u);
  EXPECT_EQ(c.api.read_timeout_seconds, 30);
  EXPECT_EQ(c.api.idle_timeout_seconds, 75);
  EXPECT_EQ(c.api.max_connections, 4096);
  EXPECT_EQ(c.api.shutdown_grace_seconds, 10);
  EXPECT_EQ(c.metrics.listen, "127.0.0.1:9464");
  EXPECT_EQ(c.controlplane.daily_create_limit, 100);
  EXPECT_EQ(c.controlplane.delete_grace_seconds, 86400);
  EXPECT_EQ(c.controlplane.reaper_interval_seconds, 60);
  EXPECT_TRUE(c.controlplane.reserved_names.empty());
  EXPECT_TRUE(c.controlplane.reserved_prefixes.empty());
  EXPECT_EQ(c.controlplane.max_metadata_bytes, 4096u);
  EXPECT_EQ(c.controlplane.max_description_chars, 1000u);
  EXPECT_EQ(c.controlplane.api_key_cache_seconds, 30);
  EXPECT_EQ(c.controlplane.audit_log_page_max, 500);
  EXPECT_EQ(c.ca.cert_file, "");
  EXPECT_EQ(c.ca.key_file, "");
  EXPECT_EQ(c.ca.leaf_days, 90);
  EXPECT_EQ(c.log.level, "info");
}

TEST(ConfigTest, NothingGivenFailsOnTheDatabaseUrl) {
  EXPECT_THAT(load_error(ConfigSources{}), HasSubstr("database.url"));
}

TEST(ConfigTest, FileWithEverySection) {
  TempToml file(R"(
roles = ["controlplane", "relay", "edge"]
zone = "tunnels.example.com"
data_plane_host = "relay.example.com:8443"

[database]
url = "postgresql://app:pw@db/inkwire"
pool_size = 8
connect_timeout_seconds = 3
statement_timeout_ms = 2500

[api]
listen = "[::1]:0"
public_url = "https://api.example.com"
threads = 4
max_body_bytes = 1048576
max_header_bytes = 8192
read_timeout_seconds = 20
idle_timeout_seconds = 60
max_connections = 100
shutdown_grace_seconds = 0

[metrics]
listen = ""

[controlplane]
daily_create_limit = 7
delete_grace_seconds = 3600
reaper_interval_seconds = 5
reserved_names = ["Admin", "www"]
reserved_prefixes = ["internal-"]
max_metadata_bytes = 2048
max_description_chars = 200
api_key_cache_seconds = 0
audit_log_page_max = 50

[ca]
cert_file = "/etc/inkwire/ca.pem"
key_file = "/etc/inkwire/ca.key"
leaf_days = 30

[relay]
listen = ""

[edge]
listen = "0.0.0.0:443"

[log]
level = "debug"
)");
  ConfigSources sources;
  sources.file = file.path();
  const Config c = load_ok(sources);
  EXPECT_EQ(c.roles, (std::vector<std::string>{"controlplane", "relay", "edge"}));
  EXPECT_EQ(c.zone, "tunnels.example.com");
  EXPECT_EQ(c.data_plane_host, "relay.example.com:8443");
  EXPECT_EQ(c.effective_data_plane_host(), "relay.example.com:8443");
  EXPECT_EQ(c.database.url, "postgresql://app:pw@db/inkwire");
  EXPECT_EQ(c.database.pool_size, 8);
  EXPECT_EQ(c.database.connect_timeout_seconds, 3);
  EXPECT_EQ(c.database.statement_timeout_ms, 2500);
  EXPECT_EQ(c.api.listen, "[::1]:0");
  EXPECT_EQ(c.api.public_url, "https://api.example.com");
  EXPECT_EQ(c.api.threads, 4);
  EXPECT_EQ(c.api.max_body_bytes, 1048576u);
  EXPECT_EQ(c.api.max_header_bytes, 8192u);
  EXPECT_EQ(c.api.read_timeout_seconds, 20);
  EXPECT_EQ(c.api.idle_timeout_seconds, 60);
  EXPECT_EQ(c.api.max_connections, 100);
  EXPECT_EQ(c.api.shutdown_grace_seconds, 0);
  EXPECT_EQ(c.metrics.listen, "");
  EXPECT_EQ(c.controlplane.daily_create_limit, 7);
  EXPECT_EQ(c.controlplane.delete_grace_seconds, 3600);
  EXPECT_EQ(c.controlplane.reaper_interval_seconds, 5);
  EXPECT_EQ(c.controlplane.reserved_names, (std::vector<std::string>{"admin", "www"}));
  EXPECT_EQ(c.controlplane.reserved_prefixes, std::vector<std::string>{"internal-"});
  EXPECT_EQ(c.controlplane.max_metadata_bytes, 2048u);
  EXPECT_EQ(c.controlplane.max_description_chars, 200u);
  EXPECT_EQ(c.controlplane.api_key_cache_seconds, 0);
  EXPECT_EQ(c.controlplane.audit_log_page_max, 50);
  EXPECT_EQ(c.ca.dir, "");
  EXPECT_EQ(c.ca.cert_file, "/etc/inkwire/ca.pem");
  EXPECT_EQ(c.ca.key_file, "/etc/inkwire/ca.key");
  EXPECT_EQ(c.ca.leaf_days, 30);
  EXPECT_EQ(c.log.level, "debug");
}

TEST(ConfigTest, DottedKeysInTheFileWork) {
  TempToml file("api.threads = 3\nlog = { level = \"warn\" }\n");
  ConfigSources sources = minimal_sources();
  sources.file = file.path();
  const Config c = load_ok(sources);
  EXPECT_EQ(c.api.threads, 3);
  EXPECT_EQ(c.log.level, "warn");
}

TEST(ConfigTest, UnknownKeyInFileIsNamed) {
  TempToml file("[api]\nlisen = \"127.0.0.1:1\"\n");
  ConfigSources sources = minimal_sources();
  sources.file = file.path();
  EXPECT_EQ(load_error(sources), "unknown configuration key 'api.lisen' in " + file.path());
}

TEST(ConfigTest, UnknownTopLevelKeyAndSectionAreNamed) {
  ConfigSources sources = minimal_sources();
  {
    TempToml file("zones = \"x\"\n");
    sources.file = file.path();
    EXPECT_EQ(load_error(sources), "unknown configuration key 'zones' in " + file.path());
  }
  {
    TempToml file("[edge]\nlistens = \"0.0.0.0:443\"\n");
    sources.file = file.path();
    EXPECT_EQ(load_error(sources), "unknown configuration key 'edge.listens' in " + file.path());
  }
  {
    TempToml file("[nothing]\n");
    sources.file = file.path();
    EXPECT_EQ(load_error(sources), "unknown configuration key 'nothing' in " + file.path());
  }
}

TEST(ConfigTest, WrongTypeInFileNamesKeyAndExpectedType) {
  ConfigSources sources = minimal_sources();
  const std::pair<std::string, std::string> cases[] = {
      {"[api]\nthreads = \"two\"\n", "api.threads"},
      {"[api]\nlisten = 8081\n", "api.listen"},
      {"roles = \"relay\"\n", "roles"},
      {"roles = [\"relay\", 3]\n", "roles"},
      {"[api]\nmax_body_bytes = 1.5\n", "api.max_body_bytes"},
      {"api = 5\n", "api"},
      {"[api.listen]\nhost = \"x\"\n", "api.listen"},
  };
  for (const auto& [toml, key] : cases) {
    SCOPED_TRACE(toml);
    TempToml file(toml);
    sources.file = file.path();
    const std::string error = load_error(sources);
    EXPECT_THAT(error, HasSubstr("'" + key + "'"));
    EXPECT_THAT(error, HasSubstr(file.path()));
  }
  TempToml file("[api]\nthreads = \"two\"\n");
  sources.file = file.path();
  EXPECT_THAT(load_error(sources), HasSubstr("expected integer, got string"));
}

TEST(ConfigTest, OutOfRangeIntegersInFileAreRefused) {
  ConfigSources sources = minimal_sources();
  for (const char* toml : {"[api]\nmax_body_bytes = -1\n", "[api]\nthreads = 3000000000\n"}) {
    SCOPED_TRACE(toml);
    TempToml file(toml);
    sources.file = file.path();
    EXPECT_THAT(load_error(sources), HasSubstr("configuration key 'api."));
  }
}

TEST(ConfigTest, MissingFileIsOneLineNamingIt) {
  ConfigSources sources = minimal_sources();
  sources.file = (std::filesystem::temp_directory_path() / "inkwire-config-test-does-not-exist.toml").string();
  const std::string error = load_error(sources);
  EXPECT_THAT(error, HasSubstr(*sources.file));
  EXPECT_THAT(error, HasSubstr("No such file"));
  sources.file = std::filesystem::temp_directory_path().string();
  EXPECT_THAT(load_error(sources), HasSubstr("directory"));
}

TEST(ConfigTest, ParseErrorHasFileLineAndColumn) {
  TempToml file("[api]\nthreads = 4\nlisten = \"unterminated\n");
  ConfigSources sources = minimal_sources();
  sources.file = file.path();
  const std::string error = load_error(sources);
  EXPECT_THAT(error, HasSubstr(file.path() + ":3:"));
  EXPECT_EQ(error.find('\n'), std::string::npos);
}

// ---- precedence ---------------------------------------------------------------------------------------

TEST(ConfigTest, EnvironmentBeatsFileAndSetBeatsEnvironment) {
  TempToml file("[api]\nthreads = 3\nlisten = \"127.0.0.1:1000\"\n[log]\nlevel = \"debug\"\n");
  ConfigSources sources = minimal_sources();
  sources.file = file.path();
  sources.environment = {{"INKWIRE_API_THREADS", "5"}, {"INKWIRE_LOG_LEVEL", "warn"}};
  sources.overrides.emplace_back("log.level", "error");
  const Config c = load_ok(sources);
  EXPECT_EQ(c.api.listen, "127.0.0.1:1000");  // file only
  EXPECT_EQ(c.api.threads, 5);                // environment over file
  EXPECT_EQ(c.log.level, "error");            // --set over environment
}

TEST(ConfigTest, LaterSetWins) { EXPECT_EQ(load_ok_with({{"api.threads", "3"}, {"api.threads", "6"}}).api.threads, 6); }

TEST(ConfigTest, EnvironmentNamesFollowTheRule) {
  ConfigSources sources;
  sources.environment = {
      {"INKWIRE_DATABASE_URL", kUrl},
      {"INKWIRE_CA_DIR", "/ca"},
      {"INKWIRE_ZONE", "example.net"},
      {"INKWIRE_ROLES", "controlplane,relay"},
      {"INKWIRE_DATA_PLANE_HOST", "127.0.0.1"},
      {"INKWIRE_API_LISTEN", "0.0.0.0:80"},
      {"INKWIRE_CONTROLPLANE_DAILY_CREATE_LIMIT", "9"},
      {"INKWIRE_CONTROLPLANE_DELETE_GRACE_SECONDS", "10000000000"},
  };
  const Config c = load_ok(sources);
  EXPECT_EQ(c.database.url, kUrl);
  EXPECT_EQ(c.ca.dir, "/ca");
  EXPECT_EQ(c.zone, "example.net");
  EXPECT_EQ(c.roles, (std::vector<std::string>{"controlplane", "relay"}));
  EXPECT_EQ(c.data_plane_host, "127.0.0.1");
  EXPECT_EQ(c.api.listen, "0.0.0.0:80");
  EXPECT_EQ(c.controlplane.daily_create_limit, 9);
  EXPECT_EQ(c.controlplane.delete_grace_seconds, 10000000000);
}

TEST(ConfigTest, UnknownEnvironmentVariablesAreIgnored) {
  ConfigSources sources = minimal_sources();
  sources.environment = {{"INKWIRE_API_LISEN", "nonsense"}, {"INKWIRE_TOKEN", "x"}, {"PATH", "/bin"}};
  load_ok(sources);
}

TEST(ConfigTest, UnknownSetKeyIsNamed) {
  EXPECT_EQ(load_error_with({{"api.lisen", "x"}}), "unknown configuration key 'api.lisen' (from --set)");
  EXPECT_EQ(load_error_with({{"api", "x"}}), "unknown configuration key 'api' (from --set)");
}

TEST(ConfigTest, BadIntegerInEnvironmentNamesTheVariable) {
  for (const char* bad : {"abc", "12x", "4 5", "", "0x10", "+4", "1e3", "99999999999999999999"}) {
    SCOPED_TRACE(bad);
    ConfigSources sources = minimal_sources();
    sources.environment = {{"INKWIRE_API_MAX_BODY_BYTES", bad}};
    EXPECT_THAT(load_error(sources), HasSubstr("INKWIRE_API_MAX_BODY_BYTES"));
  }
  ConfigSources sources = minimal_sources();
  sources.environment = {{"INKWIRE_API_MAX_BODY_BYTES", "-1"}};
  EXPECT_THAT(load_error(sources), HasSubstr("non-negative"));
  sources.environment = {{"INKWIRE_API_THREADS", "3000000000"}};  // fits int64, not int
  EXPECT_THAT(load_error(sources), HasSubstr("INKWIRE_API_THREADS"));
  sources.environment = {{"INKWIRE_API_THREADS", " 7 "}};  // shell-quoting whitespace is forgiven
  EXPECT_EQ(load_ok(sources).api.threads, 7);
}

TEST(ConfigTest, BadIntegerInSetNamesTheKey) {
  EXPECT_EQ(load_error_with({{"api.threads", "two"}}),
            "invalid value for 'api.threads' (from --set): expected an integer, got 'two'");
}

TEST(ConfigTest, ListsAreCommaSeparatedAndTrimmed) {
  Config c = load_ok_with({{"roles", " controlplane , relay,edge, "},
                           {"relay.listen", ""},
                           {"controlplane.reserved_names", "A, b ,C"}});
  EXPECT_EQ(c.roles, (std::vector<std::string>{"controlplane", "relay", "edge"}));
  EXPECT_EQ(c.controlplane.reserved_names, (std::vector<std::string>{"a", "b", "c"}));
  c = load_ok_with({{"controlplane.reserved_prefixes", ""}});
  EXPECT_TRUE(c.controlplane.reserved_prefixes.empty());
  EXPECT_THAT(load_error_with({{"roles", ""}}), HasSubstr("roles"));
}

// ---- validation -------------------------------------------------------------------------------------

TEST(ConfigTest, EachValidationRuleNamesItsKey) {
  const struct {
    const char* key;
    const char* value;
    const char* named;
  } cases[] = {
      {"roles", "controlplane,proxy", "roles"},
      {"roles", "relay,relay", "roles"},
      {"roles", "Relay", "roles"},
      {"zone", "Inkwire.Localhost", "zone"},
      {"zone", "", "zone"},
      {"zone", "-bad.example", "zone"},
      {"zone", "bad-.example", "zone"},
      {"zone", "a..b", "zone"},
      {"zone", "under_score.example", "zone"},
      {"zone", "example.com.", "zone"},
      {"zone", "1.2.3.999", "zone"},
      {"zone", "::1", "zone"},
      {"data_plane_host", "relay.example:0", "data_plane_host"},
      {"data_plane_host", "relay.example:70000", "data_plane_host"},
      {"data_plane_host", "relay.example:", "data_plane_host"},
      {"data_plane_host", "http://relay", "data_plane_host"},
      {"api.listen", "127.0.0.1", "api.listen"},
      {"api.listen", "127.0.0.1:65536", "api.listen"},
      {"api.listen", "127.0.0.1:http", "api.listen"},
      {"api.listen", "::1:8080", "api.listen"},
      {"api.listen", "[::1]", "api.listen"},
      {"api.listen", "[nope]:80", "api.listen"},
      {"api.listen", ":8080", "api.listen"},
      {"api.listen", "", "api.listen"},
      {"metrics.listen", "9464", "metrics.listen"},
      {"api.public_url", "api.example.com", "api.public_url"},
      {"database.pool_size", "0", "database.pool_size"},
      {"database.pool_size", "65", "database.pool_size"},
      {"database.connect_timeout_seconds", "0", "database.connect_timeout_seconds"},
      {"database.statement_timeout_ms", "0", "database.statement_timeout_ms"},
      {"api.threads", "0", "api.threads"},
      {"api.threads", "65", "api.threads"},
      {"api.max_body_bytes", "0", "api.max_body_bytes"},
      {"api.max_header_bytes", "0", "api.max_header_bytes"},
      {"api.read_timeout_seconds", "0", "api.read_timeout_seconds"},
      {"api.idle_timeout_seconds", "-5", "api.idle_timeout_seconds"},
      {"api.max_connections", "0", "api.max_connections"},
      {"api.shutdown_grace_seconds", "-1", "api.shutdown_grace_seconds"},
      {"controlplane.daily_create_limit", "0", "controlplane.daily_create_limit"},
      {"controlplane.delete_grace_seconds", "-1", "controlplane.delete_grace_seconds"},
      {"controlplane.reaper_interval_seconds", "0", "controlplane.reaper_interval_seconds"},
      {"controlplane.max_metadata_bytes", "0", "controlplane.max_metadata_bytes"},
      {"controlplane.max_description_chars", "0", "controlplane.max_description_chars"},
      {"controlplane.api_key_cache_seconds", "-1", "controlplane.api_key_cache_seconds"},
      {"controlplane.audit_log_page_max", "0", "controlplane.audit_log_page_max"},
      {"ca.leaf_days", "0", "ca.leaf_days"},
      {"ca.cert_file", "/ca.pem", "ca.cert_file"},
      {"ca.key_file", "/ca.key", "ca.key_file"},
      {"database.url", "", "database.url"},
      {"ca.dir", "", "ca.dir"},
      {"log.level", "verbose", "log.level"},
      {"log.level", "INFO", "log.level"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.key) + "=" + c.value);
    EXPECT_THAT(load_error_with({{c.key, c.value}}), HasSubstr(c.named));
  }
}

TEST(ConfigTest, ValidValuesPassValidation) {
  const std::pair<std::string, std::string> cases[] = {
      {"zone", "127.0.0.1"},
      {"zone", "localhost"},
      {"zone", "a-b.c0.example"},
      {"zone", std::string(63, 'a') + ".example"},
      {"data_plane_host", "127.0.0.1:8443"},
      {"data_plane_host", "relay.example"},
      {"data_plane_host", "[::1]:443"},
      {"data_plane_host", "::1"},
      {"api.listen", "[::]:0"},
      {"api.listen", "localhost:65535"},
      {"metrics.listen", ""},
      {"api.public_url", "http://127.0.0.1:8081"},
      {"database.pool_size", "64"},
      {"api.threads", "1"},
      {"controlplane.delete_grace_seconds", "0"},
  };
  for (const auto& [key, value] : cases) {
    SCOPED_TRACE(key + "=" + value);
    load_ok_with({{key, value}});
  }
}

TEST(ConfigTest, LongZoneLabelsAndNamesAreRefused) {
  EXPECT_THAT(load_error_with({{"zone", std::string(64, 'a') + ".example"}}), HasSubstr("zone"));
  std::string long_name;
  while (long_name.size() < 254) long_name += "abcdefghi.";
  long_name += "example";
  EXPECT_THAT(load_error_with({{"zone", long_name}}), HasSubstr("zone"));
}

TEST(ConfigTest, RolesWithoutControlplaneNeedNoCa) {
  ConfigSources sources;
  sources.overrides = {{"roles", "relay,edge"},
                       {"relay.listen", ""},
                       {"database.url", "postgresql://db/inkwire"},
                       {"tls.cert_file", "/tls/server.pem"},
                       {"tls.key_file", "/tls/server.key"}};
  const Config c = load_ok(sources);
  EXPECT_EQ(c.roles, (std::vector<std::string>{"relay", "edge"}));
}

TEST(ConfigTest, RelayLimitsAreChecked) {
  // §4.1: at least 256 concurrent streams; A5: a pool size the SDKs accept.
  EXPECT_THAT(load_error_with({{"relay.max_streams_per_session", "100"}}), HasSubstr("relay.max_streams_per_session"));
  EXPECT_THAT(load_error_with({{"relay.default_pool_size", "0"}}), HasSubstr("relay.default_pool_size"));
  EXPECT_THAT(load_error_with({{"relay.listen", "nowhere"}}), HasSubstr("relay.listen"));
}

TEST(ConfigTest, CaDirAndOwnFilesAreAlternatives) {
  load_ok_with({{"ca.dir", ""}, {"ca.cert_file", "/ca.pem"}, {"ca.key_file", "/ca.key"}});
  EXPECT_THAT(load_error_with({{"ca.cert_file", "/ca.pem"}, {"ca.key_file", "/ca.key"}}), HasSubstr("ca.dir"));
}

// ---- masking and description --------------------------------------------------------------------------

TEST(ConfigTest, MaskDatabaseUrl) {
  const std::pair<std::string, std::string> cases[] = {
      {"postgresql://user:secret@host/db", "postgresql://user:***@host/db"},
      {"postgres://user:secret@host:5432/db?sslmode=require", "postgres://user:***@host:5432/db?sslmode=require"},
      {"POSTGRESQL://user:secret@host/db", "POSTGRESQL://user:***@host/db"},
      {"postgresql://user:p@ss/w?rd@host/db", "postgresql://user:***@host/db"},
      {"postgresql://user@host/db", "postgresql://user@host/db"},
      {"postgresql://host:5432/db", "postgresql://host:5432/db"},
      {"postgresql:///db?host=/run/postgresql", "postgresql:///db?host=/run/postgresql"},
      {"postgresql://host/db?user=u&password=secret&sslmode=disable",
       "postgresql://host/db?user=u&password=***&sslmode=disable"},
      {"postgresql://host/db?password=secret", "postgresql://host/db?password=***"},
      {"host=db user=app password=secret dbname=inkwire", "host=db user=app password=*** dbname=inkwire"},
      {"password=secret", "password=***"},
      {"host=db password = 'quoted value' dbname=x", "host=db password = *** dbname=x"},
      {"host=db password='it\\'s secret' dbname=x", "host=db password=*** dbname=x"},
      {"host=db password=back\\ slash dbname=x", "host=db password=*** dbname=x"},
      {"host=db passfile=/home/u/.pgpass dbname=x", "host=db passfile=/home/u/.pgpass dbname=x"},
      {"host=db user=app dbname=inkwire", "host=db user=app dbname=inkwire"},
      {"", ""},
  };
  for (const auto& [in, out] : cases) {
    EXPECT_EQ(mask_database_url(in), out) << in;
  }
}

TEST(ConfigTest, DescribeConfigListsEveryKeyAndHidesThePassword) {
  const Config c = load_ok_with({{"controlplane.reserved_names", "admin,www"}});
  const std::vector<std::string> lines = describe_config(c);
  EXPECT_EQ(lines.size(), 90u);
  bool saw_url = false;
  for (const std::string& line : lines) {
    EXPECT_THAT(line, Not(HasSubstr("s3cret-pw")));
    saw_url = saw_url || line == "database.url = postgresql://inkwire:***@db.example:5432/inkwire";
  }
  EXPECT_TRUE(saw_url);
  const std::vector<std::string> expected = {"roles = controlplane",
                                             "zone = inkwire.localhost",
                                             "api.listen = 127.0.0.1:8081",
                                             "api.max_body_bytes = 65536",
                                             "controlplane.reserved_names = admin,www",
                                             "ca.dir = /var/lib/inkwire/ca",
                                             "log.level = info"};
  for (const std::string& line : expected) {
    EXPECT_NE(std::find(lines.begin(), lines.end(), line), lines.end()) << line;
  }
  const Config conninfo = load_ok_with({{"database.url", "host=db password='a b c' dbname=x"}});
  for (const std::string& line : describe_config(conninfo)) EXPECT_THAT(line, Not(HasSubstr("a b c")));
}

// Every key describe_config shows can be set back through --set and through its environment name, so
// the schema, the environment mapping and the description cannot drift apart.
TEST(ConfigTest, EveryDescribedKeyRoundTripsThroughSetAndEnvironment) {
  Config base = load_ok_with({{"controlplane.reserved_names", "admin,www"}});
  base.database.url = "host=db dbname=x";  // no password, so the masked rendering is the value itself
  for (const std::string& line : describe_config(base)) {
    const std::size_t eq = line.find(" = ");
    ASSERT_NE(eq, std::string::npos) << line;
    const std::string key = line.substr(0, eq);
    const std::string value = line.substr(eq + 3);
    SCOPED_TRACE(key);
    std::string env = "INKWIRE_";
    for (char ch : key)
      env.push_back(ch == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));

    ConfigSources by_set = minimal_sources();
    by_set.overrides.emplace_back(key, value);
    ConfigSources by_env = minimal_sources();
    by_env.overrides.clear();
    by_env.environment = {{"INKWIRE_DATABASE_URL", kUrl}, {"INKWIRE_CA_DIR", "/var/lib/inkwire/ca"}};
    by_env.environment[env] = value;
    for (const ConfigSources* sources : {&by_set, &by_env}) {
      const auto loaded = load_config(*sources);
      ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
      const std::vector<std::string> again = describe_config(*loaded);
      EXPECT_NE(std::find(again.begin(), again.end(), line), again.end()) << line;
    }
  }
}

TEST(ConfigTest, ProcessEnvironmentReadsEnviron) {
  ASSERT_EQ(::setenv("INKWIRE_CONFIG_TEST_PROBE", "a=b", 1), 0);
  const auto env = process_environment();
  ::unsetenv("INKWIRE_CONFIG_TEST_PROBE");
  const auto found = env.find("INKWIRE_CONFIG_TEST_PROBE");
  ASSERT_NE(found, env.end());
  EXPECT_EQ(found->second, "a=b");
}


TEST(ConfigTest, EdgeSectionBooleansAndRoleRules) {
  TempToml file(R"(
roles = ["relay", "edge"]
[edge]
listen = "0.0.0.0:443"
http_listen = ""
serve_plain_http = true
max_connections_per_ip = 64
)");
  ConfigSources sources = minimal_sources();
  sources.file = file.path();
  const Config c = load_ok(sources);
  EXPECT_EQ(c.edge.listen, "0.0.0.0:443");
  EXPECT_EQ(c.edge.http_listen, "");
  EXPECT_TRUE(c.edge.serve_plain_http);
  EXPECT_TRUE(c.edge.force_identity_encoding);
  EXPECT_EQ(c.edge.max_connections_per_ip, 64);

  EXPECT_FALSE(load_ok_with({{"edge.access_log", "off"}}).edge.access_log);
  EXPECT_TRUE(load_ok_with({{"edge.access_log", " TRUE "}}).edge.access_log);
  EXPECT_THAT(load_error_with({{"edge.access_log", "maybe"}}), HasSubstr("expected a boolean"));
  TempToml wrong("[edge]\nserve_plain_http = 1\n");
  sources.file = wrong.path();
  EXPECT_THAT(load_error(sources), HasSubstr("expected boolean, got integer"));

  // The edge hands requests to a relay in the same process; with it, relay.listen may be empty.
  EXPECT_THAT(load_error_with({{"roles", "edge"}}), HasSubstr("needs the relay role"));
  EXPECT_EQ(load_ok_with({{"roles", "relay,edge"}, {"relay.listen", ""}}).relay.listen, "");
  EXPECT_THAT(load_error_with({{"roles", "relay,edge"}}), HasSubstr("same address as edge.listen"));
  EXPECT_THAT(load_error_with({{"roles", "relay"}, {"relay.listen", ""}}), HasSubstr("relay.listen"));
  EXPECT_THAT(load_error_with({{"edge.max_header_fields", "101"}}), HasSubstr("edge.max_header_fields"));
  const std::vector<std::string> lines = describe_config(load_ok_with({}));
  EXPECT_NE(std::find(lines.begin(), lines.end(), "edge.serve_plain_http = false"), lines.end());
}

}  // namespace
}  // namespace inkwire
