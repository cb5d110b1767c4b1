// libFuzzer target: the ws bridge's inner message stream (proto/bridge_message.h, PROTOCOL.md
// §4.8.2) as the relay reads it from an agent: arbitrary bytes into a BridgeMessageDecoder with a
// small max_message_bytes, in fuzzer-chosen chunks. Besides "no crash, no sanitizer report" it
// traps when a promise of the header breaks:
//   * feed() takes at most what it is offered, the decoder never holds more than capacity(), and
//     once failed it takes everything and keeps failing;
//   * an oversized length prefix fails, a prefix within the limit never does;
//   * every decoded message, re-encoded with encode_bridge_message, decodes to itself (also under a
//     limit of exactly its JSON size), and its encoding does not depend on the chunking;
//   * strict base64: a decoded binary payload encodes and decodes to itself, and any string that
//     bridge_base64_decode accepts is the one canonical encoding of its bytes.
// Integer choices come from the end of the input (FuzzedDataProvider), stream bytes from the front.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "proto/bridge_message.h"

namespace {

using namespace inkwire::proto;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

std::span<const std::uint8_t> span_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

void check_base64(std::string_view bytes) {
  const std::string text = bridge_base64_encode(span_of(bytes));
  check(text.size() == (bytes.size() + 2) / 3 * 4);
  const auto back = bridge_base64_decode(text);
  check(back.has_value() && *back == bytes);
}

// The decoder's view of one message: N, then exactly the JSON the encoder wrote.
void check_round_trip(const BridgeMessage& m) {
  std::string wire;
  encode_bridge_message(wire, m);
  check(wire.size() >= 4);
  const std::size_t n = (std::size_t{static_cast<std::uint8_t>(wire[0])} << 24) |
                        (std::size_t{static_cast<std::uint8_t>(wire[1])} << 16) |
                        (std::size_t{static_cast<std::uint8_t>(wire[2])} << 8) |
                        static_cast<std::uint8_t>(wire[3]);
  check(n == wire.size() - 4);
  // Twice in a row, fed byte by byte into a decoder whose limit is exactly N.
  BridgeMessageDecoder again({.max_message_bytes = n});
  const std::string twice = wire + wire;
  std::size_t decoded = 0;
  for (std::size_t i = 0; i < twice.size(); ++i) {
    check(again.feed(span_of(std::string_view(twice).substr(i, 1))) == 1);
    for (;;) {
      auto r = again.next();
      check(r.has_value());
      if (!*r) break;
      const auto* back = std::get_if<BridgeMessage>(&**r);
      check(back != nullptr && *back == m);
      ++decoded;
    }
  }
  check(decoded == 2 && again.buffered() == 0);
  if (m.type == BridgeMessage::Type::binary) check_base64(m.data);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  constexpr std::size_t kLimits[] = {4096, 64, 0, 300};
  const std::size_t limit = kLimits[fdp.ConsumeIntegralInRange<std::size_t>(0, 3)];

  // A base64 string from the input: accepted only in its canonical form.
  {
    const std::string text = fdp.ConsumeRandomLengthString(64);
    if (const auto bytes = bridge_base64_decode(text)) {
      check(bridge_base64_encode(span_of(*bytes)) == text);
    }
  }

  BridgeMessageDecoder decoder({.max_message_bytes = limit});
  check(decoder.capacity() == 4 + limit);
  std::vector<std::uint8_t> pending;  // bytes fed, not yet given back as a message
  std::string reencoded;              // what the decoded messages encode to
  bool failed = false;
  while (fdp.remaining_bytes() > 0) {
    // 0 feeds the rest in one go (seeds are messages followed by a few choice bytes).
    const std::size_t chunk = fdp.ConsumeIntegral<std::uint8_t>();
    const std::vector<std::uint8_t> bytes = fdp.ConsumeBytes<std::uint8_t>(chunk == 0 ? size : chunk);
    std::span<const std::uint8_t> rest(bytes);
    while (!rest.empty()) {
      const std::size_t took = decoder.feed(rest);
      check(took <= rest.size());
      if (failed) check(took == rest.size() && decoder.buffered() == 0);
      check(decoder.buffered() <= decoder.capacity());
      pending.insert(pending.end(), rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(took));
      rest = rest.subspan(took);
      bool progress = took > 0;
      for (;;) {
        auto r = decoder.next();
        if (!r) {
          check(r.error() == BridgeMessageError::message_too_large);
          check(decoder.failed() && decoder.buffered() == 0);
          // Only an announced length above the limit fails.
          if (!failed) {
            check(pending.size() >= 4);
            const std::size_t n = (std::size_t{pending[0]} << 24) | (std::size_t{pending[1]} << 16) |
                                  (std::size_t{pending[2]} << 8) | pending[3];
            check(n > limit);
          }
          failed = true;
          progress = true;  // a failed decoder takes everything
          break;
        }
        if (!*r) break;
        check(pending.size() >= 4);
        const std::size_t n = (std::size_t{pending[0]} << 24) | (std::size_t{pending[1]} << 16) |
                              (std::size_t{pending[2]} << 8) | pending[3];
        check(n <= limit && pending.size() >= 4 + n);
        pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(4 + n));
        progress = true;
        if (const auto* m = std::get_if<BridgeMessage>(&**r)) {
          check(m->type == BridgeMessage::Type::text || m->type == BridgeMessage::Type::binary ||
                m->type == BridgeMessage::Type::close);
          if (m->type == BridgeMessage::Type::close) check(m->close_code >= 0 && m->close_code <= 0xFFFF);
          check_round_trip(*m);
          encode_bridge_message(reencoded, *m);
        }
      }
      check(progress);  // feed() took nothing only when next() had something to give
      check(decoder.buffered() == (failed ? 0 : pending.size()));
    }
  }
  // The messages, encoded in one buffer and decoded in one go, come back in order. (Not under
  // `limit`: defaults made explicit can make a message's encoding longer than what was sent.)
  if (!reencoded.empty()) {
    BridgeMessageDecoder all({.max_message_bytes = reencoded.size()});
    std::size_t off = 0;
    std::string again;
    while (off < reencoded.size()) {
      off += all.feed(span_of(std::string_view(reencoded).substr(off)));
      for (;;) {
        auto r = all.next();
        check(r.has_value());
        if (!*r) break;
        const auto* m = std::get_if<BridgeMessage>(&**r);
        check(m != nullptr);
        encode_bridge_message(again, *m);
      }
    }
    check(again == reencoded);
  }
  return 0;
}
