#pragma once
// The part of a public request that does not depend on HTTP/1.1 or HTTP/2: which tunnel a Host
// names and whether it can take the request, how relay and envelope failures become the edge's
// error pages, and the access-log line. Http1Connection and Http2Connection both use it.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/expected.h"
#include "edge/edge_context.h"
#include "edge/error_page.h"
#include "proto/envelope.h"
#include "relay/exchange.h"

namespace inkwire::edge {

struct TunnelTarget {
  std::string name;
  PublicRoute route;
};

// `host` is a Host / :authority value or an SNI ("name.zone", maybe with ":port"). Passthrough
// tunnels are not served as HTTP (§4.9): `for_http` turns them into an error.
boost::asio::awaitable<Expected<TunnelTarget, EdgeError>> resolve_tunnel(EdgeContext& ctx, std::string_view host,
                                                                        bool for_http);

// Lowercased host without the port and a trailing dot ("" when the value is unusable).
std::string host_without_port(std::string_view host);

EdgeError error_for_envelope(const proto::EnvelopeError& error);
EdgeError error_for_failure(const relay::DispatchFailure& failure);
// Retry-After for the answers where retrying soon helps (overload, no agent, restart).
std::optional<int> retry_after_for(const EdgeContext& ctx, const EdgeError& error);

// One structured access-log line per request and the per-tunnel metrics.
struct AccessRecord {
  std::string_view protocol;  // "http/1.1", "h2", "ws", "ws-h2"
  std::string_view tunnel;    // "" when no tunnel was found
  std::string_view method;
  std::string_view target;    // the query string is never logged (it may carry secrets)
  int status = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::chrono::steady_clock::time_point started;
  std::string_view client_ip;
  std::string_view error_code;  // x-inkwire-error when the edge answered itself
};
void record_access(EdgeContext& ctx, const AccessRecord& record);

}  // namespace inkwire::edge
