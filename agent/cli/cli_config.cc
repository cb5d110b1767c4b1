#include "agent/cli/cli_config.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <toml++/toml.h>

namespace inkwire::agent::cli {

namespace {

std::string default_path(const EnvLookup& env) {
  if (auto xdg = env("XDG_CONFIG_HOME"); xdg && !xdg->empty()) return *xdg + "/inkwire/config.toml";
  if (auto home = env("HOME"); home && !home->empty()) return *home + "/.config/inkwire/config.toml";
  return {};
}

}  // namespace

Expected<CliConfig, std::string> load_cli_config(const EnvLookup& env) {
  CliConfig config;
  std::string path;
  bool required = false;
  if (auto explicit_path = env("INKWIRE_CONFIG"); explicit_path && !explicit_path->empty()) {
    path = *explicit_path;
    required = true;
  } else {
    path = default_path(env);
  }
  if (path.empty()) return config;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (required) return unexpected("config file " + path + " (INKWIRE_CONFIG) does not exist");
    return config;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return unexpected("cannot read the config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  toml::table table;
  try {
    table = toml::parse(text.str(), path);
  } catch (const toml::parse_error& error) {  // a local file, not network input
    return unexpected("config file " + path + ":" + std::to_string(error.source().begin.line) + ": " +
                      std::string(error.description()));
  }
  for (const auto& [key, value] : table) {
    const std::string_view name = key.str();
    std::string* target = name == "api_url" ? &config.api_url
                          : name == "api_key" ? &config.api_key
                          : name == "ca_file" ? &config.ca_file
                                              : nullptr;
    if (!target) return unexpected("config file " + path + ": unknown key '" + std::string(name) + "'");
    const auto* string_value = value.as_string();
    if (!string_value) return unexpected("config file " + path + ": " + std::string(name) + " must be a string");
    *target = string_value->get();
  }
  if (!config.api_key.empty()) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
      return unexpected("config file " + path + " holds an API key and others can read it: chmod 600 " + path);
    }
  }
  config.path = path;
  return config;
}

}  // namespace inkwire::agent::cli
