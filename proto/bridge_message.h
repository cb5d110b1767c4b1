#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/expected.h"

// The inner message stream of the ws bridge (PROTOCOL.md §4.8.2): the payloads of the bridge's data
// frames, read as one continuous byte stream, carry messages of a 4-byte big-endian length N and N
// bytes of UTF-8 JSON:
//   {"type":"text","data":"<string>"}
//   {"type":"binary","data":"<standard base64 with padding>"}
//   {"type":"close","code":<int>,"reason":"<string>"}
// Frame boundaries mean nothing to it: a message may span frames and a frame may hold several.
namespace inkwire::proto {

struct BridgeMessage {
  enum class Type : std::uint8_t { text, binary, close };

  Type type = Type::text;
  std::string data;  // text: the string (UTF-8); binary: the decoded bytes
  int close_code = 1000;
  std::string close_reason;

  static BridgeMessage text(std::string s) { return {Type::text, std::move(s), 1000, {}}; }
  static BridgeMessage binary(std::string bytes) { return {Type::binary, std::move(bytes), 1000, {}}; }
  static BridgeMessage close(int code, std::string reason) { return {Type::close, {}, code, std::move(reason)}; }

  bool operator==(const BridgeMessage&) const = default;
};

// ---- Encoding ------------------------------------------------------------------------------------
// Each appends one length-prefixed message: compact JSON, keys in the order the agents write them.
// Text must be valid UTF-8 (the edge validates third-party text frames, RFC 6455 §8.1); the encoder
// escapes JSON's special characters but does not re-check the encoding. Messages above 4 GiB of
// JSON cannot be expressed and must be refused by the caller's limits first.

void encode_bridge_message(std::string& out, const BridgeMessage& message);
void encode_bridge_text(std::string& out, std::string_view text);
void encode_bridge_binary(std::string& out, std::span<const std::uint8_t> bytes);
void encode_bridge_close(std::string& out, int code, std::string_view reason);

// ---- Decoding ------------------------------------------------------------------------------------

struct BridgeMessageLimits {
  // Bound on N, the JSON length. Base64 makes a binary message's JSON about 4/3 of its bytes.
  std::size_t max_message_bytes = 16 * 1024 * 1024;
};

// Messages the agents would drop are skipped, not fatal (PROTOCOL.md §4.8.2): the reason is for
// counting and logging.
enum class BridgeSkipReason : std::uint8_t {
  malformed_json,  // not JSON, or not valid UTF-8
  not_an_object,
  unknown_type,    // "type" missing, not a string, or not text/binary/close
  bad_field,       // data/code/reason present with the wrong JSON type, or a code outside 0-65535
  bad_base64,      // binary data that is not strict, canonical, padded standard base64
};
std::string_view to_string(BridgeSkipReason reason);

struct BridgeSkipped {
  BridgeSkipReason reason;
  bool operator==(const BridgeSkipped&) const = default;
};

using BridgeItem = std::variant<BridgeMessage, BridgeSkipped>;

// Fatal: the caller ends the bridge and closes the third party's WebSocket with 1009.
enum class BridgeMessageError : std::uint8_t { message_too_large };
std::string_view to_string(BridgeMessageError error);

// Incremental decoder; same contract as WsFrameDecoder:
//
//   while (!payload.empty()) {
//     payload = payload.subspan(decoder.feed(payload));
//     for (;;) { auto r = decoder.next(); if (!r) close(1009); if (!*r) break; ... }
//   }
//
// It holds at most 4 + max_message_bytes unread bytes, so feed() may take only part of its input
// until next() has drained. An oversized length prefix fails as soon as its 4 bytes arrive. Missing
// fields take the agents' defaults (text and binary data "", close code 1000, reason ""); key order
// and unknown keys do not matter; with a duplicated key the last one wins, as in JSON.parse.
class BridgeMessageDecoder {
 public:
  explicit BridgeMessageDecoder(BridgeMessageLimits limits = {});

  // Takes up to the bound and returns how many bytes it took; after an error, discards everything.
  [[nodiscard]] std::size_t feed(std::span<const std::uint8_t> bytes);

  // The next complete message or skipped message, nullopt when more bytes are needed, or the
  // (sticky) error.
  Expected<std::optional<BridgeItem>, BridgeMessageError> next();

  std::size_t buffered() const { return buffer_.size() - read_; }
  std::size_t capacity() const { return 4 + limits_.max_message_bytes; }
  bool failed() const { return failed_; }

 private:
  BridgeMessageLimits limits_;
  std::vector<std::uint8_t> buffer_;
  std::size_t read_ = 0;  // buffer_[0, read_) has been decoded and is dead
  bool failed_ = false;
};

// Strict standard base64 (RFC 4648 §4) as the bridge needs it: padding required, no whitespace, no
// URL-safe alphabet, and the unused bits of the last group must be zero, so every byte string has
// exactly one accepted encoding (the TS agent enforces this by re-encoding and comparing).
std::string bridge_base64_encode(std::span<const std::uint8_t> bytes);
std::optional<std::string> bridge_base64_decode(std::string_view text);

}  // namespace inkwire::proto
