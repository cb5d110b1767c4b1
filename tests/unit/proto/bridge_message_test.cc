#include "proto/bridge_message.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "proto/ws_frame.h"

using inkwire::proto::bridge_base64_decode;
using inkwire::proto::bridge_base64_encode;
using inkwire::proto::BridgeItem;
using inkwire::proto::BridgeMessage;
using inkwire::proto::BridgeMessageDecoder;
using inkwire::proto::BridgeMessageError;
using inkwire::proto::BridgeMessageLimits;
using inkwire::proto::BridgeSkipped;
using inkwire::proto::BridgeSkipReason;
using inkwire::proto::encode_bridge_message;

namespace {

std::span<const std::uint8_t> span_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// A length prefix and the given JSON, as an agent would send it.
std::string prefixed(std::string_view json) {
  const auto n = static_cast<std::uint32_t>(json.size());
  std::string out{static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                  static_cast<char>(n)};
  out.append(json);
  return out;
}

std::string encoded(const BridgeMessage& m) {
  std::string out;
  encode_bridge_message(out, m);
  return out;
}

std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

struct Decoded {
  std::vector<BridgeItem> items;
  std::optional<BridgeMessageError> error;
};

// Feeds in pieces of `chunk` bytes (0 = all at once), draining after each feed.
Decoded decode_stream(std::string_view input, std::size_t chunk, BridgeMessageLimits limits = {}) {
  BridgeMessageDecoder decoder(limits);
  Decoded result;
  std::size_t pos = 0;
  while (pos < input.size()) {
    const std::size_t len = chunk == 0 ? input.size() - pos : std::min(chunk, input.size() - pos);
    auto piece = span_of(input.substr(pos, len));
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
        result.items.push_back(std::move(**r));
      }
    }
  }
  return result;
}

// The single item one JSON text decodes to.
BridgeItem decode_one(std::string_view json) {
  const Decoded d = decode_stream(prefixed(json), 0);
  EXPECT_FALSE(d.error);
  EXPECT_EQ(d.items.size(), 1u) << json;
  return d.items.empty() ? BridgeItem{BridgeSkipped{BridgeSkipReason::malformed_json}} : d.items[0];
}

BridgeItem skipped(BridgeSkipReason r) { return BridgeSkipped{r}; }

}  // namespace

// ---- Encoding: exactly what the agents write -----------------------------------------------------

TEST(BridgeMessageEncode, CompactJsonInAgentKeyOrder) {
  EXPECT_EQ(encoded(BridgeMessage::text("hi")), prefixed(R"({"type":"text","data":"hi"})"));
  EXPECT_EQ(encoded(BridgeMessage::binary("foob")), prefixed(R"({"type":"binary","data":"Zm9vYg=="})"));
  EXPECT_EQ(encoded(BridgeMessage::close(1001, "going")), prefixed(R"({"type":"close","code":1001,"reason":"going"})"));
  EXPECT_EQ(encoded(BridgeMessage::close(1000, "")), prefixed(R"({"type":"close","code":1000,"reason":""})"));
  EXPECT_EQ(encoded(BridgeMessage::binary("")), prefixed(R"({"type":"binary","data":""})"));
}

TEST(BridgeMessageEncode, LengthPrefixIsBigEndian) {
  const std::string text(70000, 'x');
  const std::string out = encoded(BridgeMessage::text(text));
  const std::size_t n = out.size() - 4;
  EXPECT_EQ(n, text.size() + 25);  // {"type":"text","data":""}
  EXPECT_EQ(static_cast<std::uint8_t>(out[0]), 0);
  EXPECT_EQ(static_cast<std::uint8_t>(out[1]), (n >> 16) & 0xFF);
  EXPECT_EQ(static_cast<std::uint8_t>(out[2]), (n >> 8) & 0xFF);
  EXPECT_EQ(static_cast<std::uint8_t>(out[3]), n & 0xFF);
}

TEST(BridgeMessageEncode, EscapesWhatJsonRequires) {
  EXPECT_EQ(encoded(BridgeMessage::text("a\"b\\c\n\r\t\b\f\x01\x1f/\x7f")),
            prefixed(R"({"type":"text","data":"a\"b\\c\n\r\t\b\f\u0001\u001f/)" "\x7f" R"("})"));
  // UTF-8 goes through unescaped.
  EXPECT_EQ(encoded(BridgeMessage::text("caf\xC3\xA9 \xF0\x9F\x98\x80")),
            prefixed("{\"type\":\"text\",\"data\":\"caf\xC3\xA9 \xF0\x9F\x98\x80\"}"));
}

TEST(BridgeMessageEncode, AppendsToExistingOutput) {
  std::string out = "xy";
  encode_bridge_message(out, BridgeMessage::text("a"));
  encode_bridge_message(out, BridgeMessage::close(1000, ""));
  EXPECT_EQ(out, "xy" + prefixed(R"({"type":"text","data":"a"})") +
                     prefixed(R"({"type":"close","code":1000,"reason":""})"));
}

// ---- base64 --------------------------------------------------------------------------------------

TEST(BridgeBase64, Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, b64] : vectors) {
    EXPECT_EQ(bridge_base64_encode(span_of(plain)), b64);
    EXPECT_EQ(bridge_base64_decode(b64), plain);
  }
  const std::string every = all_bytes();
  EXPECT_EQ(bridge_base64_decode(bridge_base64_encode(span_of(every))), every);
  EXPECT_EQ(bridge_base64_encode(span_of("\xfb\xff")), "+/8=");
}

TEST(BridgeBase64, RejectsEverythingButCanonicalPaddedStandard) {
  const char* bad[] = {
      "Zg",        // missing padding
      "Zg=",       // short padding
      "Zm8",       // missing padding
      "Z===",      // three pads
      "====",      // nothing but pads
      "Zh==",      // non-canonical: unused bits set ("Zg==" is the one encoding of "f")
      "Zm9=",      // non-canonical ("Zm8=")
      "Zg==Zg==",  // padding before the end
      "Zm=v",      // '=' in the middle of a group
      "Zm8 ",      // whitespace
      "Zm8\n",
      " Zm8=",
      "-_8=",      // URL-safe alphabet
      "@@@@",
      "Zm9vYg==\n",
  };
  for (const char* b : bad) EXPECT_FALSE(bridge_base64_decode(b)) << b;
  EXPECT_FALSE(bridge_base64_decode(std::string_view("Zm9v\0Yg=", 8)));
}

// ---- Decoding ------------------------------------------------------------------------------------

TEST(BridgeMessageDecode, RoundTripText) {
  const std::string text = "say \"hi\" \\ caf\xC3\xA9 \xF0\x9F\x98\x80 \xE2\x82\xAC\n\t\x01 </script>";
  EXPECT_EQ(decode_one(encoded(BridgeMessage::text(text)).substr(4)), BridgeItem{BridgeMessage::text(text)});
  EXPECT_EQ(decode_one(R"({"type":"text","data":""})"), BridgeItem{BridgeMessage::text("")});
}

TEST(BridgeMessageDecode, EscapedUnicodeAsPythonJsonDumpsWritesIt) {
  // json.dumps defaults to ensure_ascii: the Python agent sends \u escapes, with surrogate pairs.
  EXPECT_EQ(decode_one(R"({"type":"text","data":"caf\u00e9 \ud83d\ude00 \u20ac"})"),
            BridgeItem{BridgeMessage::text("caf\xC3\xA9 \xF0\x9F\x98\x80 \xE2\x82\xAC")});
}

TEST(BridgeMessageDecode, RoundTripBinaryAllByteValues) {
  const std::string bytes = all_bytes();
  const Decoded d = decode_stream(encoded(BridgeMessage::binary(bytes)), 1);
  ASSERT_FALSE(d.error);
  ASSERT_EQ(d.items.size(), 1u);
  EXPECT_EQ(d.items[0], BridgeItem{BridgeMessage::binary(bytes)});
  for (std::size_t n = 0; n < 8; ++n) {
    const std::string some = bytes.substr(250 - n, n);
    EXPECT_EQ(decode_stream(encoded(BridgeMessage::binary(some)), 0).items.at(0), BridgeItem{BridgeMessage::binary(some)});
  }
}

TEST(BridgeMessageDecode, RoundTripLargeBinary) {
  std::string bytes(3 * 1024 * 1024 + 1, '\0');
  std::mt19937 rng(42);
  for (char& c : bytes) c = static_cast<char>(rng());
  const Decoded d = decode_stream(encoded(BridgeMessage::binary(bytes)), 65536);
  ASSERT_FALSE(d.error);
  ASSERT_EQ(d.items.size(), 1u);
  EXPECT_EQ(d.items[0], BridgeItem{BridgeMessage::binary(bytes)});
}

TEST(BridgeMessageDecode, Close) {
  EXPECT_EQ(decode_one(R"({"type":"close","code":4000,"reason":"bye \u00e9"})"),
            BridgeItem{BridgeMessage::close(4000, "bye \xC3\xA9")});
  EXPECT_EQ(decode_one(R"({"type":"close","reason":"no code"})"), BridgeItem{BridgeMessage::close(1000, "no code")});
  EXPECT_EQ(decode_one(R"({"type":"close"})"), BridgeItem{BridgeMessage::close(1000, "")});
  EXPECT_EQ(decode_one(R"({"type":"close","code":null,"reason":null})"), BridgeItem{BridgeMessage::close(1000, "")});
  EXPECT_EQ(decode_one(R"({"type":"close","code":0,"reason":""})"), BridgeItem{BridgeMessage::close(0, "")});
  EXPECT_EQ(decode_one(R"({"type":"close","code":65535,"reason":""})"), BridgeItem{BridgeMessage::close(65535, "")});
  const BridgeMessage m = BridgeMessage::close(1011, "quote \" and \\");
  EXPECT_EQ(decode_one(encoded(m).substr(4)), BridgeItem{m});
}

TEST(BridgeMessageDecode, MissingDataTakesTheAgentsDefault) {
  EXPECT_EQ(decode_one(R"({"type":"text"})"), BridgeItem{BridgeMessage::text("")});
  EXPECT_EQ(decode_one(R"({"type":"binary"})"), BridgeItem{BridgeMessage::binary("")});
  EXPECT_EQ(decode_one(R"({"type":"text","data":null})"), BridgeItem{BridgeMessage::text("")});
}

TEST(BridgeMessageDecode, KeyOrderAndExtraKeysDoNotMatter) {
  EXPECT_EQ(decode_one(R"({"data":"x","type":"text"})"), BridgeItem{BridgeMessage::text("x")});
  EXPECT_EQ(decode_one(R"({"data":"Zm9v","type":"binary"})"), BridgeItem{BridgeMessage::binary("foo")});
  EXPECT_EQ(decode_one(R"({"reason":"r","code":4001,"type":"close"})"), BridgeItem{BridgeMessage::close(4001, "r")});
  EXPECT_EQ(decode_one(R"({"code":4002,"type":"close","reason":"r"})"), BridgeItem{BridgeMessage::close(4002, "r")});
  EXPECT_EQ(decode_one(R"( { "type" : "text" , "extra" : [1, {"a": 2}], "data" : "y" } )"),
            BridgeItem{BridgeMessage::text("y")});
  // A duplicated key: the last one wins, as with JSON.parse and json.loads.
  EXPECT_EQ(decode_one(R"({"type":"binary","data":"x","type":"text"})"), BridgeItem{BridgeMessage::text("x")});
}

TEST(BridgeMessageDecode, SkipsMalformedJson) {
  for (const char* json : {"", "{", "nope", R"({"type":"text",})", R"({'type':'text'})",
                           R"({"type":"text","data":"x"} trailing)", R"({"type":"text"/*c*/})",
                           R"({"type":"text","data":"\ud800"})",  // lone surrogate
                           "{\"type\":\"text\",\"data\":\"\xff\"}",  // invalid UTF-8
                           "{\"type\":\"text\",\"data\":\"\xED\xA0\x80\"}"})  // UTF-8-encoded surrogate
    EXPECT_EQ(decode_one(json), skipped(BridgeSkipReason::malformed_json)) << json;
}

TEST(BridgeMessageDecode, SkipsNonObjects) {
  for (const char* json : {"[]", R"(["type","text"])", R"("text")", "42", "null", "true"})
    EXPECT_EQ(decode_one(json), skipped(BridgeSkipReason::not_an_object)) << json;
}

TEST(BridgeMessageDecode, SkipsUnknownTypes) {
  for (const char* json : {R"({"type":"ping"})", R"({"type":"TEXT","data":"x"})", R"({"data":"x"})",
                           R"({"type":null,"data":"x"})", R"({"type":1})", R"({})"})
    EXPECT_EQ(decode_one(json), skipped(BridgeSkipReason::unknown_type)) << json;
}

TEST(BridgeMessageDecode, SkipsFieldsOfTheWrongType) {
  for (const char* json : {R"({"type":"text","data":5})", R"({"type":"text","data":["x"]})",
                           R"({"type":"binary","data":[1,2]})", R"({"type":"close","code":"1000"})",
                           R"({"type":"close","code":1000.5})", R"({"type":"close","code":1e3})",
                           R"({"type":"close","code":-1})", R"({"type":"close","code":65536})",
                           R"({"type":"close","code":18446744073709551615})",
                           R"({"type":"close","code":1000,"reason":5})"})
    EXPECT_EQ(decode_one(json), skipped(BridgeSkipReason::bad_field)) << json;
}

TEST(BridgeMessageDecode, SkipsBadBase64) {
  for (const char* data : {"Zg", "Zg=", "Zh==", "Zm9=", "Zm8 ", "-_8=", "@@@@", "Zg==Zg==", "Zm9v\\n"}) {
    const std::string json = std::string(R"({"type":"binary","data":")") + data + "\"}";
    EXPECT_EQ(decode_one(json), skipped(BridgeSkipReason::bad_base64)) << json;
  }
}

TEST(BridgeMessageDecode, SkippingDoesNotDesynchroniseTheStream) {
  std::string stream = prefixed("{") + prefixed(R"({"type":"ping"})") + encoded(BridgeMessage::text("after")) +
                       prefixed(R"({"type":"binary","data":"Zh=="})") + encoded(BridgeMessage::close(1000, ""));
  const std::vector<BridgeItem> expected{
      skipped(BridgeSkipReason::malformed_json), skipped(BridgeSkipReason::unknown_type),
      BridgeMessage::text("after"), skipped(BridgeSkipReason::bad_base64), BridgeMessage::close(1000, "")};
  for (std::size_t chunk : {0u, 1u, 5u}) {
    const Decoded d = decode_stream(stream, chunk);
    ASSERT_FALSE(d.error);
    EXPECT_EQ(d.items, expected) << chunk;
  }
}

TEST(BridgeMessageDecode, SeveralMessagesInOneFeed) {
  const std::string stream = encoded(BridgeMessage::text("one")) + encoded(BridgeMessage::binary("two")) +
                             encoded(BridgeMessage::text("three")) + encoded(BridgeMessage::close(1001, "four"));
  BridgeMessageDecoder decoder;
  ASSERT_EQ(decoder.feed(span_of(stream)), stream.size());
  std::vector<BridgeItem> got;
  for (;;) {
    auto r = decoder.next();
    ASSERT_TRUE(r);
    if (!*r) break;
    got.push_back(std::move(**r));
  }
  EXPECT_EQ(got, (std::vector<BridgeItem>{BridgeMessage::text("one"), BridgeMessage::binary("two"),
                                          BridgeMessage::text("three"), BridgeMessage::close(1001, "four")}));
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(BridgeMessageDecode, SplitAtEveryOffset) {
  const std::string stream = encoded(BridgeMessage::text("caf\xC3\xA9 \"q\"")) + encoded(BridgeMessage::binary(all_bytes())) +
                             encoded(BridgeMessage::close(4000, "r")) + prefixed(R"({"data":"x","type":"text"})");
  const Decoded whole = decode_stream(stream, 0);
  ASSERT_FALSE(whole.error);
  ASSERT_EQ(whole.items.size(), 4u);
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    BridgeMessageDecoder decoder;
    std::vector<BridgeItem> got;
    for (std::string_view part : {std::string_view(stream).substr(0, cut), std::string_view(stream).substr(cut)}) {
      ASSERT_EQ(decoder.feed(span_of(part)), part.size());
      for (;;) {
        auto r = decoder.next();
        ASSERT_TRUE(r);
        if (!*r) break;
        got.push_back(std::move(**r));
      }
    }
    ASSERT_EQ(got, whole.items) << "cut at " << cut;
  }
  const Decoded bytewise = decode_stream(stream, 1);
  EXPECT_EQ(bytewise.items, whole.items);
}

TEST(BridgeMessageDecode, EmptyMessageIsSkipped) {
  EXPECT_EQ(decode_stream(std::string(4, '\0'), 1).items, std::vector<BridgeItem>{skipped(BridgeSkipReason::malformed_json)});
}

// ---- Limits --------------------------------------------------------------------------------------

TEST(BridgeMessageLimit, OversizePrefixFailsOnItsFourthByte) {
  const BridgeMessageLimits limits{.max_message_bytes = 1000};
  const std::string at_limit = prefixed(std::string(R"({"type":"text","data":")") + std::string(1000 - 25, 'a') + "\"}");
  ASSERT_EQ(at_limit.size(), 1004u);
  const Decoded ok = decode_stream(at_limit, 1, limits);
  ASSERT_FALSE(ok.error);
  EXPECT_EQ(ok.items.size(), 1u);

  const std::string over{0x00, 0x00, 0x03, static_cast<char>(0xE9)};  // 1001
  BridgeMessageDecoder decoder(limits);
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(decoder.feed(span_of(over).subspan(i, 1)), 1u);
    auto r = decoder.next();
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r);
  }
  ASSERT_EQ(decoder.feed(span_of(over).subspan(3, 1)), 1u);
  auto r = decoder.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), BridgeMessageError::message_too_large);
  EXPECT_EQ(decoder.buffered(), 0u);
  EXPECT_TRUE(decoder.failed());
  // Sticky; later input is discarded, not buffered.
  const std::string later = encoded(BridgeMessage::text("x"));
  EXPECT_EQ(decoder.feed(span_of(later)), later.size());
  EXPECT_EQ(decoder.buffered(), 0u);
  EXPECT_FALSE(decoder.next());
}

TEST(BridgeMessageLimit, DefaultIs16MiB) {
  const std::string huge{static_cast<char>(0xFF), static_cast<char>(0xFF), static_cast<char>(0xFF),
                         static_cast<char>(0xFF)};
  EXPECT_EQ(decode_stream(huge, 0).error, BridgeMessageError::message_too_large);
  const std::string just_over{0x01, 0x00, 0x00, 0x01};  // 16 MiB + 1
  EXPECT_EQ(decode_stream(just_over, 0).error, BridgeMessageError::message_too_large);
  const std::string at{0x01, 0x00, 0x00, 0x00};  // 16 MiB: waits for the body
  const Decoded d = decode_stream(at, 0);
  EXPECT_FALSE(d.error);
  EXPECT_TRUE(d.items.empty());
  EXPECT_EQ(BridgeMessageDecoder().capacity(), 4u + 16 * 1024 * 1024);
}

TEST(BridgeMessageLimit, FeedTakesNoMoreThanTheBound) {
  const BridgeMessageLimits limits{.max_message_bytes = 100};
  std::string stream;
  for (int i = 0; i < 500; ++i) stream += encoded(BridgeMessage::text(std::to_string(i)));
  BridgeMessageDecoder decoder(limits);
  EXPECT_EQ(decoder.feed(span_of(stream)), 104u);
  const Decoded d = decode_stream(stream, 0, limits);
  ASSERT_FALSE(d.error);
  ASSERT_EQ(d.items.size(), 500u);
  EXPECT_EQ(d.items[499], BridgeItem{BridgeMessage::text("499")});
}

// ---- Inside WebSocket frames, as on the bridge ---------------------------------------------------

TEST(BridgeOverWsFrames, MessagesSplitAcrossMaskedFramesAtRandom) {
  using inkwire::proto::WsFrameDecoder;
  using inkwire::proto::WsOpcode;
  std::string inner;
  std::vector<BridgeItem> expected;
  for (int i = 0; i < 50; ++i) {
    BridgeMessage m = i % 3 == 0   ? BridgeMessage::text(std::string(static_cast<std::size_t>(i) * 37, 'a' + static_cast<char>(i % 26)))
                      : i % 3 == 1 ? BridgeMessage::binary(all_bytes().substr(0, static_cast<std::size_t>(i) * 5))
                                   : BridgeMessage::close(1000 + i, "r" + std::to_string(i));
    encode_bridge_message(inner, m);
    expected.emplace_back(std::move(m));
  }
  // The agent cuts the inner stream into BINARY frames wherever it likes, and masks them.
  std::mt19937 rng(8455);
  std::string wire;
  for (std::size_t pos = 0; pos < inner.size();) {
    const std::size_t len = std::min<std::size_t>(inner.size() - pos, rng() % 700);
    const std::array<std::uint8_t, 4> key{static_cast<std::uint8_t>(rng()), 1, 2, static_cast<std::uint8_t>(rng())};
    inkwire::proto::encode_ws_frame(wire, WsOpcode::binary, span_of(inner).subspan(pos, len), true, key);
    pos += len;
  }
  WsFrameDecoder frames({.mask_policy = inkwire::proto::WsMaskPolicy::require_masked});
  BridgeMessageDecoder messages;
  std::vector<BridgeItem> got;
  for (auto wire_rest = span_of(wire); !wire_rest.empty();) {
    wire_rest = wire_rest.subspan(frames.feed(wire_rest.first(std::min<std::size_t>(wire_rest.size(), 1 + rng() % 300))));
    for (;;) {
      auto f = frames.next_view();
      ASSERT_TRUE(f);
      if (!*f) break;
      for (auto payload = (*f)->payload; !payload.empty();) {
        payload = payload.subspan(messages.feed(payload));
        for (;;) {
          auto m = messages.next();
          ASSERT_TRUE(m);
          if (!*m) break;
          got.push_back(std::move(**m));
        }
      }
    }
  }
  EXPECT_EQ(got, expected);
}
