// libFuzzer target: arbitrary bytes into the WebSocket frame decoder and the bridge message decoder,
// the two parsers that read what agents (and, through the edge, third parties) send. Besides "no
// crash, no sanitizer report" it checks the properties the bridges rely on:
//   * neither decoder ever holds more than its bound;
//   * a decoded frame obeys RFC 6455 (control frames short and unfragmented) and, encoded again with
//     its own mask key, gives back exactly the bytes it came from (only minimal lengths pass);
//   * a decoded bridge message re-encodes and decodes to itself.
// The first input byte picks the chunking and the policies, so one corpus explores them all.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>

#include "proto/bridge_message.h"
#include "proto/ws_frame.h"

namespace {

using inkwire::proto::BridgeMessage;
using inkwire::proto::BridgeMessageDecoder;
using inkwire::proto::WsFrameDecoder;
using inkwire::proto::WsMaskPolicy;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

std::span<const std::uint8_t> span_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

void check_round_trip(const BridgeMessage& m) {
  std::string wire;
  inkwire::proto::encode_bridge_message(wire, m);
  BridgeMessageDecoder again({.max_message_bytes = wire.size()});
  check(again.feed(span_of(wire)) == wire.size());
  auto r = again.next();
  check(r.has_value() && r->has_value());
  const auto* back = std::get_if<BridgeMessage>(&**r);
  check(back != nullptr && *back == m);
}

// Feeds and drains one bridge decoder; false once it has failed.
bool pump_messages(BridgeMessageDecoder& decoder, std::span<const std::uint8_t> bytes) {
  while (!bytes.empty()) {
    bytes = bytes.subspan(decoder.feed(bytes));
    check(decoder.buffered() <= decoder.capacity());
    for (;;) {
      auto r = decoder.next();
      if (!r) return false;
      if (!*r) break;
      if (const auto* m = std::get_if<BridgeMessage>(&**r)) check_round_trip(*m);
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t config = data[0];
  const std::span<const std::uint8_t> input(data + 1, size - 1);
  // Small limits so that inputs of a few KiB reach the limit paths.
  const std::size_t chunk = (config & 0x07) == 0 ? input.size() + 1 : (config & 0x07) * 3 - 2;  // 1, 4, ... 19
  const WsMaskPolicy policies[] = {WsMaskPolicy::accept_any, WsMaskPolicy::require_masked,
                                   WsMaskPolicy::require_unmasked, WsMaskPolicy::accept_any};
  WsFrameDecoder frames({.max_frame_payload = (config & 0x08) ? 4096u : 200u,
                         .mask_policy = policies[(config >> 4) & 0x03]});
  // The bridge decoder reads the same bytes twice: raw, and as the payloads of decoded frames (the
  // way the ws bridge uses it).
  BridgeMessageDecoder raw_messages({.max_message_bytes = (config & 0x40) ? 8192u : 64u});
  BridgeMessageDecoder framed_messages({.max_message_bytes = 1024});
  bool raw_ok = true;
  bool framed_ok = true;
  std::size_t frame_start = 0;  // where in `input` the next decoded frame begins

  for (std::size_t pos = 0; pos < input.size(); pos += chunk) {
    const auto piece = input.subspan(pos, std::min(chunk, input.size() - pos));
    if (raw_ok) raw_ok = pump_messages(raw_messages, piece);

    for (auto rest = piece; !rest.empty();) {
      const std::size_t took = frames.feed(rest);
      rest = rest.subspan(took);
      check(frames.buffered() <= frames.capacity());
      for (;;) {
        auto r = frames.next_view();
        if (!r) {
          check(frames.failed() && frames.buffered() == 0);
          const std::uint16_t code = inkwire::proto::ws_close_code(r.error());
          check(code == 1002 || code == 1009);
          return 0;
        }
        if (!*r) break;
        const auto& f = **r;
        check(f.payload.size() <= frames.limits().max_frame_payload);
        if (inkwire::proto::is_control(f.opcode)) check(f.fin && f.payload.size() <= 125);
        if (f.opcode == inkwire::proto::WsOpcode::close) {
          if (auto c = inkwire::proto::decode_close_payload(f.payload)) {
            const std::string p = inkwire::proto::encode_close_payload(c->code, c->reason);
            if (!f.payload.empty()) check(span_of(p).size() == f.payload.size());
          } else {
            check(f.payload.size() == 1);
          }
        }
        // Re-encoding with the frame's own key gives back its exact bytes.
        const std::uint8_t len7 = input[frame_start + 1] & 0x7F;
        std::optional<std::array<std::uint8_t, 4>> key;
        if (input[frame_start + 1] & 0x80) {
          const std::size_t at = frame_start + 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
          key = std::array<std::uint8_t, 4>{input[at], input[at + 1], input[at + 2], input[at + 3]};
        }
        std::string again;
        inkwire::proto::encode_ws_frame(again, f.opcode, f.payload, f.fin, key);
        check(frame_start + again.size() <= input.size());
        check(std::equal(again.begin(), again.end(), input.begin() + static_cast<std::ptrdiff_t>(frame_start),
                         [](char a, std::uint8_t b) { return static_cast<std::uint8_t>(a) == b; }));
        frame_start += again.size();
        if (framed_ok && (f.opcode == inkwire::proto::WsOpcode::binary || f.opcode == inkwire::proto::WsOpcode::text))
          framed_ok = pump_messages(framed_messages, f.payload);
      }
    }
  }
  return 0;
}
