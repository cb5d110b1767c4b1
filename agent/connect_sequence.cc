#include "agent/connect_sequence.h"

#include <unistd.h>

#include <iostream>

#include "agent/pki.h"
#include "common/uuid.h"
#include "proto/tunnel_name.h"

namespace inkwire::agent {
namespace {

// The SDKs' last-resort fallbacks (§2.8), used only when neither the server nor the state file
// names a host.
constexpr std::string_view kFallbackZone = "inkboxwire.com";

ConnectError make_error(ConnectErrorKind kind, std::string message) { return ConnectError{kind, std::move(message), {}}; }

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

const std::string* non_empty(const std::optional<std::string>& s) { return s && !s->empty() ? &*s : nullptr; }

// §2.8: the override, else the server's, else the state file's, else the SDKs' default.
std::string choose_zone(const ConnectRequest& request, const Tunnel& tunnel, const std::optional<proto::TunnelState>& state) {
  if (const auto* z = non_empty(request.data_plane_host)) return *z;
  if (const auto* z = non_empty(tunnel.zone)) return *z;
  if (state) {
    if (const auto* z = non_empty(state->zone)) return *z;
  }
  return std::string(kFallbackZone);
}

std::string choose_public_host(const ConnectRequest& request, const Tunnel& tunnel,
                               const std::optional<proto::TunnelState>& state) {
  if (const auto* h = non_empty(tunnel.public_host)) return *h;
  if (state) {
    if (const auto* h = non_empty(state->public_host)) return *h;
  }
  return request.name + "." + std::string(kFallbackZone);
}

proto::TunnelState state_of(const Tunnel& tunnel, const std::string& secret, const std::string& zone,
                            const std::string& public_host) {
  proto::TunnelState s;
  s.tunnel_id = tunnel.id;
  s.name = tunnel.tunnel_name;
  s.secret = secret;
  s.mode = tunnel.tls_mode;
  s.zone = zone;
  s.public_host = public_host;
  return s;
}

ConnectError state_error(const std::string& message) { return make_error(ConnectErrorKind::state_dir_error, message); }

void print_secret_banner(std::ostream& out, const Tunnel& tunnel, const std::string& secret,
                         const std::string& public_host, const StateDirectory& dir) {
  out << "inkwire: created tunnel " << tunnel.tunnel_name << " (https://" << public_host << ", " << tunnel.tls_mode
      << ")\n"
      << "inkwire: its connect secret is shown only this once:\n\n"
      << "    " << secret << "\n\n"
      << "inkwire: it is saved in " << dir.state_file().string() << "; keep that file (or the secret) safe.\n"
      << "inkwire: a lost secret can be replaced with `inkwire tunnels rotate-secret " << tunnel.tunnel_name
      << "`.\n";
  out.flush();
}

}  // namespace

std::string_view to_string(ConnectErrorKind kind) {
  switch (kind) {
    case ConnectErrorKind::tunnel_removed: return "tunnel_removed";
    case ConnectErrorKind::secret_unavailable: return "secret_unavailable";
    case ConnectErrorKind::tls_mode_mismatch: return "tls_mode_mismatch";
    case ConnectErrorKind::pending_removal: return "pending_removal";
    case ConnectErrorKind::not_active: return "not_active";
    case ConnectErrorKind::invalid_argument: return "invalid_argument";
    case ConnectErrorKind::api_error: return "api_error";
    case ConnectErrorKind::transport_error: return "transport_error";
    case ConnectErrorKind::state_dir_error: return "state_dir_error";
  }
  return "unknown";
}

ConnectError connect_error_from(const ControlError& error) {
  if (error.kind == ControlErrorKind::invalid_config)
    return ConnectError{ConnectErrorKind::invalid_argument, error.message(), error};
  if (error.is_transport()) return ConnectError{ConnectErrorKind::transport_error, error.message(), error};
  std::string message = error.message();
  if (error.kind == ControlErrorKind::http_status) {
    switch (error.status) {
      case 401: message += " (the API key was refused: check it)"; break;
      case 403: message += " (the API key lacks the admin scope, or its organisation is disabled)"; break;
      case 429: message += " (the organisation's daily tunnel creation limit is reached: try again tomorrow)"; break;
      default: break;
    }
    if (error.status == 409 && error.operation.rfind("create", 0) == 0)
      message += " (the name is taken, possibly by another organisation, or reserved: choose another name)";
  }
  return ConnectError{ConnectErrorKind::api_error, std::move(message), error};
}

Expected<Unit, ConnectError> check_connect_request(const ConnectRequest& request) {
  if (auto why = proto::tunnel_name_error(request.name); !why.empty())
    return unexpected(make_error(ConnectErrorKind::invalid_argument,
                                 "invalid tunnel name " + in_quotes(request.name) + ": " + std::string(why)));
  if (request.pool_size < 1 || request.pool_size > 32)
    return unexpected(make_error(ConnectErrorKind::invalid_argument,
                                 "pool size " + std::to_string(request.pool_size) + " is out of range (1 to 32)"));
  if (request.tls_mode != "edge" && request.tls_mode != "passthrough")
    return unexpected(make_error(ConnectErrorKind::invalid_argument,
                                 "tls_mode " + in_quotes(request.tls_mode) + " is neither edge nor passthrough"));
  if (request.data_plane_host && request.data_plane_host->empty())
    return unexpected(make_error(ConnectErrorKind::invalid_argument, "the data-plane host override is empty"));
  if (request.secret && request.secret->empty())
    return unexpected(make_error(ConnectErrorKind::invalid_argument, "the connect secret given is empty"));
  return Unit{};
}

Expected<StateDirectory, ConnectError> open_state_directory(const ConnectRequest& request) {
  // The name becomes a path component of the default directory: check it before touching disk.
  if (auto ok = check_connect_request(request); !ok) return unexpected(ok.error());
  std::filesystem::path path;
  if (request.state_dir) {
    path = *request.state_dir;
  } else {
    auto p = StateDirectory::default_path(request.name);
    if (!p) return unexpected(state_error(p.error()));
    path = std::move(*p);
  }
  auto dir = StateDirectory::open(std::move(path));
  if (!dir) return unexpected(state_error(dir.error()));
  return std::move(*dir);
}

Expected<ResolvedTunnel, ConnectError> resolve_tunnel(ControlClient& client, const ConnectRequest& request) {
  auto dir = open_state_directory(request);
  if (!dir) return unexpected(dir.error());
  return resolve_tunnel(client, *dir, request);
}

Expected<ResolvedTunnel, ConnectError> resolve_tunnel(ControlClient& client, StateDirectory& dir,
                                                      const ConnectRequest& request) {
  // 1. Arguments.
  if (auto ok = check_connect_request(request); !ok) return unexpected(ok.error());
  SystemClock system_clock;
  const Clock& clock = request.clock ? *request.clock : system_clock;

  // 2. The state file; missing or corrupt is "no state".
  const std::optional<proto::TunnelState> state = dir.read_state();

  ResolvedTunnel out;
  out.state_dir = dir.path();
  std::optional<Tunnel> tunnel;

  // 3. A stored id (only one that parses as a UUID, as Python does): GET it. 404 is final: the
  //    tunnel is gone, and silently creating a new one would hand out a different secret and
  //    possibly another tunnel's name.
  if (state && state->tunnel_id && Uuid::parse(*state->tunnel_id)) {
    auto got = client.get(*state->tunnel_id);
    if (!got) {
      if (got.error().kind == ControlErrorKind::http_status && got.error().status == 404)
        return unexpected(ConnectError{ConnectErrorKind::tunnel_removed,
                                       "tunnel was removed; clear the state directory " + dir.path().string() +
                                           " to create a new one",
                                       got.error()});
      return unexpected(connect_error_from(got.error()));
    }
    // Not in the SDKs: a state directory of another tunnel would otherwise connect that tunnel
    // under this name's banner.
    if (got->tunnel_name != request.name)
      return unexpected(state_error("the state directory " + dir.path().string() + " belongs to tunnel " +
                                    got->tunnel_name + ", not " + request.name +
                                    "; use that name or another state directory"));
    tunnel = std::move(*got);
  }

  // 4. By name in the whole list.
  if (!tunnel) {
    auto all = client.list();
    if (!all) return unexpected(connect_error_from(all.error()));
    for (auto& t : *all) {
      if (t.tunnel_name == request.name) {
        tunnel = std::move(t);
        break;
      }
    }
  }

  std::string secret;
  if (!tunnel) {
    // 5. Create, and store the secret before anything else can fail: it is never shown again.
    CreateTunnelRequest create;
    create.tunnel_name = request.name;
    create.tls_mode = request.tls_mode;
    auto created = client.create(create);
    if (!created) return unexpected(connect_error_from(created.error()));
    tunnel = std::move(created->tunnel);
    secret = std::move(created->connect_secret);
    out.created = true;
    const std::string zone = choose_zone(request, *tunnel, state);
    const std::string public_host = choose_public_host(request, *tunnel, state);
    auto stored = dir.write_state(state_of(*tunnel, secret, zone, public_host));
    const bool banner = request.print_secret.value_or(::isatty(STDERR_FILENO) == 1);
    // Without a stored copy the banner is the only one left, so it is printed then regardless.
    if (banner || !stored) print_secret_banner(request.banner_stream ? *request.banner_stream : std::cerr, *tunnel,
                                               secret, public_host, dir);
    if (!stored)
      return unexpected(state_error("tunnel " + request.name + " was created but its secret could not be saved (" +
                                    stored.error() + "); the secret was printed above, keep it"));
  } else {
    // 6. An existing tunnel.
    if (tunnel->tls_mode != request.tls_mode)
      return unexpected(make_error(ConnectErrorKind::tls_mode_mismatch,
                                   "tunnel " + request.name + " has tls_mode " + tunnel->tls_mode + ", not " +
                                       request.tls_mode + "; connect with tls_mode " + tunnel->tls_mode +
                                       " (the mode is fixed at creation) or use another name"));
    std::optional<std::string> known_secret = request.secret;
    if (!known_secret && state && non_empty(state->secret)) known_secret = state->secret;
    auto no_secret = [&] {
      return make_error(ConnectErrorKind::secret_unavailable,
                        "no connect secret for tunnel " + request.name + " (none given, none in " +
                            dir.state_file().string() + "); the secret is shown only at creation: run " +
                            "`inkwire tunnels rotate-secret " + request.name + "` and pass the new secret");
    };
    if (tunnel->status == "delete_pending") {
      if (request.on_pending_removal == PendingRemovalPolicy::error)
        return unexpected(make_error(
            ConnectErrorKind::pending_removal,
            "tunnel " + request.name + " is pending removal" +
                (tunnel->restore_deadline_at ? " (restorable until " + *tunnel->restore_deadline_at + ")" : "") +
                "; restore it with `inkwire tunnels restore " + request.name +
                "` or connect with the auto-restore policy"));
      if (!known_secret) return unexpected(no_secret());
      auto restored = client.restore(tunnel->id);
      if (!restored) return unexpected(connect_error_from(restored.error()));
      tunnel = std::move(*restored);
      out.restored = true;
    }
    if (!known_secret) return unexpected(no_secret());
    secret = *known_secret;
    // An explicit secret (the recovery path after rotate-secret) is saved at once, so the next
    // start needs no argument even if this one fails further on.
    if (request.secret && (!state || state->secret != request.secret)) {
      const std::string zone = choose_zone(request, *tunnel, state);
      const std::string public_host = choose_public_host(request, *tunnel, state);
      if (auto stored = dir.write_state(state_of(*tunnel, secret, zone, public_host)); !stored)
        return unexpected(state_error(stored.error()));
    }
    // The Python SDK's check (TS has none): an edge tunnel must be routable now.
    if (tunnel->tls_mode == "edge" && tunnel->status != "active")
      return unexpected(make_error(ConnectErrorKind::not_active,
                                   "tunnel " + request.name + " is " + tunnel->status +
                                       ", not active; check it with `inkwire tunnels get " + request.name + "`"));
  }

  out.zone = choose_zone(request, *tunnel, state);
  out.public_host = choose_public_host(request, *tunnel, state);

  // 7. Passthrough: our own key and a certificate for the public host.
  if (tunnel->tls_mode == "passthrough") {
    auto key = dir.load_or_create_private_key();
    if (!key) return unexpected(state_error(key.error()));
    const CertificateCheck check = dir.check_certificate(key->get(), clock.now());
    // Python also signs whenever the server says awaiting_cert (e.g. right after create or a
    // restore without a certificate on record), whatever is on disk.
    if (tunnel->status == "awaiting_cert" || check.needs_signing()) {
      auto csr = pki::make_csr_pem(key->get(), out.public_host);
      if (!csr) return unexpected(make_error(ConnectErrorKind::invalid_argument, "cannot build the CSR: " + csr.error()));
      auto signed_cert = client.sign_csr(tunnel->id, *csr);
      if (!signed_cert) return unexpected(connect_error_from(signed_cert.error()));
      if (auto written = dir.write_cert_chain(signed_cert->cert_pem, signed_cert->chain_pem); !written)
        return unexpected(state_error(written.error()));
      out.certificate_signed = true;
      auto refreshed = client.get(tunnel->id);
      if (!refreshed) return unexpected(connect_error_from(refreshed.error()));
      tunnel = std::move(*refreshed);
    }
    if (tunnel->status != "active")
      return unexpected(make_error(ConnectErrorKind::not_active,
                                   "tunnel " + request.name + " is " + tunnel->status + ", not active" +
                                       (out.certificate_signed ? " after signing its certificate" : "") +
                                       "; check it with `inkwire tunnels get " + request.name + "`"));
    out.private_key_file = dir.private_key_file();
    out.cert_chain_file = dir.cert_chain_file();
  }

  // 8. state.json again, with the zone and public host actually used.
  if (auto stored = dir.write_state(state_of(*tunnel, secret, out.zone, out.public_host)); !stored)
    return unexpected(state_error(stored.error()));
  out.secret = std::move(secret);
  out.tunnel = std::move(*tunnel);
  return out;
}

}  // namespace inkwire::agent
