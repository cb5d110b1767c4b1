#pragma once
// inkwire's agent library: bring a local service online through a tunnel.
//
//   inkwire::ConnectOptions options;
//   options.name = "my-app";
//   options.forward_to = "http://127.0.0.1:3000";
//   auto listener = inkwire::TunnelListener::connect(options);   // control plane: find or create
//   if (!listener) { std::cerr << listener.error().message << "\n"; return 1; }
//   std::cout << (*listener)->public_url() << "\n";
//   (*listener)->wait();                                           // serve until close() or a signal
//
// It speaks the protocol of the official Inkbox Tunnels SDKs (PROTOCOL.md) and keeps the same
// state directory, so a directory written by either can be reused by the other.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "common/expected.h"
#include "inkwire/handler.h"

namespace inkwire {

enum class TunnelTlsMode { edge, passthrough };
enum class PendingRemovalPolicy { auto_restore, error };
// automatic: a SIGINT / SIGTERM handler for each of the two the process had none for when the
// listener was made (a program that owns its shutdown keeps it); on: both, always; off: none.
enum class SignalPolicy { automatic, on, off };
enum class TunnelStatus { connecting, connected, reconnecting, closed };

struct StatusChange {
  TunnelStatus status = TunnelStatus::connecting;
  std::string detail;           // why, for reconnecting and closed
  double retry_in_seconds = 0;  // reconnecting
};

struct RequestLogLine {
  std::string method;
  std::string path;
  int status = 0;
  std::chrono::steady_clock::duration duration{};
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
};

struct ConnectOptions {
  std::string name;
  // Where requests go: exactly one of forward_to and handler (PROTOCOL.md §6.6). ws_handler takes
  // WebSockets and needs one of the two; without it forward_to bridges them to the upstream.
  std::string forward_to;  // http(s)://127.0.0.1:PORT (loopback only unless allow_remote_forwarding)
  HttpHandler handler;
  WebSocketHandler ws_handler;
  bool allow_remote_forwarding = false;
  bool forward_to_verify_tls = true;  // https:// forward_to: verify the upstream's certificate
  std::string forward_to_ca_bundle;   // extra CAs (PEM) for an https:// forward_to
  TunnelTlsMode tls_mode = TunnelTlsMode::edge;
  std::string state_dir;  // default ~/.inkbox/tunnels/{name}
  int pool_size = 4;      // 1..32
  std::optional<std::string> secret;  // wins over the state file (and is saved into it)
  PendingRemovalPolicy on_pending_removal = PendingRemovalPolicy::auto_restore;
  std::uint64_t max_inbound_body_bytes = 32 * 1024 * 1024;
  std::uint64_t max_outbound_body_bytes = 32 * 1024 * 1024;
  std::string data_plane_host;  // host[:port] override of the tunnel's zone
  std::string api_url;   // else INKWIRE_API_URL
  std::string api_key;   // else INKWIRE_API_KEY
  std::string ca_file;   // else INKWIRE_CA_FILE: a private installation's CA
  SignalPolicy signals = SignalPolicy::automatic;
  // Passthrough: how often a running agent checks its certificate (re-signed when fewer than 14
  // days are left; connect() always checks).
  std::chrono::seconds certificate_check_interval{12 * 3600};
  std::optional<bool> print_secret;  // the one-time secret banner (default: when stderr is a TTY)
  std::function<void(const StatusChange&)> on_status;
  std::function<void(const RequestLogLine&)> on_request;
};

struct AgentError {
  enum class Kind {
    invalid_argument,    // a bad option (name, pool size, forward_to)
    tunnel_removed,      // the state file names a tunnel the server no longer has: clear the state dir
    secret_unavailable,  // the tunnel exists but no secret is known (state file or option)
    tls_mode_mismatch,
    pending_removal,     // deleted and the policy is "error"
    not_active,
    api_error,           // the control plane refused (status and detail in the message)
    transport_error,     // cannot reach the control plane or the relay (TLS included)
    state_dir_error,
    auth_failed,         // the relay refused the tunnel's secret (hello 401/403)
    superseded,          // another agent took the tunnel over
    usage,               // wait() twice, or mixed sync and async use
  };
  Kind kind = Kind::invalid_argument;
  std::string message;  // one line that says what happened and what to do
};

class TunnelListener {
 public:
  static Expected<std::unique_ptr<TunnelListener>, AgentError> connect(ConnectOptions options);
  ~TunnelListener();
  TunnelListener(const TunnelListener&) = delete;
  TunnelListener& operator=(const TunnelListener&) = delete;

  const std::string& tunnel_id() const;
  const std::string& name() const;
  const std::string& public_host() const;
  std::string public_url() const;  // https://{public_host}, plus the zone's port when it is not 443

  // Serves on the calling thread until close(), a signal (per SignalPolicy) or a terminal error
  // (auth_failed, superseded). In-flight requests finish (within 30 s) before it returns.
  Expected<Unit, AgentError> wait();
  // The same as an Asio awaitable, on the executor it is awaited on (handlers run there too). That
  // executor's execution context must outlive the listener.
  // A listener is served either way, once: mixing wait() and serve_forever() is a usage error.
  boost::asio::awaitable<Expected<Unit, AgentError>> serve_forever();
  // From any thread (or a signal handler's thread): drain and make wait() / serve_forever() return.
  void close();
  // close(), then waits until serve_forever() has returned.
  boost::asio::awaitable<void> aclose();

  struct Impl;

 private:
  explicit TunnelListener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace inkwire
