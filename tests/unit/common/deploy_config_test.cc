// The example configurations under deploy/ load with the real loader: every key they write exists
// and every value validates, and they say what docs/operating.md says they say. The database URL is
// left to the environment in each of them, as in production.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/config.h"

#ifndef INKWIRE_SOURCE_DIR
#error "INKWIRE_SOURCE_DIR must name the source tree (tests/unit/CMakeLists.txt)"
#endif

namespace inkwire {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kUrl[] = "postgresql://inkwire:pw@127.0.0.1:5432/inkwire";

std::string source_path(const std::string& relative) { return std::string(INKWIRE_SOURCE_DIR) + "/" + relative; }

// The file as it ships, with no INKWIRE_* from the test's own environment.
Expected<Config, ConfigError> load(const std::string& file, std::map<std::string, std::string> environment = {},
                                   std::vector<std::pair<std::string, std::string>> overrides = {}) {
  ConfigSources sources;
  sources.file = file;
  sources.environment = std::move(environment);
  sources.overrides = std::move(overrides);
  return load_config(sources);
}

Config load_ok(const std::string& file, std::map<std::string, std::string> environment = {},
               std::vector<std::pair<std::string, std::string>> overrides = {{"database.url", kUrl}}) {
  auto result = load(file, std::move(environment), std::move(overrides));
  EXPECT_TRUE(result.has_value()) << file << ": " << (result ? "" : result.error().message);
  return result ? std::move(result).value() : Config{};
}

// The three roles on one node, agents through the edge's shared listener, secrets not in the file.
void expect_public_node(const Config& c) {
  EXPECT_THAT(c.roles, ElementsAre("controlplane", "relay", "edge"));
  EXPECT_EQ(c.relay.listen, "");
  EXPECT_EQ(c.data_plane_host, "");
  EXPECT_EQ(c.edge.public_https_port, 443);
  EXPECT_FALSE(c.edge.serve_plain_http);
  EXPECT_TRUE(c.edge.access_log);
  EXPECT_NE(c.edge.listen, c.edge.http_listen);
  EXPECT_NE(c.edge.http_listen, "");
}

TEST(DeployConfigTest, ProductionExampleLoads) {
  const Config c = load_ok(source_path("deploy/config/inkwired.production.toml"));
  expect_public_node(c);
  EXPECT_EQ(c.zone, "tunnels.example.com");
  EXPECT_EQ(c.edge.listen, "0.0.0.0:443");
  EXPECT_EQ(c.edge.http_listen, "0.0.0.0:80");
  // Where certbot's deploy hook (deploy/certbot/) puts the zone certificate.
  EXPECT_EQ(c.tls.cert_file, "/etc/inkwire/tls/fullchain.pem");
  EXPECT_EQ(c.tls.key_file, "/etc/inkwire/tls/privkey.pem");
  EXPECT_EQ(c.ca.dir, "/var/lib/inkwire/ca");
  EXPECT_EQ(c.ca.cert_file, "");
  // The plain-HTTP API and the metrics stay on loopback.
  EXPECT_THAT(c.api.listen, StartsWith("127.0.0.1:"));
  EXPECT_THAT(c.metrics.listen, StartsWith("127.0.0.1:"));
  EXPECT_EQ(c.log.level, "info");
}

TEST(DeployConfigTest, ProductionExampleTakesTheDatabaseUrlFromTheEnvironment) {
  // As the systemd unit runs it: INKWIRE_DATABASE_URL from /etc/inkwire/inkwired.env.
  const Config c =
      load_ok(source_path("deploy/config/inkwired.production.toml"), {{"INKWIRE_DATABASE_URL", kUrl}}, {});
  EXPECT_EQ(c.database.url, kUrl);
  // Without it the file alone is refused, naming the variable.
  auto bare = load(source_path("deploy/config/inkwired.production.toml"));
  ASSERT_FALSE(bare.has_value());
  EXPECT_THAT(bare.error().message, HasSubstr("database.url"));
  EXPECT_THAT(bare.error().message, HasSubstr("INKWIRE_DATABASE_URL"));
}

TEST(DeployConfigTest, DockerImageConfigLoads) {
  // docker-compose.yml supplies the zone and the database URL through the environment.
  const Config c = load_ok(source_path("deploy/docker/inkwired.toml"),
                           {{"INKWIRE_ZONE", "tunnels.example.org"}, {"INKWIRE_DATABASE_URL", kUrl}}, {});
  expect_public_node(c);
  EXPECT_EQ(c.zone, "tunnels.example.org");
  EXPECT_EQ(c.database.url, kUrl);
  // Unprivileged ports in the container; the compose file publishes 443 and 80.
  EXPECT_EQ(c.edge.listen, "0.0.0.0:8443");
  EXPECT_EQ(c.edge.http_listen, "0.0.0.0:8080");
  EXPECT_EQ(c.metrics.listen, "0.0.0.0:9464");
  EXPECT_EQ(c.ca.dir, "/var/lib/inkwire/ca");
  EXPECT_EQ(c.tls.cert_file, "/etc/inkwire/tls/fullchain.pem");
}

// The `inkwired.toml: |` block of the Kubernetes ConfigMap, de-indented.
std::string configmap_toml(const std::string& yaml_file) {
  std::ifstream in(yaml_file);
  EXPECT_TRUE(in) << "cannot read " << yaml_file;
  std::string line;
  std::ostringstream out;
  bool inside = false;
  std::size_t indent = 0;
  while (std::getline(in, line)) {
    if (!inside) {
      const auto at = line.find("inkwired.toml: |");
      if (at != std::string::npos) {
        inside = true;
        indent = at + 2;  // block lines sit deeper than the key
      }
      continue;
    }
    if (line.find_first_not_of(' ') == std::string::npos) {
      out << "\n";
      continue;
    }
    if (line.find_first_not_of(' ') < indent) break;
    out << line.substr(indent) << "\n";
  }
  EXPECT_TRUE(inside) << yaml_file << " has no inkwired.toml block";
  return out.str();
}

TEST(DeployConfigTest, KubernetesConfigMapLoads) {
  const std::string toml = configmap_toml(source_path("deploy/kubernetes/configmap.yaml"));
  const auto path = std::filesystem::temp_directory_path() /
                    ("inkwire-deploy-config-test-" + std::to_string(::getpid()) + ".toml");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << toml;
  }
  const Config c = load_ok(path.string(), {{"INKWIRE_DATABASE_URL", kUrl}}, {});
  std::error_code ec;
  std::filesystem::remove(path, ec);
  expect_public_node(c);
  EXPECT_EQ(c.edge.listen, "0.0.0.0:8443");
  EXPECT_EQ(c.edge.http_listen, "0.0.0.0:8080");
  // The probes reach /healthz on the pod's address.
  EXPECT_EQ(c.metrics.listen, "0.0.0.0:9464");
  // The kubernetes.io/tls Secret's keys, and the CA from its own Secret.
  EXPECT_EQ(c.tls.cert_file, "/etc/inkwire/tls/tls.crt");
  EXPECT_EQ(c.tls.key_file, "/etc/inkwire/tls/tls.key");
  EXPECT_EQ(c.ca.cert_file, "/etc/inkwire/ca/ca.pem");
  EXPECT_EQ(c.ca.key_file, "/etc/inkwire/ca/ca.key");
  EXPECT_EQ(c.ca.dir, "");
}

}  // namespace
}  // namespace inkwire
