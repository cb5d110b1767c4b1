#pragma once
// The `inkwire` command's config file: the third source of its settings, after flags and the
// environment. TOML with three optional keys:
//
//   api_url = "https://tunnels.example.com"
//   api_key = "ApiKey_..."
//   ca_file = "/etc/inkwire/ca.pem"
//
// Read from $INKWIRE_CONFIG if set (then the file must exist), else from
// $XDG_CONFIG_HOME/inkwire/config.toml or ~/.config/inkwire/config.toml if present. A file that
// holds an API key must not be readable by group or others (like ssh with its keys).
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/expected.h"

namespace inkwire::agent::cli {

struct CliConfig {
  std::string path;  // the file read; empty when none
  std::string api_url;
  std::string api_key;
  std::string ca_file;
};

using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;

// Error: one line naming the file (unreadable, bad TOML, a key of the wrong type, an API key in a
// file others can read).
Expected<CliConfig, std::string> load_cli_config(const EnvLookup& env);

}  // namespace inkwire::agent::cli
