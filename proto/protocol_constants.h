#pragma once
#include <array>
#include <optional>
#include <string_view>

// Wire names of the tunnel data plane, mirroring tests/testdata/tunnel_protocol_constants.json (the
// SDKs' own manifest). Hand-written rather than generated so they stay constexpr and greppable;
// tests/unit/proto/protocol_constants_test.cc fails when the two drift apart.
namespace inkwire::proto {

// Every meta header starts with this; forwarded headers with the longer one below.
inline constexpr std::string_view kInkboxNamespacePrefix = "inkbox-";
inline constexpr std::string_view kInkboxForwardedHeaderPrefix = "inkbox-h-";

// "TunnelMetaHeader": envelope and response-post meta headers (PROTOCOL.md §4.6, §4.7).
namespace meta_header {
inline constexpr std::string_view kRequestId = "inkbox-request-id";
inline constexpr std::string_view kMethod = "inkbox-method";
inline constexpr std::string_view kPath = "inkbox-path";
inline constexpr std::string_view kRouteKind = "inkbox-route-kind";
inline constexpr std::string_view kStatus = "inkbox-status";
inline constexpr std::string_view kWsId = "inkbox-ws-id";
inline constexpr std::string_view kTcpId = "inkbox-tcp-id";
inline constexpr std::string_view kSniHost = "inkbox-sni-host";
inline constexpr std::string_view kBodyUri = "inkbox-body-uri";
inline constexpr std::string_view kForwardedFor = "inkbox-forwarded-for";
inline constexpr std::string_view kReason = "inkbox-reason";
}  // namespace meta_header

// "TunnelRouteKind": values of inkbox-route-kind.
namespace route_kind {
inline constexpr std::string_view kWebhook = "webhook";
inline constexpr std::string_view kWsUpgrade = "ws-upgrade";
inline constexpr std::string_view kTcpStream = "tcp-stream";
}  // namespace route_kind

// "TunnelSubprotocol": the extended-CONNECT :protocol of the two bridge kinds (§4.2).
namespace subprotocol {
inline constexpr std::string_view kWs = "inkbox-tunnel-ws";
inline constexpr std::string_view kTcp = "inkbox-tunnel-tcp";
}  // namespace subprotocol

// "ControlPaths": the :path of each stream the agent opens (§4.2). The prefixes take an id.
namespace control_path {
inline constexpr std::string_view kHello = "/_system/hello";
inline constexpr std::string_view kIntake = "/_system/intake";
inline constexpr std::string_view kResponsePrefix = "/_system/response/";
inline constexpr std::string_view kWsPrefix = "/_system/ws/";
inline constexpr std::string_view kTcpPrefix = "/_system/tcp/";
}  // namespace control_path

// "ControlHeaders": request headers on the agent's control streams.
namespace control_header {
inline constexpr std::string_view kTunnelId = "x-tunnel-id";
inline constexpr std::string_view kTunnelSecret = "x-tunnel-secret";
inline constexpr std::string_view kOwnerToken = "x-owner-token";
inline constexpr std::string_view kPoolSlot = "x-pool-slot";
inline constexpr std::string_view kPoolSize = "x-pool-size";
}  // namespace control_header

// "HopByHopRequest": third-party request headers never forwarded in an envelope (§4.6 rule 3).
// The WebSocket handshake fields are here because the edge, not the agent, answers the handshake.
inline constexpr std::array<std::string_view, 12> kHopByHopRequest = {
    "host",
    "connection",
    "upgrade",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "proxy-authenticate",
    "proxy-authorization",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
};

// "HopByHopResponse": posted response headers never passed on to the third party (§4.7).
inline constexpr std::array<std::string_view, 8> kHopByHopResponse = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
};

enum class RouteKind { webhook, ws_upgrade, tcp_stream };

// The inkbox-route-kind value for `kind`.
std::string_view route_kind_name(RouteKind kind);
// Exact (case-sensitive) match of a wire value, as both SDKs compare it; nullopt when unknown.
std::optional<RouteKind> parse_route_kind(std::string_view value);

// Membership tests for the two hop-by-hop lists; `lowercase_name` must already be lowercase.
bool is_hop_by_hop_request_header(std::string_view lowercase_name);
bool is_hop_by_hop_response_header(std::string_view lowercase_name);

}  // namespace inkwire::proto
