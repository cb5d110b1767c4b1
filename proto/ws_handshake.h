#pragma once
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/expected.h"
#include "proto/header_rules.h"

// The edge's side of a WebSocket handshake whose answer comes from the agent (PROTOCOL.md §4.8):
// the agent accepts with inkbox-status 200 and maybe a subprotocol; the edge owns the handshake
// itself (key, accept, extensions), because the agent never sees the third party's key.
namespace inkwire::proto {

// RFC 6455 §1.3.
inline constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2).
std::string websocket_accept_value(std::string_view client_key);

// A Sec-WebSocket-Key the edge may accept: base64 of 16 bytes, i.e. 22 base64 characters and "=="
// (RFC 6455 §4.1).
bool is_valid_websocket_key(std::string_view key);

// The subprotocols a third party offered, from every Sec-WebSocket-Protocol field (any case), split
// at commas, trimmed, in order; entries that are not tokens are skipped.
std::vector<std::string> offered_subprotocols(std::span<const std::pair<std::string, std::string>> request_headers);

struct WsAccept {
  // The posted headers minus the handshake fields the edge computes itself (sec-websocket-accept,
  // -extensions, -key, -version), with at most one sec-websocket-protocol. The edge adds upgrade,
  // connection and sec-websocket-accept for an HTTP/1.1 101; an HTTP/2 200 gets none of them.
  std::vector<HeaderField> headers;
  std::string subprotocol;  // the agent's choice; empty when it chose none
  std::string accept;       // Sec-WebSocket-Accept; empty when no key was given (HTTP/2)
};

struct WsAcceptError {
  std::string_view reason;       // short, static storage, safe to log
  int third_party_status = 502;  // a client fails a handshake with a subprotocol it did not offer
};

// Turns the headers of an accepting post (ResponsePost::headers) into the third party's handshake
// answer. Fails when the agent chose more than one subprotocol, a non-token, or one the third party
// did not offer (RFC 6455 §4.1: the client must fail the connection then, so the edge answers 502
// instead). Repeats of the same choice collapse into one field.
Expected<WsAccept, WsAcceptError> prepare_ws_accept(std::vector<HeaderField> response_headers,
                                                    std::span<const std::string> offered,
                                                    std::string_view client_key);

}  // namespace inkwire::proto
