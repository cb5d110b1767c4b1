// `inkwire`: the agent's command line. `connect` brings a local service online through a tunnel
// and prints one line per request, like ngrok's console; `tunnels ...` manages tunnels through the
// REST API; `version` prints the version. Exit codes: agent/README.md.
#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "agent/cli/cli_config.h"
#include "agent/cli/tunnels_command.h"
#include "inkwire/agent.h"

namespace {

using inkwire::agent::cli::ExitCode;

// Exit codes beyond those of `tunnels` (agent/README.md).
constexpr int kExitAuthFailed = 5;  // the relay refused the tunnel's secret
constexpr int kExitSuperseded = 6;  // another agent took the tunnel over

int exit_code_for(const inkwire::AgentError& error) {
  using Kind = inkwire::AgentError::Kind;
  switch (error.kind) {
    case Kind::invalid_argument:
    case Kind::usage: return inkwire::agent::cli::kExitUsage;
    case Kind::transport_error: return inkwire::agent::cli::kExitTransport;
    case Kind::state_dir_error:
    case Kind::tunnel_removed: return inkwire::agent::cli::kExitLocalState;
    case Kind::auth_failed: return kExitAuthFailed;
    case Kind::superseded: return kExitSuperseded;
    default: return inkwire::agent::cli::kExitApiError;
  }
}

std::string clock_time() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char out[16];
  std::strftime(out, sizeof out, "%H:%M:%S", &tm);
  return out;
}

std::string human_bytes(std::uint64_t n) {
  char out[32];
  if (n < 1024) {
    std::snprintf(out, sizeof out, "%llu B", static_cast<unsigned long long>(n));
  } else if (n < 1024 * 1024) {
    std::snprintf(out, sizeof out, "%.1f KiB", static_cast<double>(n) / 1024);
  } else {
    std::snprintf(out, sizeof out, "%.1f MiB", static_cast<double>(n) / (1024 * 1024));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // The relay or an upstream closing under a write must be an EPIPE, not the end of the process.
  std::signal(SIGPIPE, SIG_IGN);
  // Settings come from flags, then the environment, then the config file: the file's values are
  // put into the environment only where it has none, so both subcommands see one order.
  auto config = inkwire::agent::cli::load_cli_config([](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (!value) return std::nullopt;
    return std::string(value);
  });
  if (!config) {
    std::cerr << "inkwire: " << config.error() << "\n";
    return inkwire::agent::cli::kExitUsage;
  }
  if (!config->api_url.empty()) ::setenv("INKWIRE_API_URL", config->api_url.c_str(), 0);
  if (!config->api_key.empty()) ::setenv("INKWIRE_API_KEY", config->api_key.c_str(), 0);
  if (!config->ca_file.empty()) ::setenv("INKWIRE_CA_FILE", config->ca_file.c_str(), 0);
  CLI::App app{"inkwire: bring a local service online through an inkwire tunnel"};
  app.require_subcommand(1);
  int exit_code = 0;

  inkwire::ConnectOptions options;
  std::string tls_mode = "edge";
  std::string pending = "auto-restore";
  std::string secret;
  bool quiet = false;
  auto* connect = app.add_subcommand("connect", "connect a tunnel and forward its traffic to a local URL");
  connect->add_option("name", options.name, "tunnel name")->required();
  connect->add_option("--forward-to", options.forward_to, "local URL, e.g. http://127.0.0.1:3000")->required();
  connect->add_option("--tls-mode", tls_mode, "edge (the server terminates TLS) or passthrough")
      ->check(CLI::IsMember({"edge", "passthrough"}));
  connect->add_option("--state-dir", options.state_dir, "state directory (default ~/.inkbox/tunnels/NAME)");
  connect->add_option("--pool-size", options.pool_size, "parked intakes, 1-32")->check(CLI::Range(1, 32));
  connect->add_option("--secret", secret, "the tunnel's connect secret (wins over the state file; else INKWIRE_SECRET)")
      ->envname("INKWIRE_SECRET");
  connect->add_option("--on-pending-removal", pending, "auto-restore or error")
      ->check(CLI::IsMember({"auto-restore", "error"}));
  connect->add_option("--data-plane-host", options.data_plane_host, "host[:port] of the relay (overrides the zone)");
  connect->add_option("--api-url", options.api_url, "control-plane URL (else INKWIRE_API_URL)");
  connect->add_option("--api-key", options.api_key, "API key (else INKWIRE_API_KEY)");
  connect->add_option("--ca-file", options.ca_file, "extra CA certificates, PEM (else INKWIRE_CA_FILE)");
  connect->add_option("--forward-to-ca-bundle", options.forward_to_ca_bundle,
                      "extra CA certificates (PEM) for an https:// --forward-to");
  bool no_verify = false;
  connect->add_flag("--forward-to-no-verify", no_verify,
                    "accept any certificate from an https:// --forward-to (a self-signed dev server)");
  connect->add_flag("--allow-remote-forwarding", options.allow_remote_forwarding,
                    "allow a --forward-to host other than loopback");
  connect->add_option("--max-request-bytes", options.max_inbound_body_bytes,
                      "largest request body taken from the relay (default 32 MiB, as the SDKs)");
  connect->add_option("--max-response-bytes", options.max_outbound_body_bytes,
                      "largest response body posted back (default 32 MiB; bodies stream, so more costs no memory)");
  long cert_check_seconds = 12 * 3600;
  connect->add_option("--cert-check-seconds", cert_check_seconds,
                      "passthrough: how often the running agent checks its certificate (default 12 h)")
      ->check(CLI::Range(1L, 30L * 24 * 3600));
  connect->add_flag("--quiet", quiet, "no per-request lines");
  connect->callback([&] {
    options.tls_mode = tls_mode == "passthrough" ? inkwire::TunnelTlsMode::passthrough : inkwire::TunnelTlsMode::edge;
    options.on_pending_removal =
        pending == "error" ? inkwire::PendingRemovalPolicy::error : inkwire::PendingRemovalPolicy::auto_restore;
    if (!secret.empty()) options.secret = secret;
    options.forward_to_verify_tls = !no_verify;
    options.certificate_check_interval = std::chrono::seconds(cert_check_seconds);
    options.signals = inkwire::SignalPolicy::on;
    options.on_status = [](const inkwire::StatusChange& change) {
      switch (change.status) {
        case inkwire::TunnelStatus::connecting: std::cerr << clock_time() << " connecting\n"; break;
        case inkwire::TunnelStatus::connected: std::cerr << clock_time() << " connected\n"; break;
        case inkwire::TunnelStatus::reconnecting:
          std::fprintf(stderr, "%s reconnecting in %.1f s (%s)\n", clock_time().c_str(), change.retry_in_seconds,
                       change.detail.c_str());
          break;
        case inkwire::TunnelStatus::closed: std::cerr << clock_time() << " closed: " << change.detail << "\n"; break;
      }
    };
    if (!quiet) {
      options.on_request = [](const inkwire::RequestLogLine& line) {
        const double ms = std::chrono::duration<double, std::milli>(line.duration).count();
        std::printf("%s %-7s %-40s %3d %8.1f ms %10s\n", clock_time().c_str(), line.method.c_str(), line.path.c_str(),
                    line.status, ms, human_bytes(line.bytes_out).c_str());
        std::fflush(stdout);
      };
    }
    auto listener = inkwire::TunnelListener::connect(options);
    if (!listener) {
      std::cerr << "inkwire: " << listener.error().message << "\n";
      exit_code = exit_code_for(listener.error());
      return;
    }
    std::cerr << "Forwarding " << (*listener)->public_url() << " -> " << options.forward_to << "\n";
    auto served = (*listener)->wait();
    if (!served) {
      std::cerr << "inkwire: " << served.error().message << "\n";
      exit_code = exit_code_for(served.error());
    }
  });

  inkwire::agent::cli::add_tunnels_command(app, exit_code);
  auto* version = app.add_subcommand("version", "print the version");
  version->callback([] { std::cout << "inkwire 0.1.0\n"; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return inkwire::agent::cli::handle_parse_error(app, error);
  }
  return exit_code;
}
