#include "edge/tunnel_gateway.h"

#include "proto/header_rules.h"
#include "proto/sni_route.h"

namespace inkwire::edge {

std::string host_without_port(std::string_view host) {
  if (host.empty()) return {};
  if (host.front() == '[') {  // an IPv6 literal never names a tunnel
    return {};
  }
  if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    const std::string_view port = host.substr(colon + 1);
    for (char c : port) {
      if (c < '0' || c > '9') return {};
    }
    host = host.substr(0, colon);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return proto::lowercase_ascii(host);
}

boost::asio::awaitable<Expected<TunnelTarget, EdgeError>> resolve_tunnel(EdgeContext& ctx, std::string_view host,
                                                                        bool for_http) {
  const std::string bare = host_without_port(host);
  const proto::SniRoute where = proto::route_by_sni(bare.empty() ? std::nullopt : std::optional<std::string>(bare),
                                                    ctx.zone);
  if (where.target != proto::SniTarget::tunnel) co_return unexpected(EdgeError{404, error_code::unknown_tunnel});
  auto found = co_await ctx.directory.lookup(where.tunnel_name);
  if (!found) co_return unexpected(EdgeError{503, error_code::directory_unavailable});
  if (!*found) co_return unexpected(EdgeError{404, error_code::unknown_tunnel});
  const PublicRoute& route = **found;
  if (route.status == controlplane::TunnelStatus::delete_pending) {
    co_return unexpected(EdgeError{404, error_code::pending_removal});
  }
  if (route.organization_disabled) co_return unexpected(EdgeError{404, error_code::tunnel_disabled});
  if (for_http && route.tls_mode == controlplane::TlsMode::passthrough) {
    co_return unexpected(EdgeError{421, error_code::passthrough_only});
  }
  co_return TunnelTarget{where.tunnel_name, route};
}

EdgeError error_for_envelope(const proto::EnvelopeError& error) {
  using Code = proto::EnvelopeError::Code;
  switch (error.code) {
    case Code::method_not_allowed: return {405, error_code::method_not_allowed};
    case Code::uri_too_long: return {414, error_code::uri_too_long};
    case Code::too_many_headers:
    case Code::headers_too_large: return {431, error_code::headers_too_large};
    case Code::internal: return {500, error_code::bad_request};
    default: return {400, error_code::bad_request};
  }
}

EdgeError error_for_failure(const relay::DispatchFailure& failure) {
  const std::string_view reason = failure.reason;
  if (reason == "no-session") return {503, error_code::no_agent};
  if (reason == "queue-full") return {503, error_code::overloaded};
  if (reason == "tunnel-removed") return {404, error_code::pending_removal};
  if (reason == "queue-timeout" || reason == "response-deadline") return {504, error_code::deadline};
  if (reason == "bad-response-post" || reason == "response-too-large" || reason == "envelope-refused") {
    return {502, error_code::bad_agent_response};
  }
  if (failure.status == 503) return {503, error_code::overloaded};
  if (failure.status == 504) return {504, error_code::deadline};
  return {502, error_code::agent_gone};
}

std::optional<int> retry_after_for(const EdgeContext& ctx, const EdgeError& error) {
  if (error.code == error_code::overloaded || error.code == error_code::shutting_down ||
      error.code == error_code::directory_unavailable) {
    return ctx.config.retry_after_seconds;
  }
  return std::nullopt;
}

void record_access(EdgeContext& ctx, const AccessRecord& r) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - r.started).count();
  if (!r.tunnel.empty()) {
    TunnelSeries& series = ctx.metrics.tunnel(std::string(r.tunnel));
    const int cls = r.status / 100;
    if (cls >= 1 && cls <= 5) series.requests[cls]->Increment();
    series.bytes_in->Increment(static_cast<double>(r.bytes_in));
    series.bytes_out->Increment(static_cast<double>(r.bytes_out));
    series.seconds->Observe(seconds);
  }
  if (!r.error_code.empty()) ctx.metrics.error(r.error_code).Increment();
  if (!ctx.config.access_log) return;
  std::string_view path = r.target.substr(0, r.target.find('?'));
  if (path.size() > 256) path = path.substr(0, 256);
  // Control bytes never reach here (the request was checked), but a log line stays one line.
  std::string safe;
  safe.reserve(path.size());
  for (char c : path) safe.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
  ctx.logger->info("access tunnel={} proto={} method={} path={} status={} in={} out={} ms={:.1f} ip={}{}{}",
                   r.tunnel.empty() ? "-" : r.tunnel, r.protocol, r.method.empty() ? "-" : r.method, safe, r.status,
                   r.bytes_in, r.bytes_out, seconds * 1000.0, r.client_ip, r.error_code.empty() ? "" : " error=",
                   r.error_code);
}

}  // namespace inkwire::edge
