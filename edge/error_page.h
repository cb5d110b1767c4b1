#pragma once
// The edge's own answers to a third party (unknown tunnel, no agent, deadline, bad request, ...):
// a small HTML page for browsers, JSON when the client's Accept asks for it, and always an
// x-inkwire-error header with a stable code that scripts and support can match on.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/header_rules.h"

namespace inkwire::edge {

struct EdgeError {
  int status = 500;
  std::string_view code;  // x-inkwire-error: kebab-case, static storage
};

// The codes, one per situation an operator may need to tell apart.
namespace error_code {
inline constexpr std::string_view unknown_tunnel = "unknown-tunnel";                  // 404
inline constexpr std::string_view pending_removal = "tunnel-pending-removal";         // 404
inline constexpr std::string_view tunnel_disabled = "tunnel-disabled";                // 404 (organisation disabled)
inline constexpr std::string_view no_agent = "no-agent-connected";                    // 503
inline constexpr std::string_view agent_gone = "agent-gone";                          // 502
inline constexpr std::string_view bad_agent_response = "bad-agent-response";          // 502
inline constexpr std::string_view deadline = "agent-deadline-exceeded";               // 504
inline constexpr std::string_view overloaded = "tunnel-overloaded";                   // 503 + Retry-After
inline constexpr std::string_view directory_unavailable = "directory-unavailable";    // 503
inline constexpr std::string_view bad_request = "bad-request";                        // 400
inline constexpr std::string_view method_not_allowed = "method-not-allowed";          // 405
inline constexpr std::string_view body_too_large = "request-body-too-large";          // 413
inline constexpr std::string_view uri_too_long = "uri-too-long";                      // 414
inline constexpr std::string_view headers_too_large = "request-headers-too-large";    // 431
inline constexpr std::string_view misdirected = "misdirected-request";                // 421
inline constexpr std::string_view expectation_failed = "expectation-failed";          // 417
inline constexpr std::string_view version_not_supported = "http-version-not-supported";  // 505
inline constexpr std::string_view upgrade_required = "websocket-version-unsupported";  // 426
inline constexpr std::string_view passthrough_only = "tunnel-requires-passthrough-tls";  // 421 (a passthrough tunnel on plain HTTP)
inline constexpr std::string_view shutting_down = "edge-shutting-down";               // 503
}  // namespace error_code

struct ErrorResponse {
  int status = 500;
  // content-type, x-inkwire-error, cache-control, [retry-after], [sec-websocket-version];
  // content-length is the transport's business.
  std::vector<proto::HeaderField> headers;
  std::string body;
};

// `accept` is the client's Accept value ("" when absent): JSON when it names application/json (or
// a +json type) and not text/html; HTML otherwise. `retry_after_seconds` adds Retry-After.
ErrorResponse render_error(const EdgeError& error, std::string_view accept,
                           std::optional<int> retry_after_seconds = std::nullopt);

// The sentence shown to the reader for a code.
std::string_view error_message(std::string_view code);

}  // namespace inkwire::edge
