#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.h"

// RFC 6455 §5 frame codec for the ws and tcp bridges (PROTOCOL.md §4.8.1, §4.9). Sans-IO: bytes in,
// frames out; the bridge code decides what each opcode means on its stream (continuations are
// ignored on the ws bridge and joined on the tcp bridge), so the codec only enforces framing rules.
namespace inkwire::proto {

enum class WsOpcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

inline bool is_control(WsOpcode op) { return (static_cast<std::uint8_t>(op) & 0x08) != 0; }

// RFC 6455 §7.4.1 status codes the bridges use.
namespace ws_close {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t no_status = 1005;  // never sent: "the CLOSE frame had no code"
inline constexpr std::uint16_t abnormal = 1006;   // never sent: "no CLOSE frame at all"
inline constexpr std::uint16_t too_big = 1009;
inline constexpr std::uint16_t internal_error = 1011;
}  // namespace ws_close

// A control frame's payload is at most 125 bytes (RFC 6455 §5.5); a CLOSE reason therefore at most
// 123 after the 2-byte code.
inline constexpr std::size_t kWsMaxControlPayload = 125;
inline constexpr std::size_t kWsMaxCloseReason = 123;
// 2 fixed bytes + 8 bytes of 64-bit length + 4 bytes of mask key.
inline constexpr std::size_t kWsMaxHeaderSize = 14;

// ---- Encoding ------------------------------------------------------------------------------------
// The encoder writes whatever it is asked to (tests use it to build invalid frames); keeping control
// frames at most 125 bytes with FIN = 1 is the caller's job.

// Appends a header for a payload of `payload_size` bytes, with the minimal length form. With a mask
// key the caller must mask the payload itself (see apply_ws_mask); lets a writer send a large
// payload from where it already is instead of copying it behind the header.
void encode_ws_frame_header(std::string& out, WsOpcode op, std::uint64_t payload_size, bool fin = true,
                            std::optional<std::array<std::uint8_t, 4>> mask = std::nullopt);

// Appends a whole frame: header, then the payload, masked when a key is given.
void encode_ws_frame(std::string& out, WsOpcode op, std::span<const std::uint8_t> payload, bool fin = true,
                     std::optional<std::array<std::uint8_t, 4>> mask = std::nullopt);

// XORs `data` with `key` in place (masking and unmasking are the same operation). `phase` is the
// payload offset of data[0], for callers that mask a payload in pieces.
void apply_ws_mask(std::span<std::uint8_t> data, const std::array<std::uint8_t, 4>& key, std::size_t phase = 0);

// A CLOSE payload: the 2-byte big-endian code, then the reason cut to at most 123 bytes without
// splitting a UTF-8 sequence (the reason is assumed to be UTF-8; invalid input is cut bytewise).
std::string encode_close_payload(std::uint16_t code, std::string_view reason);

struct WsClose {
  std::uint16_t code = ws_close::no_status;
  std::string reason;
};
// Reads a CLOSE payload. Empty means "no status" (1005); a single byte is malformed (nullopt, which
// the caller answers with 1002). The code's range and the reason's UTF-8 are not checked here.
std::optional<WsClose> decode_close_payload(std::span<const std::uint8_t> payload);

// ---- Decoding ------------------------------------------------------------------------------------

enum class WsMaskPolicy : std::uint8_t {
  accept_any,
  require_masked,    // a server reading an agent or any WebSocket client (RFC 6455 §5.1)
  require_unmasked,  // a client reading a server
};

struct WsFrameLimits {
  std::size_t max_frame_payload = 16 * 1024 * 1024;
  WsMaskPolicy mask_policy = WsMaskPolicy::accept_any;
  // RFC 6455 §5.2 says the minimal length form MUST be used; both SDKs' encoders do. Kept as a
  // switch so that a lenient peer can be talked to without a code change.
  bool allow_non_minimal_length = false;
};

// Every decode error is fatal for the stream: the caller closes with ws_close_code(error).
enum class WsFrameError : std::uint8_t {
  reserved_bits_set,         // RSV1-3: no extension is ever negotiated on these streams
  unknown_opcode,            // 0x3-0x7, 0xB-0xF
  control_frame_too_long,    // control payload > 125
  fragmented_control_frame,  // control frame with FIN = 0
  payload_too_large,         // above WsFrameLimits::max_frame_payload
  mask_policy_violation,
  non_minimal_length,
  length_msb_set,            // 64-bit length with its most significant bit set (§5.2)
};

std::string_view to_string(WsFrameError error);
// 1009 for payload_too_large, 1002 (protocol error) for everything else.
std::uint16_t ws_close_code(WsFrameError error);

struct WsFrame {
  WsOpcode opcode = WsOpcode::binary;
  bool fin = true;
  std::vector<std::uint8_t> payload;  // unmasked
};

// A decoded frame whose payload (unmasked) still lives in the decoder's buffer: valid until the next
// feed(), so a bridge can pass the bytes on without copying them.
struct WsFrameView {
  WsOpcode opcode = WsOpcode::binary;
  bool fin = true;
  std::span<const std::uint8_t> payload;
};

// Incremental decoder. Usage, once per chunk read from the stream:
//
//   while (!chunk.empty()) {
//     chunk = chunk.subspan(decoder.feed(chunk));
//     for (;;) { auto r = decoder.next(); if (!r) close(ws_close_code(r.error())); if (!*r) break; ... }
//   }
//
// Memory is bounded: the decoder holds at most kWsMaxHeaderSize + max_frame_payload unread bytes, so
// feed() may take only part of its input until next() has drained the frames already complete.
// Limits are checked as soon as the header bytes that carry them arrive: a header announcing 2^40
// bytes fails before a single payload byte is buffered. Reads advance an offset instead of erasing
// the front, and the unread tail is moved only when the dead prefix is at least as large (or the
// bound requires it); with the caller draining as above, each byte is unmasked once and moved at
// most once, so decoding a stream is O(n) however it is split.
class WsFrameDecoder {
 public:
  explicit WsFrameDecoder(WsFrameLimits limits = {});

  // Takes up to the bound and returns how many bytes it took. After an error it discards the input
  // (and says it took all of it): the stream is dead and nothing more will be decoded.
  [[nodiscard]] std::size_t feed(std::span<const std::uint8_t> bytes);

  // The next complete frame, nullopt when more bytes are needed, or the (sticky) error.
  Expected<std::optional<WsFrame>, WsFrameError> next();
  // The same without copying the payload; see WsFrameView for its lifetime.
  Expected<std::optional<WsFrameView>, WsFrameError> next_view();

  // Unread bytes held: a partial frame, or frames not yet taken with next().
  std::size_t buffered() const { return buffer_.size() - read_; }
  // The most buffered() can ever be.
  std::size_t capacity() const { return kWsMaxHeaderSize + limits_.max_frame_payload; }
  bool failed() const { return error_.has_value(); }
  const WsFrameLimits& limits() const { return limits_; }

 private:
  Expected<std::optional<WsFrameView>, WsFrameError> fail(WsFrameError error);

  WsFrameLimits limits_;
  std::vector<std::uint8_t> buffer_;
  std::size_t read_ = 0;  // buffer_[0, read_) has been decoded and is dead
  std::optional<WsFrameError> error_;
};

}  // namespace inkwire::proto
