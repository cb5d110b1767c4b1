#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace inkwire::proto {

// What the edge needs from a TLS ClientHello to route a connection before (or instead of)
// terminating TLS: PROTOCOL.md §4.9 step 1 (passthrough by exact SNI) and §8 A31 (one port-443
// listener, relay or edge by SNI).
struct ClientHelloInfo {
  std::optional<std::string> sni;  // host_name, lowercased, without a trailing dot
  std::vector<std::string> alpn;   // in the client's order, raw bytes
  std::uint16_t legacy_version = 0;
  bool has_supported_versions = false;
};

enum class ClientHelloStatus {
  need_more,  // a prefix of what could still be a valid ClientHello; read more and call again
  complete,   // `info` is filled in
  not_tls,    // the first byte is not a TLS handshake record (e.g. plain HTTP on the TLS port)
  malformed,  // a length, type or name that no valid ClientHello has
  too_large,  // the ClientHello cannot fit in `max_bytes` of input
};

struct ClientHelloResult {
  ClientHelloStatus status = ClientHelloStatus::need_more;
  ClientHelloInfo info;  // only meaningful when status == complete; empty otherwise
  // For need_more: the least total input length that could complete the ClientHello, as far as the
  // bytes so far tell (always greater than bytes.size() and at most max_bytes).
  std::size_t bytes_needed = 0;
};

inline constexpr std::size_t kDefaultMaxClientHelloBytes = 16384;

// Pure function over the bytes read so far from a connection: the caller keeps them (they are
// relayed verbatim to a passthrough tunnel or handed to the TLS library) and calls again as more
// arrive. Handshake bytes are reassembled across records without copying; nothing past the end of
// the ClientHello is looked at, and nothing past `max_bytes` is ever needed. Runs in O(size) and
// allocates only the result's strings. A prefix of input that gives a final status (anything but
// need_more) never gives a different one when more bytes follow.
ClientHelloResult parse_client_hello(std::span<const std::uint8_t> bytes,
                                     std::size_t max_bytes = kDefaultMaxClientHelloBytes);

std::string_view to_string(ClientHelloStatus status);

}  // namespace inkwire::proto
