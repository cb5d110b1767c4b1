// `inkwire tunnels ...` (agent/cli/tunnels_command) driven through CLI11 as main() does, against
// the in-process control plane: output formats, configuration precedence and exit codes.
#include "agent/cli/tunnels_command.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/json/parse.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "agent/pki.h"
#include "agent/state_directory.h"
#include "tests/integration/agent/tls_front.h"
#include "tests/support/test_control_plane.h"

using namespace inkwire;
using namespace inkwire::agent;
using namespace inkwire::agent::cli;
using namespace inkwire::testing;
namespace fs = std::filesystem;

namespace {

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
  boost::json::value json() const { return boost::json::parse(out); }
  // Every failure is one line on stderr.
  bool one_error_line() const { return !err.empty() && err.back() == '\n' && std::count(err.begin(), err.end(), '\n') == 1; }
};

using Env = std::map<std::string, std::string>;

CliRun run_cli(std::vector<std::string> args, const Env& env) {
  CLI::App app{"inkwire"};
  app.require_subcommand(1);
  CliRun r;
  int code = 0;
  std::ostringstream out, err;
  TunnelsCommandIo io;
  io.out = &out;
  io.err = &err;
  io.env = [env](std::string_view name) -> std::optional<std::string> {
    auto it = env.find(std::string(name));
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  add_tunnels_command(app, code, io);
  std::reverse(args.begin(), args.end());  // CLI11 takes a vector in reverse order
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    code = handle_parse_error(app, e);
  }
  r.code = code;
  r.out = out.str();
  r.err = err.str();
  return r;
}

class TunnelsCommand : public ::testing::Test {
 protected:
  TunnelsCommand() {
    env_ = {{"INKWIRE_API_URL", "http://127.0.0.1:" + std::to_string(cp_.port())}, {"INKWIRE_API_KEY", cp_.admin_key()}};
    std::string templ = (fs::temp_directory_path() / "inkwire-cli-test-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    tmp_ = templ;
  }
  ~TunnelsCommand() override {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
  CliRun run(std::vector<std::string> args) { return run_cli(std::move(args), env_); }

  TestControlPlane cp_;
  Env env_;
  fs::path tmp_;
};

}  // namespace

TEST_F(TunnelsCommand, CreateListGetInTextAndJson) {
  auto empty = run({"tunnels", "list"});
  EXPECT_EQ(empty.code, kExitOk) << empty.err;
  EXPECT_EQ(empty.out, "no tunnels\n");

  auto created = run({"tunnels", "create", "my-agent", "--description", "webhooks", "--metadata", R"({"team":"ops"})"});
  ASSERT_EQ(created.code, kExitOk) << created.err;
  EXPECT_NE(created.out.find("name:                    my-agent\n"), std::string::npos) << created.out;
  EXPECT_NE(created.out.find("description:             webhooks\n"), std::string::npos) << created.out;
  EXPECT_NE(created.out.find(R"(metadata:                {"team":"ops"})"), std::string::npos) << created.out;
  EXPECT_NE(created.out.find("\nconnect_secret: tsec_"), std::string::npos) << created.out;
  EXPECT_NE(created.err.find("shown only this once"), std::string::npos) << created.err;

  auto json_created = run({"tunnels", "create", "second-agent", "--tls-mode", "passthrough", "--json"});
  ASSERT_EQ(json_created.code, kExitOk) << json_created.err;
  const auto v = json_created.json();
  EXPECT_TRUE(v.at("connect_secret").as_string().starts_with("tsec_"));
  EXPECT_EQ(v.at("tunnel").at("status").as_string(), "awaiting_cert");
  const std::string second_id(v.at("tunnel").at("id").as_string());

  auto table = run({"tunnels", "list"});
  ASSERT_EQ(table.code, kExitOk) << table.err;
  // (Both were created at the same fake-clock instant, so the list order between them is open.)
  std::istringstream lines(table.out);
  std::string header, line, row1, row2;
  std::getline(lines, header);
  while (std::getline(lines, line)) (line.rfind("my-agent ", 0) == 0 ? row1 : row2) = line;
  EXPECT_EQ(header.rfind("NAME", 0), 0u) << table.out;
  ASSERT_EQ(row2.rfind("second-agent ", 0), 0u) << table.out;
  // Aligned columns: every value starts where its header does.
  const auto status_col = header.find("STATUS");
  const auto id_col = header.find("ID");
  EXPECT_EQ(row1.substr(status_col, 7), "active ");
  EXPECT_EQ(row2.substr(status_col, 13), "awaiting_cert");
  EXPECT_EQ(row2.substr(id_col), second_id);
  EXPECT_NE(row1.find("https://my-agent." + cp_.config().zone), std::string::npos) << row1;

  auto json_list = run({"tunnels", "list", "--json"});
  ASSERT_EQ(json_list.code, kExitOk);
  EXPECT_EQ(json_list.json().at("tunnels").as_array().size(), 2u);

  auto by_name = run({"tunnels", "get", "second-agent"});
  ASSERT_EQ(by_name.code, kExitOk) << by_name.err;
  EXPECT_NE(by_name.out.find("id:                      " + second_id + "\n"), std::string::npos) << by_name.out;
  EXPECT_NE(by_name.out.find("tls_mode:                passthrough\n"), std::string::npos) << by_name.out;
  auto by_id = run({"tunnels", "get", second_id, "--json"});
  ASSERT_EQ(by_id.code, kExitOk) << by_id.err;
  EXPECT_EQ(by_id.json().at("tunnel_name").as_string(), "second-agent");
}

TEST_F(TunnelsCommand, UpdateDeleteRestoreForceDeleteRotate) {
  ASSERT_EQ(run({"tunnels", "create", "my-agent"}).code, kExitOk);

  auto described = run({"tunnels", "update", "my-agent", "--description", "hello", "--metadata", R"({"a":1})", "--json"});
  ASSERT_EQ(described.code, kExitOk) << described.err;
  EXPECT_EQ(described.json().at("description").as_string(), "hello");
  EXPECT_EQ(described.json().at("metadata").at("a").as_int64(), 1);
  auto cleared = run({"tunnels", "update", "my-agent", "--clear-description", "--clear-metadata", "--json"});
  ASSERT_EQ(cleared.code, kExitOk) << cleared.err;
  EXPECT_TRUE(cleared.json().at("description").is_null());
  EXPECT_TRUE(cleared.json().at("metadata").as_object().empty());

  auto nothing = run({"tunnels", "update", "my-agent"});
  EXPECT_EQ(nothing.code, kExitUsage);
  EXPECT_TRUE(nothing.one_error_line()) << nothing.err;
  auto bad_metadata = run({"tunnels", "update", "my-agent", "--metadata", "[1]"});
  EXPECT_EQ(bad_metadata.code, kExitUsage);
  EXPECT_TRUE(bad_metadata.one_error_line()) << bad_metadata.err;
  EXPECT_EQ(run({"tunnels", "update", "my-agent", "--description", "x", "--clear-description"}).code, kExitUsage);

  auto rotated = run({"tunnels", "rotate-secret", "my-agent"});
  ASSERT_EQ(rotated.code, kExitOk) << rotated.err;
  EXPECT_EQ(rotated.out.rfind("connect_secret: tsec_", 0), 0u) << rotated.out;

  auto deleted = run({"tunnels", "delete", "my-agent"});
  ASSERT_EQ(deleted.code, kExitOk) << deleted.err;
  EXPECT_NE(deleted.out.find("status:                  delete_pending\n"), std::string::npos) << deleted.out;
  auto twice = run({"tunnels", "delete", "my-agent"});
  EXPECT_EQ(twice.code, kExitApiError);
  EXPECT_TRUE(twice.one_error_line()) << twice.err;
  EXPECT_NE(twice.err.find("HTTP 409"), std::string::npos) << twice.err;

  auto restored = run({"tunnels", "restore", "my-agent", "--json"});
  ASSERT_EQ(restored.code, kExitOk) << restored.err;
  EXPECT_EQ(restored.json().at("status").as_string(), "active");

  ASSERT_EQ(run({"tunnels", "delete", "my-agent"}).code, kExitOk);
  auto forced = run({"tunnels", "force-delete", "my-agent"});
  ASSERT_EQ(forced.code, kExitOk) << forced.err;
  auto gone = run({"tunnels", "get", "my-agent"});
  EXPECT_EQ(gone.code, kExitApiError);
  EXPECT_EQ(gone.err, "inkwire: no tunnel named my-agent in this organisation\n");
  auto gone_by_id = run({"tunnels", "get", "0b7c2f1e-4d7a-4c59-9a51-2f0c7e3f9d10"});
  EXPECT_EQ(gone_by_id.code, kExitApiError);
  EXPECT_NE(gone_by_id.err.find("HTTP 404: tunnel not found"), std::string::npos) << gone_by_id.err;
}

TEST_F(TunnelsCommand, SignCsrFromAStateDirectoryOrAFile) {
  auto created = run({"tunnels", "create", "pt-agent", "--tls-mode", "passthrough", "--json"});
  ASSERT_EQ(created.code, kExitOk) << created.err;
  const std::string public_host(created.json().at("tunnel").at("public_host").as_string());

  const fs::path dir = tmp_ / "pt-agent";
  auto signed_dir = run({"tunnels", "sign-csr", "pt-agent", "--state-dir", dir.string()});
  ASSERT_EQ(signed_dir.code, kExitOk) << signed_dir.err;
  EXPECT_NE(signed_dir.out.find("written to:"), std::string::npos) << signed_dir.out;
  auto state = StateDirectory::open(dir);
  ASSERT_TRUE(state);
  auto key = state->load_private_key();
  ASSERT_TRUE(key);
  EXPECT_EQ(state->check_certificate(key->get(), cp_.clock().now()).status, CertificateStatus::valid);
  auto got = run({"tunnels", "get", "pt-agent", "--json"});
  EXPECT_EQ(got.json().at("status").as_string(), "active");

  // A CSR file, printed as PEM.
  auto other_key = pki::generate_p256_key();
  const fs::path csr_file = tmp_ / "req.pem";
  std::ofstream(csr_file) << *pki::make_csr_pem(other_key->get(), public_host);
  auto signed_file = run({"tunnels", "sign-csr", "pt-agent", "--csr", csr_file.string()});
  ASSERT_EQ(signed_file.code, kExitOk) << signed_file.err;
  EXPECT_EQ(signed_file.out.rfind("-----BEGIN CERTIFICATE-----\n", 0), 0u) << signed_file.out;
  auto signed_json = run({"tunnels", "sign-csr", "pt-agent", "--csr", csr_file.string(), "--json"});
  ASSERT_EQ(signed_json.code, kExitOk) << signed_json.err;
  EXPECT_EQ(signed_json.json().at("cert_fingerprint_sha256").as_string().size(), 64u);

  EXPECT_EQ(run({"tunnels", "sign-csr", "pt-agent"}).code, kExitUsage);
  auto missing = run({"tunnels", "sign-csr", "pt-agent", "--csr", (tmp_ / "nope.pem").string()});
  EXPECT_EQ(missing.code, kExitLocalState);
  EXPECT_TRUE(missing.one_error_line()) << missing.err;

  ASSERT_EQ(run({"tunnels", "create", "edge-agent"}).code, kExitOk);
  auto edge = run({"tunnels", "sign-csr", "edge-agent", "--state-dir", (tmp_ / "edge-agent").string()});
  EXPECT_EQ(edge.code, kExitApiError);
  EXPECT_NE(edge.err.find("tls_mode"), std::string::npos) << edge.err;
}

TEST_F(TunnelsCommand, ConfigurationComesFromFlagsThenTheEnvironment) {
  const std::string good_url = env_["INKWIRE_API_URL"];
  env_["INKWIRE_API_URL"] = "http://127.0.0.1:1";
  auto from_env = run({"tunnels", "list"});
  EXPECT_EQ(from_env.code, kExitTransport);
  EXPECT_TRUE(from_env.one_error_line()) << from_env.err;
  EXPECT_NE(from_env.err.find("refused"), std::string::npos) << from_env.err;
  auto from_flag = run({"tunnels", "list", "--api-url", good_url});
  EXPECT_EQ(from_flag.code, kExitOk) << from_flag.err;

  auto wrong_key = run({"tunnels", "list", "--api-url", good_url, "--api-key", "ApiKey_x.y"});
  EXPECT_EQ(wrong_key.code, kExitApiError);
  EXPECT_NE(wrong_key.err.find("HTTP 401"), std::string::npos) << wrong_key.err;
  EXPECT_TRUE(wrong_key.one_error_line()) << wrong_key.err;

  auto member = run({"tunnels", "create", "by-member", "--api-url", good_url, "--api-key", cp_.member_key()});
  EXPECT_EQ(member.code, kExitApiError);
  EXPECT_NE(member.err.find("admin"), std::string::npos) << member.err;

  auto no_url = run_cli({"tunnels", "list"}, Env{{"INKWIRE_API_KEY", "k"}});
  EXPECT_EQ(no_url.code, kExitUsage);
  EXPECT_EQ(no_url.err, "inkwire: no API URL: pass --api-url or set INKWIRE_API_URL\n");
  auto no_key = run_cli({"tunnels", "list"}, Env{{"INKWIRE_API_URL", good_url}});
  EXPECT_EQ(no_key.code, kExitUsage);
  EXPECT_EQ(no_key.err, "inkwire: no API key: pass --api-key or set INKWIRE_API_KEY\n");
  auto remote_http = run({"tunnels", "list", "--api-url", "http://api.example.com"});
  EXPECT_EQ(remote_http.code, kExitUsage);
  EXPECT_TRUE(remote_http.one_error_line()) << remote_http.err;

  auto bad_name = run({"tunnels", "create", "Bad_Name", "--api-url", good_url});
  EXPECT_EQ(bad_name.code, kExitUsage);
  EXPECT_TRUE(bad_name.one_error_line()) << bad_name.err;
  EXPECT_EQ(run({"tunnels", "create", "good-name", "--tls-mode", "tcp"}).code, kExitUsage);
  EXPECT_EQ(run({"tunnels", "frobnicate"}).code, kExitUsage);
  EXPECT_EQ(run({"tunnels", "get"}).code, kExitUsage);
}

TEST_F(TunnelsCommand, HttpsWithTheCaFromTheFlagOrTheEnvironment) {
  TestCa ca;
  const auto [cert, key] = ca.issue("api", {"localhost"}, {"127.0.0.1"});
  TlsFront front(cp_.port(), cert, key);
  env_["INKWIRE_API_URL"] = "https://127.0.0.1:" + std::to_string(front.port());

  auto untrusted = run({"tunnels", "list"});
  EXPECT_EQ(untrusted.code, kExitTransport);
  EXPECT_TRUE(untrusted.one_error_line()) << untrusted.err;
  EXPECT_NE(untrusted.err.find("verification failed"), std::string::npos) << untrusted.err;
  EXPECT_NE(untrusted.err.find("--ca-file"), std::string::npos) << untrusted.err;

  EXPECT_EQ(run({"tunnels", "list", "--ca-file", ca.ca_file()}).code, kExitOk);
  env_["INKWIRE_CA_FILE"] = ca.ca_file();
  EXPECT_EQ(run({"tunnels", "list"}).code, kExitOk);
  auto bad_ca = run({"tunnels", "list", "--ca-file", (tmp_ / "missing.pem").string()});
  EXPECT_EQ(bad_ca.code, kExitUsage) << "the flag wins over the environment";
}
