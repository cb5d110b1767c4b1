#include "proto/ws_frame.h"
#include "proto/bounded_append.h"

#include <algorithm>
#include <cstring>

namespace inkwire::proto {
namespace {

bool is_known_opcode(std::uint8_t op) {
  switch (op) {
    case 0x0: case 0x1: case 0x2: case 0x8: case 0x9: case 0xA:
      return true;
    default:
      return false;
  }
}

std::uint64_t read_be(const std::uint8_t* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

std::span<std::uint8_t> writable_tail(std::string& out, std::size_t from) {
  return {reinterpret_cast<std::uint8_t*>(out.data()) + from, out.size() - from};
}

}  // namespace

// ---- Encoding ------------------------------------------------------------------------------------

void encode_ws_frame_header(std::string& out, WsOpcode op, std::uint64_t payload_size, bool fin,
                            std::optional<std::array<std::uint8_t, 4>> mask) {
  const char mask_bit = mask ? static_cast<char>(0x80) : 0;
  out.push_back(static_cast<char>((fin ? 0x80 : 0x00) | static_cast<std::uint8_t>(op)));
  if (payload_size <= kWsMaxControlPayload) {
    out.push_back(static_cast<char>(mask_bit | static_cast<char>(payload_size)));
  } else if (payload_size <= 0xFFFF) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(payload_size >> 8));
    out.push_back(static_cast<char>(payload_size));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(payload_size >> shift));
  }
  if (mask) out.append(reinterpret_cast<const char*>(mask->data()), mask->size());
}

void encode_ws_frame(std::string& out, WsOpcode op, std::span<const std::uint8_t> payload, bool fin,
                     std::optional<std::array<std::uint8_t, 4>> mask) {
  out.reserve(out.size() + kWsMaxHeaderSize + payload.size());
  encode_ws_frame_header(out, op, payload.size(), fin, mask);
  const std::size_t start = out.size();
  out.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  if (mask) apply_ws_mask(writable_tail(out, start), *mask);
}

void apply_ws_mask(std::span<std::uint8_t> data, const std::array<std::uint8_t, 4>& key, std::size_t phase) {
  // Rotate the key so that data[0] lines up with key[0]; then a word at a time, because payloads
  // run to megabytes and a byte loop with `i % 4` is several times slower.
  std::array<std::uint8_t, 8> k8{};
  for (std::size_t i = 0; i < k8.size(); ++i) k8[i] = key[(phase + i) & 3];
  std::uint64_t k64 = 0;
  std::memcpy(&k64, k8.data(), sizeof k64);
  std::uint8_t* p = data.data();
  const std::size_t n = data.size();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, p + i, sizeof w);
    w ^= k64;
    std::memcpy(p + i, &w, sizeof w);
  }
  for (; i < n; ++i) p[i] ^= k8[i & 7];
}

std::string encode_close_payload(std::uint16_t code, std::string_view reason) {
  if (reason.size() > kWsMaxCloseReason) {
    // Back up over continuation bytes (10xxxxxx) so the cut falls before a sequence's lead byte.
    std::size_t cut = kWsMaxCloseReason;
    while (cut > 0 && (static_cast<std::uint8_t>(reason[cut]) & 0xC0) == 0x80) --cut;
    reason = reason.substr(0, cut);
  }
  std::string out;
  out.reserve(2 + reason.size());
  out.push_back(static_cast<char>(code >> 8));
  out.push_back(static_cast<char>(code & 0xFF));
  out.append(reason);
  return out;
}

std::optional<WsClose> decode_close_payload(std::span<const std::uint8_t> payload) {
  if (payload.empty()) return WsClose{};
  if (payload.size() == 1) return std::nullopt;
  WsClose close;
  close.code = static_cast<std::uint16_t>((payload[0] << 8) | payload[1]);
  close.reason.assign(reinterpret_cast<const char*>(payload.data()) + 2, payload.size() - 2);
  return close;
}

// ---- Decoding ------------------------------------------------------------------------------------

std::string_view to_string(WsFrameError error) {
  switch (error) {
    case WsFrameError::reserved_bits_set: return "reserved bits set";
    case WsFrameError::unknown_opcode: return "unknown opcode";
    case WsFrameError::control_frame_too_long: return "control frame longer than 125 bytes";
    case WsFrameError::fragmented_control_frame: return "fragmented control frame";
    case WsFrameError::payload_too_large: return "frame payload too large";
    case WsFrameError::mask_policy_violation: return "frame masking violates policy";
    case WsFrameError::non_minimal_length: return "payload length not minimally encoded";
    case WsFrameError::length_msb_set: return "64-bit payload length has its top bit set";
  }
  return "unknown error";
}

std::uint16_t ws_close_code(WsFrameError error) {
  return error == WsFrameError::payload_too_large ? ws_close::too_big : ws_close::protocol_error;
}

WsFrameDecoder::WsFrameDecoder(WsFrameLimits limits) : limits_(limits) {
  // capacity() must not overflow.
  limits_.max_frame_payload = std::min(limits_.max_frame_payload, SIZE_MAX - kWsMaxHeaderSize);
}

std::size_t WsFrameDecoder::feed(std::span<const std::uint8_t> bytes) {
  if (error_) return bytes.size();
  return bounded_append(buffer_, read_, capacity(), bytes);
}

Expected<std::optional<WsFrameView>, WsFrameError> WsFrameDecoder::fail(WsFrameError error) {
  error_ = error;
  // Nothing more will be read: give the memory back now rather than when the bridge is destroyed.
  std::vector<std::uint8_t>().swap(buffer_);
  read_ = 0;
  return unexpected(error);
}

Expected<std::optional<WsFrameView>, WsFrameError> WsFrameDecoder::next_view() {
  using Result = std::optional<WsFrameView>;
  if (error_) return unexpected(*error_);
  const std::size_t avail = buffered();
  if (avail < 2) return Result{};
  std::uint8_t* p = buffer_.data() + read_;

  // Everything the first two bytes can prove wrong is reported before waiting for more.
  const bool fin = (p[0] & 0x80) != 0;
  if ((p[0] & 0x70) != 0) return fail(WsFrameError::reserved_bits_set);
  const std::uint8_t op = p[0] & 0x0F;
  if (!is_known_opcode(op)) return fail(WsFrameError::unknown_opcode);
  const auto opcode = static_cast<WsOpcode>(op);
  const bool masked = (p[1] & 0x80) != 0;
  const std::uint8_t len7 = p[1] & 0x7F;
  if (is_control(opcode)) {
    if (!fin) return fail(WsFrameError::fragmented_control_frame);
    if (len7 > kWsMaxControlPayload) return fail(WsFrameError::control_frame_too_long);
  }
  if ((limits_.mask_policy == WsMaskPolicy::require_masked && !masked) ||
      (limits_.mask_policy == WsMaskPolicy::require_unmasked && masked))
    return fail(WsFrameError::mask_policy_violation);

  std::size_t header = 2;
  std::uint64_t length = len7;
  if (len7 == 126) {
    if (avail < 4) return Result{};
    length = read_be(p + 2, 2);
    header = 4;
    if (length <= kWsMaxControlPayload && !limits_.allow_non_minimal_length)
      return fail(WsFrameError::non_minimal_length);
  } else if (len7 == 127) {
    if (avail < 10) return Result{};
    length = read_be(p + 2, 8);
    header = 10;
    if ((length >> 63) != 0) return fail(WsFrameError::length_msb_set);
    if (length <= 0xFFFF && !limits_.allow_non_minimal_length) return fail(WsFrameError::non_minimal_length);
  }
  if (length > limits_.max_frame_payload) return fail(WsFrameError::payload_too_large);

  std::array<std::uint8_t, 4> key{};
  if (masked) {
    if (avail < header + 4) return Result{};
    std::memcpy(key.data(), p + header, 4);
    header += 4;
  }
  // length <= max_frame_payload, so header + length cannot overflow and fits the buffer's bound.
  const auto size = static_cast<std::size_t>(length);
  if (avail < header + size) return Result{};

  std::span<std::uint8_t> payload(p + header, size);
  if (masked) apply_ws_mask(payload, key);
  read_ += header + size;
  return Result{WsFrameView{opcode, fin, payload}};
}

Expected<std::optional<WsFrame>, WsFrameError> WsFrameDecoder::next() {
  auto view = next_view();
  if (!view) return unexpected(view.error());
  if (!*view) return std::optional<WsFrame>{};
  const WsFrameView& v = **view;
  return std::optional<WsFrame>{WsFrame{v.opcode, v.fin, {v.payload.begin(), v.payload.end()}}};
}

}  // namespace inkwire::proto
