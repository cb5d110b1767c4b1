#pragma once
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include "agent/control_client.h"
#include "agent/state_directory.h"
#include "common/clock.h"
#include "common/expected.h"

namespace inkwire::agent {

// What to do with a tunnel found in delete_pending (PROTOCOL.md §2.9 step 6).
enum class PendingRemovalPolicy { auto_restore, error };

enum class ConnectErrorKind {
  tunnel_removed,      // the state file's tunnel is gone (GET 404): clear the state directory
  secret_unavailable,  // the tunnel exists but no secret was given or stored
  tls_mode_mismatch,   // the tunnel's tls_mode is not the requested one
  pending_removal,     // delete_pending and the policy is `error`
  not_active,          // after restore or signing the tunnel is still not active
  invalid_argument,    // name, pool size, tls_mode, configuration
  api_error,           // the API answered with an error (or nonsense)
  transport_error,     // the API could not be reached (connect, TLS, timeout)
  state_dir_error,     // the state directory or its files
};

std::string_view to_string(ConnectErrorKind kind);

// One line that says what went wrong and what to do about it.
struct ConnectError {
  ConnectErrorKind kind = ConnectErrorKind::api_error;
  std::string message;
  std::optional<ControlError> cause;  // for api_error and transport_error
};

struct ConnectRequest {
  std::string name;
  std::string tls_mode = "edge";  // "edge" or "passthrough"
  int pool_size = 4;              // only checked here (1..32); the data plane uses it
  std::optional<std::string> secret;  // wins over the state file, and is then saved into it
  std::optional<std::filesystem::path> state_dir;  // default ~/.inkbox/tunnels/{name}
  PendingRemovalPolicy on_pending_removal = PendingRemovalPolicy::auto_restore;
  // The data-plane host override ("host[:port]"); wins over the server's zone and is stored as zone.
  std::optional<std::string> data_plane_host;
  // The one-time secret banner on first create: nullopt prints it only when stderr is a TTY.
  std::optional<bool> print_secret;
  std::ostream* banner_stream = nullptr;  // where the banner goes; null: std::cerr
  const Clock* clock = nullptr;           // certificate expiry checks; null: the system clock
};

// The outcome of the control-plane half of connect(): everything the data plane needs.
struct ResolvedTunnel {
  Tunnel tunnel;       // as last fetched (after restore and signing)
  std::string secret;  // the connect secret for /_system/hello
  std::string zone;    // the data-plane host to dial (§2.8), "host" or "host:port"
  std::string public_host;
  std::filesystem::path state_dir;
  bool created = false;             // this call created the tunnel
  bool restored = false;            // this call restored it from delete_pending
  bool certificate_signed = false;  // passthrough: this call signed a new certificate
  // Passthrough: the key and certificate chain the agent terminates TLS with (empty for edge).
  std::filesystem::path private_key_file;
  std::filesystem::path cert_chain_file;
};

// Step 1 of §2.9: the name rule (§2.6), pool size 1..32, tls_mode edge|passthrough, a non-empty
// data-plane host override. (The forward target is the caller's to check.)
Expected<Unit, ConnectError> check_connect_request(const ConnectRequest& request);

// The request's state directory (or the default one), created and checked.
Expected<StateDirectory, ConnectError> open_state_directory(const ConnectRequest& request);

// PROTOCOL.md §2.9 steps 1–8, in the SDKs' order: read state.json; GET by the stored id (404 →
// tunnel_removed, never a silent re-create); else list and pick by name; else create and store the
// secret at once; check tls_mode; restore a delete_pending tunnel (auto_restore) or fail (error);
// require a secret; an edge tunnel must be active; passthrough: key, CSR, sign-csr when the
// certificate needs it, cert_chain.pem, re-fetch must show active; write state.json again with
// the chosen zone and public host.
Expected<ResolvedTunnel, ConnectError> resolve_tunnel(ControlClient& client, StateDirectory& state_dir,
                                                      const ConnectRequest& request);
// The same, opening the request's state directory first.
Expected<ResolvedTunnel, ConnectError> resolve_tunnel(ControlClient& client, const ConnectRequest& request);

// A ControlError as a ConnectError (api_error or transport_error) with advice for the usual
// statuses (401 key, 403 scope, 409 name taken, 429 daily limit).
ConnectError connect_error_from(const ControlError& error);

}  // namespace inkwire::agent
