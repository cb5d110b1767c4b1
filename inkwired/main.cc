// inkwired: the inkwire server. `serve` runs the configured roles; `migrate`, `admin` and `ca` are
// one-shot operator commands. Only wiring here; the work lives in the libraries.
#include <csignal>
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "common/config.h"
#include "inkwired/admin_commands.h"
#include "inkwired/serve_command.h"

using namespace inkwire;

namespace {

struct CommonOptions {
  std::string config_file;
  std::vector<std::string> sets;
};

void add_common(CLI::App* cmd, CommonOptions& o) {
  cmd->add_option("--config,-c", o.config_file, "TOML configuration file")->check(CLI::ExistingFile);
  cmd->add_option("--set,-s", o.sets, "override a configuration key: key=value (repeatable)");
}

std::optional<Config> load(const CommonOptions& o) {
  ConfigSources sources;
  if (!o.config_file.empty()) sources.file = o.config_file;
  sources.environment = process_environment();
  for (const auto& s : o.sets) {
    const auto eq = s.find('=');
    if (eq == std::string::npos) {
      std::cerr << "inkwired: --set expects key=value, got '" << s << "'\n";
      return std::nullopt;
    }
    sources.overrides.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  auto config = load_config(sources);
  if (!config) {
    std::cerr << "inkwired: " << config.error().message << "\n";
    return std::nullopt;
  }
  return std::move(*config);
}

}  // namespace

int main(int argc, char** argv) {
  // OpenSSL writes TLS records (close_notify included) with write(2), not send(MSG_NOSIGNAL): a
  // peer that has gone would otherwise kill the whole server with SIGPIPE. EPIPE is handled.
  std::signal(SIGPIPE, SIG_IGN);
  // Listing 10,000 tunnels allocates ~12 MB of short-lived buffers per request. With glibc's
  // defaults those are mmap()ed and returned at once, and every request pays page faults again
  // (bench/controlplane: list p50 ~70 ms -> ~34 ms with these). Memory stays bounded by the
  // largest burst; it is reused rather than returned.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024);
  CLI::App app{"inkwired: the inkwire tunnel server (edge, relay and control plane)"};
  app.require_subcommand(1);
  CommonOptions common;
  int code = 0;

  auto* serve = app.add_subcommand("serve", "run the roles named in the configuration");
  add_common(serve, common);
  serve->callback([&] {
    if (auto c = load(common)) code = run_serve(*c); else code = 2;
  });

  auto* migrate = app.add_subcommand("migrate", "apply database migrations (idempotent)");
  add_common(migrate, common);
  migrate->callback([&] {
    if (auto c = load(common)) code = run_migrate(*c); else code = 2;
  });

  auto* admin = app.add_subcommand("admin", "organisations and API keys");
  admin->require_subcommand(1);
  std::string name, org, scope, description, key_id;
  bool if_missing = false;
  auto* create_org = admin->add_subcommand("create-org", "create an organisation; prints its id");
  add_common(create_org, common);
  create_org->add_option("--name", name, "organisation name")->required();
  create_org->add_flag("--if-missing", if_missing, "print the existing id instead of failing");
  create_org->callback([&] {
    if (auto c = load(common)) code = run_create_org(*c, name, if_missing); else code = 2;
  });

  std::string disabled_text, limit_text;
  auto* set_org = admin->add_subcommand("set-org", "disable/enable an organisation or set its daily creation limit");
  add_common(set_org, common);
  set_org->add_option("--org", org, "organisation name or id")->required();
  auto* disabled_opt = set_org->add_option("--disabled", disabled_text, "true or false")->check(CLI::IsMember({"true", "false"}));
  auto* limit_opt = set_org->add_option("--daily-create-limit", limit_text, "tunnels per UTC day, or 'default'");
  set_org->callback([&] {
    auto c = load(common);
    code = c ? run_set_org(*c, org,
                           disabled_opt->count() ? std::optional(disabled_text == "true") : std::nullopt,
                           limit_opt->count() ? std::optional(limit_text) : std::nullopt)
             : 2;
  });

  auto* create_key = admin->add_subcommand("create-api-key", "create an API key; prints it once");
  add_common(create_key, common);
  create_key->add_option("--org", org, "organisation name or id")->required();
  create_key->add_option("--scope", scope, "admin or member")->required();
  auto* desc_opt = create_key->add_option("--description", description, "what the key is for");
  create_key->callback([&] {
    auto c = load(common);
    code = c ? run_create_api_key(*c, org, scope, desc_opt->count() ? std::optional(description) : std::nullopt) : 2;
  });

  auto* list_keys = admin->add_subcommand("list-api-keys", "list an organisation's API keys");
  add_common(list_keys, common);
  list_keys->add_option("--org", org, "organisation name or id")->required();
  list_keys->callback([&] {
    if (auto c = load(common)) code = run_list_api_keys(*c, org); else code = 2;
  });

  auto* revoke_key = admin->add_subcommand("revoke-api-key", "revoke an API key");
  add_common(revoke_key, common);
  revoke_key->add_option("--id", key_id, "key id (UUID) or ApiKey_<uuid> prefix")->required();
  revoke_key->callback([&] {
    if (auto c = load(common)) code = run_revoke_api_key(*c, key_id); else code = 2;
  });

  auto* ca = app.add_subcommand("ca", "the installation certificate authority");
  ca->require_subcommand(1);
  std::string cert_out, key_out;
  std::vector<std::string> dns, ips;
  int days = 365;
  auto* issue = ca->add_subcommand("issue-server-cert", "issue a server certificate from the CA (created if missing)");
  add_common(issue, common);
  issue->add_option("--cert-out", cert_out, "certificate chain PEM to write")->required();
  issue->add_option("--key-out", key_out, "private key PEM to write (mode 0600)")->required();
  issue->add_option("--dns", dns, "DNS name (repeatable)");
  issue->add_option("--ip", ips, "IP address (repeatable)");
  issue->add_option("--days", days, "validity in days")->check(CLI::Range(1, 3650));
  issue->callback([&] {
    if (auto c = load(common)) code = run_issue_server_cert(*c, cert_out, key_out, dns, ips, days); else code = 2;
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return code;
}
