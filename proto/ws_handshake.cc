#include "proto/ws_handshake.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>

namespace inkwire::proto {

namespace {

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

bool is_handshake_field(std::string_view lname) {
  return lname == "sec-websocket-accept" || lname == "sec-websocket-extensions" || lname == "sec-websocket-key" ||
         lname == "sec-websocket-version";
}

// Comma-separated items, trimmed, empty ones skipped.
std::vector<std::string_view> list_items(std::string_view value) {
  std::vector<std::string_view> items;
  while (true) {
    const auto comma = value.find(',');
    const std::string_view item = trim_ows(value.substr(0, comma));
    if (!item.empty()) items.push_back(item);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return items;
}

}  // namespace

std::string websocket_accept_value(std::string_view client_key) {
  std::string input(client_key);
  input += kWebSocketGuid;
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest.data());
  // 20 bytes encode to 28 characters; EVP_EncodeBlock also writes a terminating NUL.
  std::array<unsigned char, 4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1> text{};
  const int n = EVP_EncodeBlock(text.data(), digest.data(), static_cast<int>(digest.size()));
  return std::string(reinterpret_cast<const char*>(text.data()), static_cast<std::size_t>(n));
}

bool is_valid_websocket_key(std::string_view key) {
  if (key.size() != 24 || !key.ends_with("==")) return false;
  return std::all_of(key.begin(), key.end() - 2, is_base64_char);
}

std::vector<std::string> offered_subprotocols(std::span<const std::pair<std::string, std::string>> request_headers) {
  std::vector<std::string> offered;
  for (const auto& [name, value] : request_headers) {
    if (!iequals_ascii(name, "sec-websocket-protocol")) continue;
    for (std::string_view item : list_items(value))
      if (is_token(item)) offered.emplace_back(item);
  }
  return offered;
}

Expected<WsAccept, WsAcceptError> prepare_ws_accept(std::vector<HeaderField> response_headers,
                                                    std::span<const std::string> offered,
                                                    std::string_view client_key) {
  WsAccept result;
  result.headers.reserve(response_headers.size());
  bool protocol_placed = false;
  for (HeaderField& field : response_headers) {
    const std::string lname = lowercase_ascii(field.name);
    if (is_handshake_field(lname)) continue;
    if (lname != "sec-websocket-protocol") {
      result.headers.push_back(std::move(field));
      continue;
    }
    // A Python agent in URL-forward mode may have merged repeats into one comma-joined value.
    for (std::string_view item : list_items(field.value)) {
      if (!is_token(item)) return unexpected(WsAcceptError{"chosen subprotocol is not a token"});
      if (result.subprotocol.empty()) {
        result.subprotocol = std::string(item);
      } else if (item != result.subprotocol) {
        return unexpected(WsAcceptError{"agent chose more than one subprotocol"});
      }
    }
    if (!protocol_placed && !result.subprotocol.empty()) {
      protocol_placed = true;
      result.headers.push_back({lname, result.subprotocol});
    }
  }
  // Subprotocol names compare exactly (RFC 6455 §4.1 has the client match what it sent).
  if (!result.subprotocol.empty() && std::find(offered.begin(), offered.end(), result.subprotocol) == offered.end()) {
    return unexpected(WsAcceptError{"agent chose a subprotocol the client did not offer"});
  }
  if (!client_key.empty()) result.accept = websocket_accept_value(client_key);
  return result;
}

}  // namespace inkwire::proto
