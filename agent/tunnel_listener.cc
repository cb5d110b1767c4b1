// TunnelListener: the public face of the agent library (include/inkwire/agent.h). connect() runs
// the control-plane half (agent/connect_sequence), wait() runs the data plane (TunnelRuntime) on
// an io_context of its own, on the calling thread.
#include <signal.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdlib>
#include <optional>
#include <vector>

#include "agent/certificate_renewer.h"
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

// The signal has no handler of the program's own (SignalPolicy::automatic decides per signal, so a
// program that handles SIGTERM itself still gets Ctrl-C closing the listener).
bool signal_unclaimed(int signo) {
  struct sigaction current {};
  if (sigaction(signo, nullptr, &current) != 0) return false;
  return current.sa_handler == SIG_DFL;
}

}  // namespace

struct TunnelListener::Impl {
  ConnectOptions options;
  agent::ResolvedTunnel resolved;
  proto::ForwardTarget forward;
  std::vector<int> signals;  // the ones the listener handles (SignalPolicy)
  enum Mode { unused, sync, async };
  std::atomic<int> mode{unused};
  std::atomic<bool> close_requested{false};
  asio::io_context io{1};  // wait()'s
  std::optional<asio::any_io_executor> executor;  // where the runtime runs, once started
  std::unique_ptr<agent::TunnelRuntime> runtime;
  std::optional<asio::steady_timer> served;  // serve_forever() has returned (for aclose)
  agent::ControlClientOptions client_options;  // for the passthrough certificate's renewals
  bool finished = false;

  Expected<Unit, AgentError> start_runtime(asio::any_io_executor on);
  static Expected<Unit, AgentError> outcome(const std::optional<agent::RuntimeResult>& result);
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
  const bool has_handler = static_cast<bool>(options.handler);
  if (has_handler == !options.forward_to.empty()) {
    return unexpected(AgentError{AgentError::Kind::invalid_argument,
                                 has_handler ? "forward_to and handler are exclusive: give one"
                                             : "nothing to forward to: give forward_to (--forward-to) or a handler"});
  }
  if (has_handler && options.tls_mode == TunnelTlsMode::passthrough) {
    return unexpected(AgentError{AgentError::Kind::invalid_argument,
                                 "a passthrough tunnel needs forward_to (in-process handlers serve edge tunnels)"});
  }
  if (!options.forward_to.empty()) {
    auto forward = proto::parse_forward_target(options.forward_to, options.allow_remote_forwarding);
    if (!forward) return unexpected(AgentError{AgentError::Kind::invalid_argument, "--forward-to: " + forward.error()});
    impl->forward = *forward;
    // Checked before anything is created on the control plane, not when serving starts.
    if (!options.forward_to_ca_bundle.empty()) {
      auto probe = make_tls_client_context(options.forward_to_ca_bundle, {"http/1.1"});
      if (!probe) {
        return unexpected(AgentError{AgentError::Kind::invalid_argument, "--forward-to-ca-bundle: " + probe.error()});
      }
    }
  }
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
  impl->client_options = client_options;

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
  for (int signo : {SIGINT, SIGTERM}) {
    if (options.signals == SignalPolicy::on || (options.signals == SignalPolicy::automatic && signal_unclaimed(signo))) {
      impl->signals.push_back(signo);
    }
  }
  impl->options = std::move(options);
  return std::unique_ptr<TunnelListener>(new TunnelListener(std::move(impl)));
}

void TunnelListener::close() {
  impl_->close_requested = true;
  auto post_to = impl_->mode == Impl::async && impl_->executor ? *impl_->executor : impl_->io.get_executor();
  asio::post(post_to, [impl = impl_.get()] {
    if (impl->runtime) impl->runtime->close();
  });
}

Expected<Unit, AgentError> TunnelListener::Impl::start_runtime(asio::any_io_executor on) {
  executor = on;
  auto tls = make_tls_client_context(options.ca_file, {"h2"});
  if (!tls) return unexpected(AgentError{AgentError::Kind::invalid_argument, tls.error()});
  agent::SessionSettings settings;
  const std::string& zone = resolved.zone;
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
  settings.tunnel_id = resolved.tunnel.id;
  settings.secret = resolved.secret;
  settings.pool_size = options.pool_size;
  settings.public_host = resolved.public_host;
  settings.max_inbound_body_bytes = options.max_inbound_body_bytes;
  settings.max_outbound_body_bytes = options.max_outbound_body_bytes;
  auto logger = make_logger("inkwire", std::getenv("INKWIRE_LOG_LEVEL") ? std::getenv("INKWIRE_LOG_LEVEL") : "warn");
  std::unique_ptr<agent::HttpForwarder> forwarder;
  if (!options.forward_to.empty()) {
    agent::UpstreamTlsOptions upstream_tls{options.forward_to_verify_tls, options.forward_to_ca_bundle};
    auto dialer = agent::UpstreamDialer::create(on, forward, upstream_tls);
    if (!dialer) return unexpected(AgentError{AgentError::Kind::invalid_argument, dialer.error()});
    forwarder = std::make_unique<agent::HttpForwarder>(std::move(*dialer), logger);
  }
  std::unique_ptr<agent::PassthroughService> passthrough;
  if (options.tls_mode == TunnelTlsMode::passthrough) {
    // §4.9 step 5: the agent is the TLS server, with the certificate the control plane signed.
    auto context = agent::make_passthrough_tls_context(resolved.cert_chain_file.string(),
                                                       resolved.private_key_file.string());
    if (!context) return unexpected(AgentError{AgentError::Kind::state_dir_error, context.error()});
    passthrough = std::make_unique<agent::PassthroughService>();
    passthrough->tls = std::move(*context);
    passthrough->plaintext.public_host = resolved.public_host;
    passthrough->plaintext.max_inbound_body_bytes = options.max_inbound_body_bytes;
    passthrough->plaintext.max_outbound_body_bytes = options.max_outbound_body_bytes;
  }
  runtime = std::make_unique<agent::TunnelRuntime>(on, settings, std::move(*tls), std::move(forwarder), logger,
                                                   std::move(passthrough), options.handler ? &options.handler : nullptr,
                                                   options.ws_handler ? &options.ws_handler : nullptr);
  if (options.tls_mode == TunnelTlsMode::passthrough) {
    auto renew_client = agent::ControlClient::create(client_options);
    if (!renew_client) return unexpected(AgentError{AgentError::Kind::invalid_argument, renew_client.error().message()});
    runtime->set_certificate_renewer(std::make_unique<agent::CertificateRenewer>(
        on, std::move(*renew_client), resolved.cert_chain_file.parent_path(), resolved.tunnel.id, resolved.public_host,
        options.certificate_check_interval, logger));
  }
  if (options.on_status) {
    runtime->on_status = [cb = options.on_status](const agent::RuntimeStatusEvent& event) {
      cb(StatusChange{static_cast<TunnelStatus>(event.status), event.detail, event.retry_in_seconds});
    };
  }
  if (options.on_request) {
    runtime->on_request = [cb = options.on_request](const agent::RequestRecord& r) {
      cb(RequestLogLine{r.method, r.path, r.status, r.duration, r.bytes_in, r.bytes_out});
    };
  }
  if (close_requested) runtime->close();
  return Unit{};
}

Expected<Unit, AgentError> TunnelListener::Impl::outcome(const std::optional<agent::RuntimeResult>& result) {
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

Expected<Unit, AgentError> TunnelListener::wait() {
  Impl& impl = *impl_;
  int unused = Impl::unused;
  if (!impl.mode.compare_exchange_strong(unused, Impl::sync)) {
    return unexpected(AgentError{AgentError::Kind::usage, unused == Impl::sync
                                                              ? "wait() was already called on this listener"
                                                              : "this listener is served with serve_forever(); "
                                                                "wait() cannot be mixed with it"});
  }
  auto started = impl.start_runtime(impl.io.get_executor());
  if (!started) return unexpected(started.error());
  std::optional<asio::signal_set> signals;
  if (!impl.signals.empty()) {
    signals.emplace(impl.io);
    for (int signo : impl.signals) signals->add(signo);
    signals->async_wait([&impl](const boost::system::error_code& ec, int) {
      if (!ec && impl.runtime) impl.runtime->close();
    });
  }
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
  return Impl::outcome(result);
}

asio::awaitable<Expected<Unit, AgentError>> TunnelListener::serve_forever() {
  Impl& impl = *impl_;
  int unused = Impl::unused;
  if (!impl.mode.compare_exchange_strong(unused, Impl::async)) {
    co_return unexpected(AgentError{AgentError::Kind::usage, unused == Impl::async
                                                                 ? "serve_forever() was already called on this listener"
                                                                 : "this listener is served with wait(); "
                                                                   "serve_forever() cannot be mixed with it"});
  }
  auto executor = co_await asio::this_coro::executor;
  impl.served.emplace(executor);
  impl.served->expires_at(asio::steady_timer::time_point::max());
  auto started = impl.start_runtime(executor);
  if (!started) {
    impl.finished = true;
    impl.served->cancel();
    co_return unexpected(started.error());
  }
  // Signals as wait() does (SignalPolicy); the program's SIGPIPE disposition is its own here, as
  // the executor's threads are (the inkwire CLI ignores SIGPIPE).
  std::optional<asio::signal_set> signals;
  if (!impl.signals.empty()) {
    signals.emplace(executor);
    for (int signo : impl.signals) signals->add(signo);
    signals->async_wait([&impl](const boost::system::error_code& ec, int) {
      if (!ec && impl.runtime) impl.runtime->close();
    });
  }
  std::optional<agent::RuntimeResult> result;
  result = co_await impl.runtime->run();
  if (signals) signals->cancel();
  impl.finished = true;
  impl.served->cancel();
  co_return Impl::outcome(result);
}

asio::awaitable<void> TunnelListener::aclose() {
  close();
  Impl& impl = *impl_;
  if (impl.mode != Impl::async || !impl.served) co_return;
  while (!impl.finished) {
    co_await impl.served->async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace inkwire
