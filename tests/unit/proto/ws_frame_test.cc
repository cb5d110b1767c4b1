#include "proto/ws_frame.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

using inkwire::proto::apply_ws_mask;
using inkwire::proto::decode_close_payload;
using inkwire::proto::encode_close_payload;
using inkwire::proto::encode_ws_frame;
using inkwire::proto::encode_ws_frame_header;
using inkwire::proto::WsFrame;
using inkwire::proto::WsFrameDecoder;
using inkwire::proto::WsFrameError;
using inkwire::proto::WsFrameLimits;
using inkwire::proto::WsMaskPolicy;
using inkwire::proto::WsOpcode;
using Bytes = std::vector<std::uint8_t>;
using Key = std::array<std::uint8_t, 4>;

namespace {

constexpr Key kRfcKey{0x37, 0xfa, 0x21, 0x3d};

Bytes bytes_of(std::string_view s) { return {s.begin(), s.end()}; }
std::span<const std::uint8_t> span_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
Bytes to_bytes(const std::string& s) { return {s.begin(), s.end()}; }

std::string frame(WsOpcode op, const Bytes& payload, bool fin = true, std::optional<Key> mask = std::nullopt) {
  std::string out;
  encode_ws_frame(out, op, payload, fin, mask);
  return out;
}

Bytes pattern(std::size_t n, std::uint8_t seed = 0) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 31 + seed);
  return b;
}

// What a decoder produced from a whole stream: every frame, then the error if one ended it.
struct Decoded {
  std::vector<WsFrame> frames;
  std::optional<WsFrameError> error;
};

bool operator==(const WsFrame& a, const WsFrame& b) {
  return a.opcode == b.opcode && a.fin == b.fin && a.payload == b.payload;
}

// Feeds `input` in pieces of `chunk` bytes (0 = all at once), draining after each feed as the header
// prescribes, and checks the memory bound on the way.
Decoded decode_stream(std::span<const std::uint8_t> input, std::size_t chunk, WsFrameLimits limits = {}) {
  WsFrameDecoder decoder(limits);
  Decoded result;
  std::size_t pos = 0;
  while (pos < input.size()) {
    const std::size_t len = chunk == 0 ? input.size() - pos : std::min(chunk, input.size() - pos);
    auto piece = input.subspan(pos, len);
    pos += len;
    while (!piece.empty()) {
      piece = piece.subspan(decoder.feed(piece));
      EXPECT_LE(decoder.buffered(), decoder.capacity());
      for (;;) {
        auto r = decoder.next();
        if (!r) {
          result.error = r.error();
          return result;
        }
        if (!*r) break;
        result.frames.push_back(std::move(**r));
      }
    }
  }
  return result;
}

Decoded decode_stream(const std::string& input, std::size_t chunk, WsFrameLimits limits = {}) {
  return decode_stream(span_of(input), chunk, limits);
}

// Feeds bytes one at a time and returns the first error, asserting it came no later than byte
// `by` (1-based): limits must be checked as soon as the header bytes carrying them arrive.
std::optional<WsFrameError> first_error(const Bytes& input, std::size_t by, WsFrameLimits limits = {}) {
  WsFrameDecoder decoder(limits);
  for (std::size_t i = 0; i < input.size(); ++i) {
    EXPECT_EQ(decoder.feed(std::span(input).subspan(i, 1)), 1u);
    auto r = decoder.next();
    if (!r) {
      EXPECT_LE(i + 1, by) << "error reported late";
      EXPECT_EQ(decoder.buffered(), 0u) << "a failed decoder keeps no bytes";
      return r.error();
    }
  }
  return std::nullopt;
}

}  // namespace

// ---- RFC 6455 §5.7 examples, byte for byte --------------------------------------------------------

TEST(WsFrameEncode, RfcUnmaskedHello) {
  EXPECT_EQ(to_bytes(frame(WsOpcode::text, bytes_of("Hello"))),
            (Bytes{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
}

TEST(WsFrameEncode, RfcMaskedHello) {
  EXPECT_EQ(to_bytes(frame(WsOpcode::text, bytes_of("Hello"), true, kRfcKey)),
            (Bytes{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
}

TEST(WsFrameEncode, RfcFragmentedHello) {
  EXPECT_EQ(to_bytes(frame(WsOpcode::text, bytes_of("Hel"), false)), (Bytes{0x01, 0x03, 0x48, 0x65, 0x6c}));
  EXPECT_EQ(to_bytes(frame(WsOpcode::continuation, bytes_of("lo"))), (Bytes{0x80, 0x02, 0x6c, 0x6f}));
}

TEST(WsFrameEncode, RfcPingAndMaskedPong) {
  EXPECT_EQ(to_bytes(frame(WsOpcode::ping, bytes_of("Hello"))),
            (Bytes{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
  EXPECT_EQ(to_bytes(frame(WsOpcode::pong, bytes_of("Hello"), true, kRfcKey)),
            (Bytes{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
}

TEST(WsFrameEncode, Rfc256ByteBinaryUses16BitLength) {
  const Bytes payload = pattern(256);
  const std::string f = frame(WsOpcode::binary, payload);
  ASSERT_EQ(f.size(), 4u + 256u);
  EXPECT_EQ(to_bytes(f.substr(0, 4)), (Bytes{0x82, 0x7E, 0x01, 0x00}));
  EXPECT_EQ(to_bytes(f.substr(4)), payload);
}

TEST(WsFrameEncode, Rfc64KiBBinaryUses64BitLength) {
  const Bytes payload = pattern(65536);
  const std::string f = frame(WsOpcode::binary, payload);
  ASSERT_EQ(f.size(), 10u + 65536u);
  EXPECT_EQ(to_bytes(f.substr(0, 10)), (Bytes{0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}));
  EXPECT_EQ(to_bytes(f.substr(10)), payload);
}

TEST(WsFrameEncode, LengthFormsAreMinimal) {
  const struct { std::size_t size, header; } cases[] = {
      {0, 2}, {1, 2}, {125, 2}, {126, 4}, {65535, 4}, {65536, 10}, {65537, 10}};
  for (const auto& c : cases) {
    EXPECT_EQ(frame(WsOpcode::binary, pattern(c.size)).size(), c.header + c.size) << c.size;
    EXPECT_EQ(frame(WsOpcode::binary, pattern(c.size), true, kRfcKey).size(), c.header + 4 + c.size) << c.size;
  }
}

TEST(WsFrameEncode, HeaderAloneForHugeLengths) {
  std::string out;
  encode_ws_frame_header(out, WsOpcode::binary, std::uint64_t{1} << 40, false, Key{1, 2, 3, 4});
  EXPECT_EQ(to_bytes(out), (Bytes{0x02, 0xFF, 0, 0, 0x01, 0, 0, 0, 0, 0, 1, 2, 3, 4}));
}

TEST(WsFrameEncode, AppendsToExistingOutput) {
  std::string out = "x";
  encode_ws_frame(out, WsOpcode::close, {});
  EXPECT_EQ(to_bytes(out), (Bytes{'x', 0x88, 0x00}));
}

TEST(WsFrameMask, PiecewiseWithPhaseEqualsWhole) {
  const Bytes original = pattern(1000, 7);
  Bytes whole = original;
  apply_ws_mask(whole, kRfcKey);
  for (std::size_t split : {1u, 2u, 3u, 5u, 8u, 9u, 500u, 999u}) {
    Bytes pieces = original;
    apply_ws_mask(std::span(pieces).first(split), kRfcKey, 0);
    apply_ws_mask(std::span(pieces).subspan(split), kRfcKey, split);
    EXPECT_EQ(pieces, whole) << split;
  }
  apply_ws_mask(whole, kRfcKey);
  EXPECT_EQ(whole, original);
}

// ---- Decoding ------------------------------------------------------------------------------------

TEST(WsFrameDecode, RfcExamples) {
  const Bytes unmasked{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
  const Bytes masked{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  for (const Bytes* input : {&unmasked, &masked}) {
    const Decoded d = decode_stream(*input, 0);
    ASSERT_FALSE(d.error);
    ASSERT_EQ(d.frames.size(), 1u);
    EXPECT_EQ(d.frames[0].opcode, WsOpcode::text);
    EXPECT_TRUE(d.frames[0].fin);
    EXPECT_EQ(d.frames[0].payload, bytes_of("Hello"));
  }
  const Decoded frag = decode_stream(Bytes{0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f}, 0);
  ASSERT_EQ(frag.frames.size(), 2u);
  EXPECT_EQ(frag.frames[0].opcode, WsOpcode::text);
  EXPECT_FALSE(frag.frames[0].fin);
  EXPECT_EQ(frag.frames[1].opcode, WsOpcode::continuation);
  EXPECT_TRUE(frag.frames[1].fin);
  EXPECT_EQ(frag.frames[1].payload, bytes_of("lo"));
}

TEST(WsFrameDecode, NeedsMoreUntilTheLastByte) {
  const std::string f = frame(WsOpcode::binary, pattern(300), true, kRfcKey);
  WsFrameDecoder decoder;
  for (std::size_t i = 0; i + 1 < f.size(); ++i) {
    ASSERT_EQ(decoder.feed(span_of(f).subspan(i, 1)), 1u);
    auto r = decoder.next();
    ASSERT_TRUE(r);
    ASSERT_FALSE(*r) << "frame reported after " << i + 1 << " of " << f.size() << " bytes";
  }
  ASSERT_EQ(decoder.feed(span_of(f).subspan(f.size() - 1)), 1u);
  auto r = decoder.next();
  ASSERT_TRUE(r && *r);
  EXPECT_EQ((*r)->payload, pattern(300));
  EXPECT_EQ(decoder.buffered(), 0u);
}

// A stream exercising every opcode, both mask states, FIN = 0 and every length form.
static std::string mixed_stream(std::vector<WsFrame>* expected) {
  std::mt19937 rng(6455);
  std::string out;
  const WsOpcode data_ops[] = {WsOpcode::text, WsOpcode::binary, WsOpcode::continuation};
  const std::size_t sizes[] = {0, 1, 7, 125, 126, 127, 1000, 65535, 65536, 70000};
  for (int i = 0; i < 60; ++i) {
    WsFrame f;
    const bool control = i % 4 == 3;
    f.opcode = control ? (i % 3 == 0 ? WsOpcode::ping : i % 3 == 1 ? WsOpcode::pong : WsOpcode::close)
                       : data_ops[i % 3];
    f.fin = control || i % 5 != 0;
    f.payload = pattern(control ? static_cast<std::size_t>(i) % 126 : sizes[static_cast<std::size_t>(i) % 10],
                        static_cast<std::uint8_t>(i));
    std::optional<Key> key;
    if (i % 2 == 0) key = Key{static_cast<std::uint8_t>(rng()), static_cast<std::uint8_t>(rng()),
                              static_cast<std::uint8_t>(rng()), static_cast<std::uint8_t>(rng())};
    encode_ws_frame(out, f.opcode, f.payload, f.fin, key);
    expected->push_back(std::move(f));
  }
  return out;
}

TEST(WsFrameDecode, ByteAtATimeEqualsAllAtOnce) {
  std::vector<WsFrame> expected;
  const std::string stream = mixed_stream(&expected);
  const Decoded whole = decode_stream(stream, 0);
  ASSERT_FALSE(whole.error);
  ASSERT_EQ(whole.frames.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_TRUE(whole.frames[i] == expected[i]) << i;
  for (std::size_t chunk : {1u, 2u, 3u, 13u, 1000u, 65536u}) {
    const Decoded pieces = decode_stream(stream, chunk);
    ASSERT_FALSE(pieces.error) << chunk;
    ASSERT_EQ(pieces.frames.size(), expected.size()) << chunk;
    for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_TRUE(pieces.frames[i] == expected[i]) << chunk << " " << i;
  }
}

TEST(WsFrameDecode, RandomSplitsEqualAllAtOnce) {
  std::vector<WsFrame> expected;
  const std::string stream = mixed_stream(&expected);
  std::mt19937 rng(1);
  for (int round = 0; round < 20; ++round) {
    WsFrameDecoder decoder;
    std::vector<WsFrame> got;
    std::size_t pos = 0;
    while (pos < stream.size()) {
      const std::size_t len = std::min<std::size_t>(stream.size() - pos, 1 + rng() % 9000);
      auto piece = span_of(stream).subspan(pos, len);
      pos += len;
      while (!piece.empty()) {
        piece = piece.subspan(decoder.feed(piece));
        while (true) {
          auto r = decoder.next();
          ASSERT_TRUE(r);
          if (!*r) break;
          got.push_back(std::move(**r));
        }
      }
    }
    ASSERT_EQ(got.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_TRUE(got[i] == expected[i]);
  }
}

TEST(WsFrameDecode, ViewPointsIntoTheBufferAndSurvivesLaterViews) {
  std::string stream = frame(WsOpcode::binary, bytes_of("first"), true, kRfcKey);
  stream += frame(WsOpcode::text, bytes_of("second"));
  WsFrameDecoder decoder;
  ASSERT_EQ(decoder.feed(span_of(stream)), stream.size());
  auto a = decoder.next_view();
  auto b = decoder.next_view();
  ASSERT_TRUE(a && *a && b && *b);
  // Both still readable: views live until the next feed().
  EXPECT_EQ(Bytes((*a)->payload.begin(), (*a)->payload.end()), bytes_of("first"));
  EXPECT_EQ(Bytes((*b)->payload.begin(), (*b)->payload.end()), bytes_of("second"));
  EXPECT_EQ((*b)->opcode, WsOpcode::text);
  EXPECT_EQ((*b)->payload.data(), (*a)->payload.data() + 5 + 2) << "no copy: the second payload follows in place";
}

TEST(WsFrameDecode, ControlFrameOf125BytesIsFine) {
  const Decoded d = decode_stream(frame(WsOpcode::ping, pattern(125), true, kRfcKey), 0);
  ASSERT_FALSE(d.error);
  ASSERT_EQ(d.frames.size(), 1u);
  EXPECT_EQ(d.frames[0].payload, pattern(125));
}

TEST(WsFrameDecode, PayloadAtTheLimitIsFine) {
  const WsFrameLimits limits{.max_frame_payload = 1000};
  const Decoded d = decode_stream(frame(WsOpcode::binary, pattern(1000), true, kRfcKey), 7, limits);
  ASSERT_FALSE(d.error);
  ASSERT_EQ(d.frames.size(), 1u);
}

TEST(WsFrameDecode, FramesBeforeAnErrorAreDelivered) {
  std::string stream = frame(WsOpcode::text, bytes_of("ok"));
  stream += frame(WsOpcode::binary, bytes_of("ok2"));
  stream.push_back(static_cast<char>(0x83));  // opcode 3
  stream.push_back(0);
  for (std::size_t chunk : {0u, 1u}) {
    const Decoded d = decode_stream(stream, chunk);
    EXPECT_EQ(d.frames.size(), 2u);
    EXPECT_EQ(d.error, WsFrameError::unknown_opcode);
  }
}

// ---- Errors --------------------------------------------------------------------------------------

TEST(WsFrameErrors, ReservedBits) {
  for (std::uint8_t rsv : {0x40, 0x20, 0x10, 0x70})
    EXPECT_EQ(first_error({static_cast<std::uint8_t>(0x82 | rsv), 0x00}, 2), WsFrameError::reserved_bits_set);
}

TEST(WsFrameErrors, UnknownOpcodes) {
  for (std::uint8_t op : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF})
    EXPECT_EQ(first_error({static_cast<std::uint8_t>(0x80 | op), 0x00}, 2), WsFrameError::unknown_opcode) << int{op};
  for (std::uint8_t op : {0x0, 0x1, 0x2, 0x8, 0x9, 0xA})
    EXPECT_EQ(first_error({static_cast<std::uint8_t>(0x80 | op), 0x00}, 2), std::nullopt) << int{op};
}

TEST(WsFrameErrors, ControlFrameTooLongFailsOnTheSecondByte) {
  for (std::uint8_t op : {0x88, 0x89, 0x8A}) {
    EXPECT_EQ(first_error({op, 126, 0x00, 126}, 2), WsFrameError::control_frame_too_long);
    EXPECT_EQ(first_error({op, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0x10, 0}, 2), WsFrameError::control_frame_too_long);
  }
  // The encoder writes what it is told; the decoder refuses it.
  const Decoded d = decode_stream(frame(WsOpcode::ping, pattern(126)), 0);
  EXPECT_EQ(d.error, WsFrameError::control_frame_too_long);
}

TEST(WsFrameErrors, FragmentedControlFrame) {
  for (std::uint8_t op : {0x08, 0x09, 0x0A}) EXPECT_EQ(first_error({op, 0x00}, 2), WsFrameError::fragmented_control_frame);
  // FIN = 0 is fine on data frames.
  EXPECT_EQ(first_error({0x02, 0x00}, 2), std::nullopt);
}

TEST(WsFrameErrors, HugeLengthFailsBeforeAnyPayloadIsBuffered) {
  // 2^40 bytes announced: fails on the 10th byte, with nothing buffered and 1009 to send.
  const Bytes header{0x82, 0xFF, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 1, 2, 3, 4};
  EXPECT_EQ(first_error(header, 10), WsFrameError::payload_too_large);
  EXPECT_EQ(inkwire::proto::ws_close_code(WsFrameError::payload_too_large), 1009);

  WsFrameDecoder decoder;
  ASSERT_EQ(decoder.feed(header), header.size());
  auto r = decoder.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), WsFrameError::payload_too_large);
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(WsFrameErrors, PayloadOverTheLimit) {
  const WsFrameLimits limits{.max_frame_payload = 1000};
  EXPECT_EQ(first_error({0x82, 126, 0x03, 0xE9}, 4, limits), WsFrameError::payload_too_large);  // 1001
  EXPECT_EQ(first_error({0x82, 126, 0x03, 0xE8}, 4, limits), std::nullopt);                     // 1000
  const WsFrameLimits tiny{.max_frame_payload = 10};
  EXPECT_EQ(first_error({0x82, 11}, 2, tiny), WsFrameError::payload_too_large);
}

TEST(WsFrameErrors, MaskPolicy) {
  const std::string masked = frame(WsOpcode::binary, bytes_of("x"), true, kRfcKey);
  const std::string plain = frame(WsOpcode::binary, bytes_of("x"));
  const WsFrameLimits need_masked{.mask_policy = WsMaskPolicy::require_masked};
  const WsFrameLimits need_plain{.mask_policy = WsMaskPolicy::require_unmasked};
  EXPECT_EQ(decode_stream(plain, 1, need_masked).error, WsFrameError::mask_policy_violation);
  EXPECT_EQ(decode_stream(masked, 1, need_plain).error, WsFrameError::mask_policy_violation);
  EXPECT_EQ(decode_stream(masked, 1, need_masked).frames.size(), 1u);
  EXPECT_EQ(decode_stream(plain, 1, need_plain).frames.size(), 1u);
  EXPECT_EQ(decode_stream(masked + plain, 1).frames.size(), 2u);
  // Reported on the second byte, before the length or key arrive.
  EXPECT_EQ(first_error({0x82, 0x7E, 0x01, 0x00}, 2, need_masked), WsFrameError::mask_policy_violation);
}

TEST(WsFrameErrors, NonMinimalLengths) {
  EXPECT_EQ(first_error({0x82, 126, 0x00, 125}, 4), WsFrameError::non_minimal_length);
  EXPECT_EQ(first_error({0x82, 126, 0x00, 126}, 4), std::nullopt);
  EXPECT_EQ(first_error({0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}, 10), WsFrameError::non_minimal_length);
  EXPECT_EQ(first_error({0x82, 127, 0, 0, 0, 0, 0, 1, 0x00, 0x00}, 10), std::nullopt);

  const WsFrameLimits lenient{.allow_non_minimal_length = true};
  const Bytes five_in_16_bits{0x82, 126, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'};
  const Bytes five_in_64_bits{0x82, 127, 0, 0, 0, 0, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
  for (const Bytes* input : {&five_in_16_bits, &five_in_64_bits}) {
    const Decoded d = decode_stream(*input, 1, lenient);
    ASSERT_FALSE(d.error);
    ASSERT_EQ(d.frames.size(), 1u);
    EXPECT_EQ(d.frames[0].payload, bytes_of("hello"));
    EXPECT_EQ(decode_stream(*input, 1).error, WsFrameError::non_minimal_length);
  }
}

TEST(WsFrameErrors, LengthWithMostSignificantBitSet) {
  EXPECT_EQ(first_error({0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10), WsFrameError::length_msb_set);
  const WsFrameLimits unlimited{.max_frame_payload = SIZE_MAX};
  EXPECT_EQ(first_error({0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 10, unlimited),
            WsFrameError::length_msb_set);
}

TEST(WsFrameErrors, CloseCodes) {
  using inkwire::proto::ws_close_code;
  for (WsFrameError e : {WsFrameError::reserved_bits_set, WsFrameError::unknown_opcode,
                         WsFrameError::control_frame_too_long, WsFrameError::fragmented_control_frame,
                         WsFrameError::mask_policy_violation, WsFrameError::non_minimal_length,
                         WsFrameError::length_msb_set}) {
    EXPECT_EQ(ws_close_code(e), 1002) << inkwire::proto::to_string(e);
    EXPECT_FALSE(inkwire::proto::to_string(e).empty());
  }
  EXPECT_EQ(ws_close_code(WsFrameError::payload_too_large), 1009);
}

TEST(WsFrameErrors, ErrorIsStickyAndLaterInputIsDiscarded) {
  WsFrameDecoder decoder;
  const Bytes bad{0xC2, 0x00};
  ASSERT_EQ(decoder.feed(bad), 2u);
  ASSERT_FALSE(decoder.next());
  EXPECT_TRUE(decoder.failed());
  const std::string good = frame(WsOpcode::text, bytes_of("late"));
  EXPECT_EQ(decoder.feed(span_of(good)), good.size());
  EXPECT_EQ(decoder.buffered(), 0u);
  auto again = decoder.next();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), WsFrameError::reserved_bits_set);
  EXPECT_FALSE(decoder.next_view());
}

// ---- Bounds and cost -----------------------------------------------------------------------------

TEST(WsFrameBounds, FeedTakesNoMoreThanTheBound) {
  const WsFrameLimits limits{.max_frame_payload = 100};
  std::string stream;
  for (int i = 0; i < 1000; ++i) encode_ws_frame(stream, WsOpcode::binary, pattern(50, static_cast<std::uint8_t>(i)));
  WsFrameDecoder decoder(limits);
  EXPECT_EQ(decoder.capacity(), 114u);
  EXPECT_EQ(decoder.feed(span_of(stream)), 114u) << "one header + max payload, not the whole input";
  const Decoded d = decode_stream(stream, 0, limits);  // checks buffered() <= capacity() throughout
  ASSERT_FALSE(d.error);
  ASSERT_EQ(d.frames.size(), 1000u);
  EXPECT_EQ(d.frames[999].payload, pattern(50, static_cast<std::uint8_t>(999)));
}

TEST(WsFrameBounds, FullBufferAlwaysHoldsACompleteFrameOrAnError) {
  // A maximal frame fills the buffer exactly; the decoder must still make progress.
  const WsFrameLimits limits{.max_frame_payload = 300};
  std::string stream;
  for (int i = 0; i < 5; ++i) encode_ws_frame(stream, WsOpcode::binary, pattern(300), true, kRfcKey);
  for (std::size_t chunk : {0u, 1u, 299u, 314u, 315u}) {
    const Decoded d = decode_stream(stream, chunk, limits);
    ASSERT_FALSE(d.error);
    EXPECT_EQ(d.frames.size(), 5u) << chunk;
  }
}

TEST(WsFrameBounds, LargeFrameFedByteByByteIsLinear) {
  // 4 MiB one byte at a time: quadratic re-scanning or front-erasing would take hours, not ms.
  const Bytes payload = pattern(4 * 1024 * 1024, 3);
  const std::string f = frame(WsOpcode::binary, payload, true, kRfcKey);
  const Decoded d = decode_stream(f, 1);
  ASSERT_FALSE(d.error);
  ASSERT_EQ(d.frames.size(), 1u);
  EXPECT_EQ(d.frames[0].payload, payload);
}

TEST(WsFrameBounds, ManySmallFramesInOddChunksAreLinear) {
  std::string stream;
  for (int i = 0; i < 200000; ++i) encode_ws_frame(stream, WsOpcode::binary, pattern(i % 20), true, kRfcKey);
  const Decoded d = decode_stream(stream, 7);
  ASSERT_FALSE(d.error);
  EXPECT_EQ(d.frames.size(), 200000u);
}

// ---- CLOSE payloads ------------------------------------------------------------------------------

TEST(WsClosePayload, CodeThenReason) {
  EXPECT_EQ(to_bytes(encode_close_payload(1000, "bye")), (Bytes{0x03, 0xE8, 'b', 'y', 'e'}));
  EXPECT_EQ(to_bytes(encode_close_payload(4500, "")), (Bytes{0x11, 0x94}));
}

TEST(WsClosePayload, ReasonCutTo123BytesOnAUtf8Boundary) {
  const std::string ascii(200, 'a');
  EXPECT_EQ(encode_close_payload(1000, ascii).substr(2), std::string(123, 'a'));
  EXPECT_EQ(encode_close_payload(1000, std::string(123, 'b')).substr(2), std::string(123, 'b'));

  // A 2-byte é straddling byte 123 goes whole.
  EXPECT_EQ(encode_close_payload(1000, std::string(122, 'a') + "\xC3\xA9").substr(2), std::string(122, 'a'));
  // A 2-byte é ending exactly at 123 stays.
  EXPECT_EQ(encode_close_payload(1000, std::string(121, 'a') + "\xC3\xA9" + "z").substr(2),
            std::string(121, 'a') + "\xC3\xA9");
  // A 3-byte € starting at 121 or 122.
  EXPECT_EQ(encode_close_payload(1000, std::string(121, 'a') + "\xE2\x82\xAC").substr(2), std::string(121, 'a'));
  EXPECT_EQ(encode_close_payload(1000, std::string(122, 'a') + "\xE2\x82\xAC").substr(2), std::string(122, 'a'));
  // 4-byte emoji: 31 of them are 124 bytes, so 30 fit (120 bytes).
  std::string emoji;
  for (int i = 0; i < 31; ++i) emoji += "\xF0\x9F\x98\x80";
  EXPECT_EQ(encode_close_payload(1000, emoji).substr(2), emoji.substr(0, 120));
  // The whole payload always fits a control frame.
  EXPECT_LE(encode_close_payload(1000, emoji + ascii).size(), 125u);
}

TEST(WsClosePayload, Decode) {
  auto empty = decode_close_payload({});
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->code, 1005);
  EXPECT_EQ(empty->reason, "");
  const Bytes one{0x03};
  EXPECT_FALSE(decode_close_payload(one));
  const std::string p = encode_close_payload(1011, "internal \xC3\xA9rror");
  auto c = decode_close_payload(span_of(p));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->code, 1011);
  EXPECT_EQ(c->reason, "internal \xC3\xA9rror");
}

TEST(WsClosePayload, RoundTripThroughAFrame) {
  const std::string p = encode_close_payload(1001, std::string(300, 'x'));
  const Decoded d = decode_stream(
      frame(WsOpcode::close, Bytes(p.begin(), p.end()), true, kRfcKey), 1,
      WsFrameLimits{.mask_policy = WsMaskPolicy::require_masked});
  ASSERT_FALSE(d.error);
  ASSERT_EQ(d.frames.size(), 1u);
  auto c = decode_close_payload(d.frames[0].payload);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->code, 1001);
  EXPECT_EQ(c->reason, std::string(123, 'x'));
}
