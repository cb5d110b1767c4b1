// The inkwire command's config file: where it is looked for, what it may hold, and the refusals.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "agent/cli/cli_config.h"

namespace inkwire::agent::cli {
namespace {

class CliConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/inkwire-cli-config-XXXXXX";
    dir_ = ::mkdtemp(pattern);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    const std::string path = dir_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  EnvLookup env() const {
    return [this](std::string_view name) -> std::optional<std::string> {
      auto it = vars_.find(std::string(name));
      if (it == vars_.end()) return std::nullopt;
      return it->second;
    };
  }
  std::string dir_;
  std::map<std::string, std::string> vars_;
};

TEST_F(CliConfigTest, NoFileIsAnEmptyConfig) {
  vars_["HOME"] = dir_;
  auto config = load_cli_config(env());
  ASSERT_TRUE(config) << config.error();
  EXPECT_TRUE(config->path.empty());
  EXPECT_TRUE(config->api_url.empty());
}

TEST_F(CliConfigTest, ReadsTheDefaultFileUnderHome) {
  vars_["HOME"] = dir_;
  write(".config/inkwire/config.toml", "api_url = \"https://t.example\"\napi_key = \"ApiKey_x\"\nca_file = \"/ca.pem\"\n");
  auto config = load_cli_config(env());
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->api_url, "https://t.example");
  EXPECT_EQ(config->api_key, "ApiKey_x");
  EXPECT_EQ(config->ca_file, "/ca.pem");
}

TEST_F(CliConfigTest, XdgConfigHomeWinsOverHome) {
  vars_["HOME"] = dir_;
  vars_["XDG_CONFIG_HOME"] = dir_ + "/xdg";
  write(".config/inkwire/config.toml", "api_url = \"https://home\"\n");
  write("xdg/inkwire/config.toml", "api_url = \"https://xdg\"\n");
  auto config = load_cli_config(env());
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->api_url, "https://xdg");
}

TEST_F(CliConfigTest, AnExplicitFileMustExist) {
  vars_["INKWIRE_CONFIG"] = dir_ + "/missing.toml";
  auto config = load_cli_config(env());
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().find("does not exist"), std::string::npos) << config.error();
}

TEST_F(CliConfigTest, RefusesUnknownKeysWrongTypesAndBadToml) {
  vars_["INKWIRE_CONFIG"] = write("a.toml", "api_ur1 = \"x\"\n");
  EXPECT_FALSE(load_cli_config(env()));
  vars_["INKWIRE_CONFIG"] = write("b.toml", "api_url = 3\n");
  EXPECT_FALSE(load_cli_config(env()));
  vars_["INKWIRE_CONFIG"] = write("c.toml", "api_url = \"unterminated\n");
  auto config = load_cli_config(env());
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().find("c.toml:1"), std::string::npos) << config.error();
}

TEST_F(CliConfigTest, AnApiKeyOthersCanReadIsRefused) {
  vars_["INKWIRE_CONFIG"] = write("open.toml", "api_key = \"ApiKey_x\"\n", 0644);
  auto config = load_cli_config(env());
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().find("chmod 600"), std::string::npos) << config.error();
  // Without a key the same mode is fine.
  vars_["INKWIRE_CONFIG"] = write("url.toml", "api_url = \"https://t\"\n", 0644);
  EXPECT_TRUE(load_cli_config(env()));
}

}  // namespace
}  // namespace inkwire::agent::cli
