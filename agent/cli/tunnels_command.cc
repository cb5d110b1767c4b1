#include "agent/cli/tunnels_command.h"

#include <CLI/CLI.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <vector>

#include "agent/control_client.h"
#include "agent/state_directory.h"
#include "common/uuid.h"
#include "proto/tunnel_name.h"

namespace inkwire::agent::cli {
namespace {

namespace json = boost::json;

// Every option of every subcommand. One instance lives as long as the CLI::App (the callbacks
// share it), so add_tunnels_command's caller needs to keep nothing but the App.
struct Options {
  TunnelsCommandIo io;
  int* exit_code = nullptr;

  std::string api_url, api_key, ca_file;
  int timeout_seconds = 10;
  bool json_output = false;

  std::string tunnel;  // id or name
  std::string name;
  std::string tls_mode = "edge";
  std::optional<std::string> description;
  bool clear_description = false;
  std::optional<std::string> metadata;
  bool clear_metadata = false;
  std::string csr_file;
  std::string state_dir;
  std::string out_file;

  std::ostream& out() const { return io.out ? *io.out : std::cout; }
  std::ostream& err() const { return io.err ? *io.err : std::cerr; }
};

// A failure: one line for stderr and its exit code.
struct Failure {
  int code = kExitApiError;
  std::string message;
};

Failure failure_of(const ControlError& e) {
  int code = kExitApiError;
  if (e.kind == ControlErrorKind::invalid_config) {
    code = kExitUsage;
  } else if (e.is_transport()) {
    code = kExitTransport;
  }
  std::string message = e.message();
  if (e.kind == ControlErrorKind::http_status && e.status == 401) message += " (check --api-key / INKWIRE_API_KEY)";
  if (e.kind == ControlErrorKind::http_status && e.status == 403)
    message += " (this needs an admin-scoped key of the tunnel's organisation)";
  if (e.kind == ControlErrorKind::tls_verify) message += " (pass the installation CA with --ca-file / INKWIRE_CA_FILE)";
  return Failure{code, std::move(message)};
}

template <typename T>
using Result = Expected<T, Failure>;

Result<ControlClient> make_client(const Options& o) {
  const EnvironmentLookup& env = o.io.env;
  auto pick = [&](const std::string& flag, std::string_view variable) -> std::string {
    if (!flag.empty()) return flag;
    return env(variable).value_or("");
  };
  ControlClientOptions options;
  options.api_url = pick(o.api_url, "INKWIRE_API_URL");
  options.api_key = pick(o.api_key, "INKWIRE_API_KEY");
  options.ca_file = pick(o.ca_file, "INKWIRE_CA_FILE");
  if (options.api_url.empty())
    return unexpected(Failure{kExitUsage, "no API URL: pass --api-url or set INKWIRE_API_URL"});
  if (options.api_key.empty())
    return unexpected(Failure{kExitUsage, "no API key: pass --api-key or set INKWIRE_API_KEY"});
  options.connect_timeout = std::chrono::seconds(o.timeout_seconds);
  options.request_timeout = std::chrono::seconds(o.timeout_seconds);
  options.user_agent = "inkwire-cli";
  auto client = ControlClient::create(std::move(options));
  if (!client) return unexpected(failure_of(client.error()));
  return std::move(*client);
}

// The positional TUNNEL: a UUID is an id; a tunnel name is looked up in the list.
Result<std::string> tunnel_id(const ControlClient& client, const std::string& arg) {
  if (auto id = Uuid::parse(arg)) return id->to_string();
  if (!proto::is_valid_tunnel_name(arg))
    return unexpected(Failure{kExitUsage, "'" + arg + "' is neither a tunnel id (UUID) nor a tunnel name"});
  auto all = client.list();
  if (!all) return unexpected(failure_of(all.error()));
  for (const auto& t : *all)
    if (t.tunnel_name == arg) return t.id;
  return unexpected(Failure{kExitApiError, "no tunnel named " + arg + " in this organisation"});
}

std::string text_or_dash(const std::optional<std::string>& s) { return s && !s->empty() ? *s : "-"; }

void print_tunnel(std::ostream& out, const Tunnel& t) {
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"name", t.tunnel_name},
      {"id", t.id},
      {"status", t.status},
      {"tls_mode", t.tls_mode},
      {"public_url", t.public_host ? "https://" + *t.public_host : "-"},
      {"zone", text_or_dash(t.zone)},
      {"description", text_or_dash(t.description)},
      {"metadata", json::serialize(t.metadata)},
      {"currently_connected", t.currently_connected ? "yes" : "no"},
      {"last_connected_at", text_or_dash(t.last_connected_at)},
      {"last_connected_ip_addr", text_or_dash(t.last_connected_ip_addr)},
      {"restore_deadline_at", text_or_dash(t.restore_deadline_at)},
      {"cert_fingerprint_sha256", text_or_dash(t.cert_fingerprint_sha256)},
      {"cert_expires_at", text_or_dash(t.cert_expires_at)},
      {"organization_id", t.organization_id},
      {"created_at", t.created_at},
      {"updated_at", t.updated_at},
  };
  std::size_t width = 0;
  for (const auto& [k, v] : rows) width = std::max(width, k.size());
  for (const auto& [k, v] : rows) out << k << ':' << std::string(width - k.size() + 1, ' ') << v << '\n';
}

void print_table(std::ostream& out, const std::vector<Tunnel>& tunnels) {
  std::vector<std::vector<std::string>> rows = {{"NAME", "STATUS", "MODE", "CONNECTED", "PUBLIC URL", "ID"}};
  for (const auto& t : tunnels)
    rows.push_back({t.tunnel_name, t.status, t.tls_mode, t.currently_connected ? "yes" : "no",
                    t.public_host ? "https://" + *t.public_host : "-", t.id});
  std::vector<std::size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << '\n';
  }
}

void print_json(std::ostream& out, const json::value& v) { out << json::serialize(v) << '\n'; }

Result<json::object> metadata_object(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return unexpected(Failure{kExitUsage, "--metadata must be a JSON object, e.g. '{\"team\":\"ops\"}'"});
  return std::move(v.as_object());
}

Result<std::string> read_input(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return unexpected(Failure{kExitLocalState, "cannot read " + path});
    ss << in.rdbuf();
  }
  return ss.str();
}

// ---- the subcommands -----------------------------------------------------------------------

Result<Unit> run_list(const Options& o, const ControlClient& client) {
  auto all = client.list();
  if (!all) return unexpected(failure_of(all.error()));
  if (o.json_output) {
    json::array items;
    for (const auto& t : *all) items.push_back(t.json);
    print_json(o.out(), json::object{{"tunnels", std::move(items)}});
  } else if (all->empty()) {
    o.out() << "no tunnels\n";
  } else {
    print_table(o.out(), *all);
  }
  return Unit{};
}

template <typename F>
Result<Unit> run_tunnel_call(const Options& o, const ControlClient& client, F call, std::string_view done) {
  auto id = tunnel_id(client, o.tunnel);
  if (!id) return unexpected(id.error());
  Expected<Tunnel, ControlError> t = call(*id);
  if (!t) return unexpected(failure_of(t.error()));
  if (o.json_output) {
    print_json(o.out(), t->json);
  } else {
    if (!done.empty()) o.out() << done << '\n';
    print_tunnel(o.out(), *t);
  }
  return Unit{};
}

Result<Unit> run_create(const Options& o, const ControlClient& client) {
  CreateTunnelRequest request;
  request.tunnel_name = o.name;
  request.tls_mode = o.tls_mode;
  request.description = o.description;
  if (o.metadata) {
    auto m = metadata_object(*o.metadata);
    if (!m) return unexpected(m.error());
    request.metadata = std::move(*m);
  }
  auto created = client.create(request);
  if (!created) return unexpected(failure_of(created.error()));
  if (o.json_output) {
    print_json(o.out(), json::object{{"tunnel", created->tunnel.json}, {"connect_secret", created->connect_secret}});
  } else {
    print_tunnel(o.out(), created->tunnel);
    o.out() << "\nconnect_secret: " << created->connect_secret << '\n';
    o.err() << "inkwire: the connect secret is shown only this once; keep it (or let `inkwire connect` create "
               "the tunnel, which saves it in the state directory)\n";
  }
  // The tunnel exists and its secret is printed; the metadata failure is still an error.
  if (created->metadata_error) return unexpected(failure_of(*created->metadata_error));
  return Unit{};
}

Result<Unit> run_update(const Options& o, const ControlClient& client) {
  TunnelUpdate update;
  if (o.clear_description) update.description.emplace(std::nullopt);
  if (o.description) update.description = o.description;
  if (o.clear_metadata) update.metadata = json::object();
  if (o.metadata) {
    auto m = metadata_object(*o.metadata);
    if (!m) return unexpected(m.error());
    update.metadata = std::move(*m);
  }
  if (!update.description && !update.metadata)
    return unexpected(Failure{kExitUsage, "nothing to update: give --description, --clear-description, --metadata or --clear-metadata"});
  return run_tunnel_call(o, client, [&](const std::string& id) { return client.update(id, update); }, "");
}

Result<Unit> run_rotate_secret(const Options& o, const ControlClient& client) {
  auto id = tunnel_id(client, o.tunnel);
  if (!id) return unexpected(id.error());
  auto secret = client.rotate_secret(*id);
  if (!secret) return unexpected(failure_of(secret.error()));
  if (o.json_output) {
    print_json(o.out(), json::object{{"connect_secret", *secret}});
  } else {
    o.out() << "connect_secret: " << *secret << '\n';
    o.err() << "inkwire: the old secret no longer works for new connections; pass the new one once with "
               "`inkwire connect --secret` (it is then saved in the state directory)\n";
  }
  return Unit{};
}

Result<Unit> run_sign_csr(const Options& o, const ControlClient& client) {
  auto id = tunnel_id(client, o.tunnel);
  if (!id) return unexpected(id.error());
  std::optional<StateDirectory> dir;
  std::string csr;
  if (!o.state_dir.empty()) {
    // What connect does for a passthrough tunnel: the key on disk (created if missing), a CSR for
    // the tunnel's public host, and cert_chain.pem written back.
    auto t = client.get(*id);
    if (!t) return unexpected(failure_of(t.error()));
    if (!t->public_host) return unexpected(Failure{kExitApiError, "tunnel " + t->tunnel_name + " has no public_host"});
    auto opened = StateDirectory::open(o.state_dir);
    if (!opened) return unexpected(Failure{kExitLocalState, opened.error()});
    dir.emplace(std::move(*opened));
    auto built = dir->build_csr(*t->public_host);
    if (!built) return unexpected(Failure{kExitLocalState, built.error()});
    csr = std::move(*built);
  } else {
    auto text = read_input(o.csr_file);
    if (!text) return unexpected(text.error());
    csr = std::move(*text);
  }
  auto cert = client.sign_csr(*id, csr);
  if (!cert) return unexpected(failure_of(cert.error()));
  if (dir) {
    if (auto ok = dir->write_cert_chain(cert->cert_pem, cert->chain_pem); !ok) return unexpected(Failure{kExitLocalState, ok.error()});
  }
  if (!o.out_file.empty()) {
    std::ofstream file(o.out_file, std::ios::binary | std::ios::trunc);
    file << cert->cert_pem << cert->chain_pem;
    file.close();
    if (!file) return unexpected(Failure{kExitLocalState, "cannot write " + o.out_file});
  }
  if (o.json_output) {
    print_json(o.out(), json::object{{"cert_pem", cert->cert_pem},
                                     {"chain_pem", cert->chain_pem},
                                     {"cert_fingerprint_sha256", cert->cert_fingerprint_sha256},
                                     {"cert_expires_at", cert->cert_expires_at}});
  } else if (dir || !o.out_file.empty()) {
    o.out() << "cert_fingerprint_sha256: " << cert->cert_fingerprint_sha256 << '\n'
            << "cert_expires_at:         " << cert->cert_expires_at << '\n'
            << "written to:              " << (dir ? dir->cert_chain_file().string() : o.out_file) << '\n';
  } else {
    o.out() << cert->cert_pem << cert->chain_pem;
  }
  return Unit{};
}

void add_connection_options(CLI::App* cmd, Options& o) {
  cmd->add_option("--api-url", o.api_url, "API base URL [env INKWIRE_API_URL]");
  cmd->add_option("--api-key", o.api_key, "API key [env INKWIRE_API_KEY]");
  cmd->add_option("--ca-file", o.ca_file, "PEM CA bundle trusted besides the system roots [env INKWIRE_CA_FILE]");
  cmd->add_option("--timeout", o.timeout_seconds, "seconds allowed to connect, and for each call")
      ->check(CLI::Range(1, 600));
  cmd->add_flag("--json", o.json_output, "print the API's JSON instead of text");
}

// Runs one subcommand: the client first, then `body`; a failure ends as one line on stderr and
// its exit code.
template <typename Body>
void run(const std::shared_ptr<Options>& o, Body body) {
  auto client = make_client(*o);
  Result<Unit> result = client ? body(*o, *client) : Result<Unit>(unexpected(client.error()));
  if (result) {
    *o->exit_code = kExitOk;
    return;
  }
  o->err() << "inkwire: " << result.error().message << '\n';
  *o->exit_code = result.error().code;
}

}  // namespace

EnvironmentLookup process_environment_lookup() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

int handle_parse_error(CLI::App& app, const CLI::ParseError& error) {
  if (error.get_exit_code() == 0) return app.exit(error);  // --help: to stdout, success
  std::cerr << "inkwire: " << error.what() << " (see --help)\n";
  return kExitUsage;
}

void add_tunnels_command(CLI::App& app, int& exit_code, TunnelsCommandIo io) {
  auto o = std::make_shared<Options>();
  o->io = std::move(io);
  if (!o->io.env) o->io.env = process_environment_lookup();
  o->exit_code = &exit_code;

  auto* tunnels = app.add_subcommand("tunnels", "manage tunnels through the REST API");
  tunnels->require_subcommand(1);

  auto* list = tunnels->add_subcommand("list", "list the organisation's tunnels");
  add_connection_options(list, *o);
  list->callback([o] { run(o, run_list); });

  auto* get = tunnels->add_subcommand("get", "show one tunnel");
  add_connection_options(get, *o);
  get->add_option("tunnel", o->tunnel, "tunnel id or name")->required();
  get->callback([o] {
    run(o, [](const Options& opt, const ControlClient& c) {
      return run_tunnel_call(opt, c, [&](const std::string& id) { return c.get(id); }, "");
    });
  });

  auto* create = tunnels->add_subcommand("create", "create a tunnel; prints its connect secret once");
  add_connection_options(create, *o);
  create->add_option("name", o->name, "tunnel name (3-63 of a-z, 0-9, -)")->required();
  create->add_option("--tls-mode", o->tls_mode, "edge (default) or passthrough")
      ->check(CLI::IsMember({"edge", "passthrough"}));
  create->add_option("--description", o->description, "free text");
  create->add_option("--metadata", o->metadata, "a JSON object");
  create->callback([o] {
    if (auto why = proto::tunnel_name_error(o->name); !why.empty()) {
      o->err() << "inkwire: invalid tunnel name '" << o->name << "': " << why << '\n';
      *o->exit_code = kExitUsage;
      return;
    }
    run(o, run_create);
  });

  auto* update = tunnels->add_subcommand("update", "change a tunnel's description or metadata");
  add_connection_options(update, *o);
  update->add_option("tunnel", o->tunnel, "tunnel id or name")->required();
  auto* description = update->add_option("--description", o->description, "new description");
  update->add_flag("--clear-description", o->clear_description, "remove the description")->excludes(description);
  auto* metadata = update->add_option("--metadata", o->metadata, "a JSON object replacing the metadata");
  update->add_flag("--clear-metadata", o->clear_metadata, "remove all metadata")->excludes(metadata);
  update->callback([o] { run(o, run_update); });

  struct Simple {
    const char* name;
    const char* help;
    Expected<Tunnel, ControlError> (ControlClient::*call)(std::string_view) const;
    const char* done;
  };
  for (const Simple& s : {
           Simple{"delete", "delete a tunnel (restorable for 24 h)", &ControlClient::delete_tunnel,
                  "deleted: restorable until restore_deadline_at with `inkwire tunnels restore`"},
           Simple{"restore", "restore a tunnel pending removal", &ControlClient::restore, "restored"},
           Simple{"force-delete", "remove a tunnel pending removal for good and free its name",
                  &ControlClient::force_delete, "removed for good; the name is free again"},
       }) {
    auto* cmd = tunnels->add_subcommand(s.name, s.help);
    add_connection_options(cmd, *o);
    cmd->add_option("tunnel", o->tunnel, "tunnel id or name")->required();
    cmd->callback([o, s] {
      run(o, [s](const Options& opt, const ControlClient& c) {
        return run_tunnel_call(opt, c, [&](const std::string& id) { return (c.*s.call)(id); }, s.done);
      });
    });
  }

  auto* rotate = tunnels->add_subcommand("rotate-secret", "issue a new connect secret; the old one stops working");
  add_connection_options(rotate, *o);
  rotate->add_option("tunnel", o->tunnel, "tunnel id or name")->required();
  rotate->callback([o] { run(o, run_rotate_secret); });

  auto* sign = tunnels->add_subcommand("sign-csr", "have the installation CA sign a passthrough tunnel's CSR");
  add_connection_options(sign, *o);
  sign->add_option("tunnel", o->tunnel, "tunnel id or name")->required();
  auto* csr = sign->add_option("--csr", o->csr_file, "PEM CSR file ('-' for stdin)");
  auto* state = sign->add_option("--state-dir", o->state_dir,
                                 "a state directory: use (or create) its key, build the CSR, write cert_chain.pem");
  csr->excludes(state);
  sign->add_option("--out", o->out_file, "also write the certificate and chain PEM to this file");
  sign->callback([o, csr, state] {
    if (csr->count() == 0 && state->count() == 0) {
      o->err() << "inkwire: sign-csr needs --csr FILE or --state-dir DIR\n";
      *o->exit_code = kExitUsage;
      return;
    }
    run(o, run_sign_csr);
  });
}

}  // namespace inkwire::agent::cli
