// TunnelListener: the public face of the agent library (include/inkwire/agent.h). connect() runs
// the control-plane half (agent/connect_sequence), wait() runs the data plane (TunnelRuntime) on
// an io_context of its own, on the calling thread.
#include <signal.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdlib>
#include <optional>

#include "agent/connect_sequence.h"
#include "agent/control_client.h"
#include "agent/tunnel_runtime.h"
#include "common/logging.h"
#include "common/tls_server_context.h"
#include "inkwire/agent.h"
#include "proto/forward_target.h"

namespace inkwire {

namespace asio = boost::asio;

namespace {

std::string from_env(const std::string& value, const char* variable) {
  if (!value.empty()) return value;
  const char* env = std::getenv(variable);
  return env ? std::string(env) : std::string();
}

AgentError::Kind kind_of(agent::ConnectErrorKind kind) {
  switch (kind) {
    case agent::ConnectErrorKind::tunnel_removed: return AgentError::Kind::tunnel_removed;
    case agent::ConnectErrorKind::secret_unavailable: return AgentError::Kind::secret_unavailable;
    case agent::ConnectErrorKind::tls_mode_mismatch: return AgentError::Kind::tls_mode_mismatch;
    case agent::ConnectErrorKind::pending_removal: return AgentError::Kind::pending_removal;
    case agent::ConnectErrorKind::not_active: return AgentError::Kind::not_active;
    case agent::ConnectErrorKind::invalid_argument: return AgentError::Kind::invalid_argument;
    case agent::ConnectErrorKind::transport_error: return AgentError::Kind::transport_error;
    case agent::ConnectErrorKind::state_dir_error: return AgentError::Kind::state_dir_error;
    default: return AgentError::Kind::api_error;
  }
}

// SIGINT/SIGTERM have no handler of the program's own (SignalPolicy::automatic).
bool signals_unclaimed() {
  for (int signo : {SIGINT, SIGTERM}) {
    struct sigaction current {};
    if (sigaction(signo, nullptr, &current) != 0) return false;
    if (current.sa_handler != SIG_DFL) return false;
  }
  return true;
}

}  // namespace

struct TunnelListener::Impl {
  ConnectOptions options;
  agent::ResolvedTunnel resolved;
  proto::ForwardTarget forward;
  bool signals = false;
  std::atomic<bool> waited{false};
  std::atomic<bool> close_requested{false};
  asio::io_context io{1};
  std::unique_ptr<agent::TunnelRuntime> runtime;
};

TunnelListener::TunnelListener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TunnelListener::~TunnelListener() = default;

const std::string& TunnelListener::tunnel_id() const { return impl_->resolved.tunnel.id; }
const std::string& TunnelListener::name() const { return impl_->resolved.tunnel.tunnel_name; }
const std::string& TunnelListener::public_host() const { return impl_->resolved.public_host; }
// public_host is a bare name (§2.8). The edge shares its TLS port with the relay (§8 A31), so a
// zone that names a port other than 443 (a local stack) names the public port as well.
std::string TunnelListener::public_url() const {
  const std::string& zone = impl_->resolved.zone;
  const auto colon = zone.rfind(':');
  const bool has_port = colon != std::string::npos && zone.find(']', colon) == std::string::npos &&
                        zone.find(':') == colon;
  std::string url = "https://" + impl_->resolved.public_host;
  if (has_port && zone.substr(colon + 1) != "443") url += zone.substr(colon);
  return url;
}

Expected<std::unique_ptr<TunnelListener>, AgentError> TunnelListener::connect(ConnectOptions options) {
  auto impl = std::make_unique<Impl>();
  auto forward = proto::parse_forward_target(options.forward_to, options.allow_remote_forwarding);
  if (!forward) return unexpected(AgentError{AgentError::Kind::invalid_argument, "--forward-to: " + forward.error()});
  impl->forward = *forward;
  agent::ControlClientOptions client_options;
  client_options.api_url = from_env(options.api_url, "INKWIRE_API_URL");
  client_options.api_key = from_env(options.api_key, "INKWIRE_API_KEY");
  client_options.ca_file = from_env(options.ca_file, "INKWIRE_CA_FILE");
  options.ca_file = client_options.ca_file;
  if (client_options.api_url.empty() || client_options.api_key.empty()) {
    return unexpected(AgentError{AgentError::Kind::invalid_argument,
                                 "the control plane is not configured: set INKWIRE_API_URL and INKWIRE_API_KEY "
                                 "(or --api-url and --api-key)"});
  }
  auto client = agent::ControlClient::create(client_options);
  if (!client) return unexpected(AgentError{AgentError::Kind::invalid_argument, client.error().message()});

  agent::ConnectRequest request;
  request.name = options.name;
  request.tls_mode = options.tls_mode == TunnelTlsMode::passthrough ? "passthrough" : "edge";
  request.pool_size = options.pool_size;
  request.secret = options.secret;
  if (!options.state_dir.empty()) request.state_dir = options.state_dir;
  request.on_pending_removal = options.on_pending_removal == PendingRemovalPolicy::error
                                   ? agent::PendingRemovalPolicy::error
                                   : agent::PendingRemovalPolicy::auto_restore;
  if (!options.data_plane_host.empty()) request.data_plane_host = options.data_plane_host;
  request.print_secret = options.print_secret;
  auto resolved = agent::resolve_tunnel(*client, request);
  if (!resolved) return unexpected(AgentError{kind_of(resolved.error().kind), resolved.error().message});
  impl->resolved = std::move(*resolved);
  impl->signals = options.signals == SignalPolicy::on ||
                  (options.signals == SignalPolicy::automatic && signals_unclaimed());
  impl->options = std::move(options);
  return std::unique_ptr<TunnelListener>(new TunnelListener(std::move(impl)));
}

void TunnelListener::close() {
  impl_->close_requested = true;
  asio::post(impl_->io, [impl = impl_.get()] {
    if (impl->runtime) impl->runtime->close();
  });
}

Expected<Unit, AgentError> TunnelListener::wait() {
  Impl& impl = *impl_;
  if (impl.waited.exchange(true)) {
    return unexpected(AgentError{AgentError::Kind::usage, "wait() was already called on this listener"});
  }
  auto tls = make_tls_client_context(impl.options.ca_file, {"h2"});
  if (!tls) return unexpected(AgentError{AgentError::Kind::invalid_argument, tls.error()});
  agent::SessionSettings settings;
  const std::string& zone = impl.resolved.zone;
  settings.authority = zone;
  // "host[:port]"; an IPv6 literal comes bracketed.
  if (!zone.empty() && zone.front() == '[') {
    const auto close_bracket = zone.find(']');
    settings.host = zone.substr(1, close_bracket - 1);
    if (close_bracket + 1 < zone.size() && zone[close_bracket + 1] == ':') settings.port = zone.substr(close_bracket + 2);
  } else if (const auto colon = zone.rfind(':'); colon != std::string::npos) {
    settings.host = zone.substr(0, colon);
    settings.port = zone.substr(colon + 1);
  } else {
    settings.host = zone;
  }
  settings.tunnel_id = impl.resolved.tunnel.id;
  settings.secret = impl.resolved.secret;
  settings.pool_size = impl.options.pool_size;
  settings.public_host = impl.resolved.public_host;
  settings.max_inbound_body_bytes = impl.options.max_inbound_body_bytes;
  settings.max_outbound_body_bytes = impl.options.max_outbound_body_bytes;
  auto logger = make_logger("inkwire", std::getenv("INKWIRE_LOG_LEVEL") ? std::getenv("INKWIRE_LOG_LEVEL") : "warn");
  agent::UpstreamTlsOptions upstream_tls{impl.options.forward_to_verify_tls, impl.options.forward_to_ca_bundle};
  auto dialer = agent::UpstreamDialer::create(impl.io.get_executor(), impl.forward, upstream_tls);
  if (!dialer) return unexpected(AgentError{AgentError::Kind::invalid_argument, dialer.error()});
  auto forwarder = std::make_unique<agent::HttpForwarder>(std::move(*dialer), logger);
  std::unique_ptr<agent::PassthroughService> passthrough;
  if (impl.options.tls_mode == TunnelTlsMode::passthrough) {
    // §4.9 step 5: the agent is the TLS server, with the certificate the control plane signed.
    auto context = agent::make_passthrough_tls_context(impl.resolved.cert_chain_file.string(),
                                                       impl.resolved.private_key_file.string());
    if (!context) return unexpected(AgentError{AgentError::Kind::state_dir_error, context.error()});
    passthrough = std::make_unique<agent::PassthroughService>();
    passthrough->tls = std::move(*context);
    passthrough->plaintext.public_host = impl.resolved.public_host;
    passthrough->plaintext.max_inbound_body_bytes = impl.options.max_inbound_body_bytes;
    passthrough->plaintext.max_outbound_body_bytes = impl.options.max_outbound_body_bytes;
  }
  impl.runtime = std::make_unique<agent::TunnelRuntime>(impl.io.get_executor(), settings, std::move(*tls),
                                                        std::move(forwarder), logger, std::move(passthrough));
  if (impl.options.on_status) {
    impl.runtime->on_status = [cb = impl.options.on_status](const agent::RuntimeStatusEvent& event) {
      cb(StatusChange{static_cast<TunnelStatus>(event.status), event.detail, event.retry_in_seconds});
    };
  }
  if (impl.options.on_request) {
    impl.runtime->on_request = [cb = impl.options.on_request](const agent::RequestRecord& r) {
      cb(RequestLogLine{r.method, r.path, r.status, r.duration, r.bytes_in, r.bytes_out});
    };
  }
  std::optional<asio::signal_set> signals;
  if (impl.signals) {
    signals.emplace(impl.io, SIGINT, SIGTERM);
    signals->async_wait([&impl](const boost::system::error_code& ec, int) {
      if (!ec && impl.runtime) impl.runtime->close();
    });
  }
  if (impl.close_requested) impl.runtime->close();
  std::optional<agent::RuntimeResult> result;
  asio::co_spawn(impl.io, impl.runtime->run(), [&](std::exception_ptr error, agent::RuntimeResult r) {
    if (!error) result = std::move(r);
    if (signals) signals->cancel();
  });
  // OpenSSL writes with write(2): without this, a relay that goes away under a write would end the
  // embedding program with SIGPIPE. Blocked on this thread only, and any SIGPIPE raised meanwhile
  // is consumed before the mask is restored, so the program's own disposition is untouched.
  sigset_t pipe_set;
  sigset_t previous_mask;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &previous_mask);
  impl.io.run();
  const timespec no_wait{0, 0};
  while (sigtimedwait(&pipe_set, nullptr, &no_wait) == SIGPIPE) {
  }
  pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
  if (!result) return unexpected(AgentError{AgentError::Kind::transport_error, "the agent stopped unexpectedly"});
  if (result->end == agent::SessionEnd::auth_failed) {
    return unexpected(AgentError{AgentError::Kind::auth_failed,
                                 "the relay refused this tunnel's secret (" + result->detail +
                                     "); pass the current secret with --secret after a rotate-secret"});
  }
  if (result->end == agent::SessionEnd::superseded) {
    return unexpected(AgentError{AgentError::Kind::superseded, "another agent took this tunnel over"});
  }
  return Unit{};
}

}  // namespace inkwire
