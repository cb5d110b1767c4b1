#include "proto/public_websocket.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

using inkwire::proto::BridgeMessage;
using inkwire::proto::BridgeMessageDecoder;
using inkwire::proto::encode_bridge_binary;
using inkwire::proto::encode_bridge_close;
using inkwire::proto::encode_bridge_text;
using inkwire::proto::encode_close_payload;
using inkwire::proto::encode_ws_frame;
using inkwire::proto::PublicWebSocket;
using inkwire::proto::PublicWebSocketLimits;
using inkwire::proto::WsFrame;
using inkwire::proto::WsFrameDecoder;
using inkwire::proto::WsMaskPolicy;
using inkwire::proto::WsOpcode;

namespace {

constexpr std::array<std::uint8_t, 4> kKey{0x37, 0xfa, 0x21, 0x3d};

std::span<const std::uint8_t> span_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// A frame as a browser sends it: masked.
std::string client_frame(WsOpcode op, std::string_view payload, bool fin = true) {
  std::string out;
  encode_ws_frame(out, op, span_of(payload), fin, kKey);
  return out;
}

std::string client_close(std::uint16_t code, std::string_view reason = {}) {
  return client_frame(WsOpcode::close, encode_close_payload(code, reason));
}

std::string agent_text(std::string_view text) {
  std::string out;
  encode_bridge_text(out, text);
  return out;
}

std::string agent_binary(std::string_view bytes) {
  std::string out;
  encode_bridge_binary(out, span_of(bytes));
  return out;
}

std::string agent_close(int code, std::string_view reason = {}) {
  std::string out;
  encode_bridge_close(out, code, reason);
  return out;
}

void feed_client(PublicWebSocket& ws, std::string_view bytes) { ws.feed_from_client(span_of(bytes)); }
void feed_agent(PublicWebSocket& ws, std::string_view bytes) { ws.feed_from_agent(span_of(bytes)); }

// Everything the edge sent the client so far, as frames (which must be unmasked).
std::vector<WsFrame> client_frames(const std::string& bytes) {
  WsFrameDecoder decoder({.max_frame_payload = 64 * 1024 * 1024, .mask_policy = WsMaskPolicy::require_unmasked});
  std::vector<WsFrame> frames;
  EXPECT_EQ(decoder.feed(span_of(bytes)), bytes.size());
  for (;;) {
    auto r = decoder.next();
    EXPECT_TRUE(r.has_value());
    if (!r || !*r) break;
    frames.push_back(std::move(**r));
  }
  EXPECT_EQ(decoder.buffered(), 0u);
  return frames;
}

std::vector<BridgeMessage> agent_messages(const std::string& bytes) {
  BridgeMessageDecoder decoder({.max_message_bytes = 64 * 1024 * 1024});
  std::vector<BridgeMessage> messages;
  EXPECT_EQ(decoder.feed(span_of(bytes)), bytes.size());
  for (;;) {
    auto r = decoder.next();
    EXPECT_TRUE(r.has_value());
    if (!r || !*r) break;
    const auto* m = std::get_if<BridgeMessage>(&**r);
    EXPECT_NE(m, nullptr);
    if (m != nullptr) messages.push_back(*m);
  }
  EXPECT_EQ(decoder.buffered(), 0u);
  return messages;
}

std::string payload_string(const WsFrame& f) { return {f.payload.begin(), f.payload.end()}; }

// The code and reason of a CLOSE frame the edge sent.
std::pair<std::uint16_t, std::string> close_of(const WsFrame& f) {
  EXPECT_EQ(f.opcode, WsOpcode::close);
  auto c = inkwire::proto::decode_close_payload(f.payload);
  EXPECT_TRUE(c.has_value());
  return c ? std::pair{c->code, c->reason} : std::pair{std::uint16_t{0}, std::string()};
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 31 + 7);
  return s;
}

}  // namespace

// ---- Data both ways ------------------------------------------------------------------------------

TEST(PublicWebSocket, TextBothWays) {
  PublicWebSocket ws;
  feed_client(ws, client_frame(WsOpcode::text, "hello \xe2\x82\xac"));
  EXPECT_EQ(agent_messages(ws.take_to_agent()), std::vector{BridgeMessage::text("hello \xe2\x82\xac")});

  feed_agent(ws, agent_text("hi \"there\""));
  const auto frames = client_frames(ws.take_to_client());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, WsOpcode::text);
  EXPECT_TRUE(frames[0].fin);
  EXPECT_EQ(payload_string(frames[0]), "hi \"there\"");
  EXPECT_FALSE(ws.finished());
  EXPECT_EQ(ws.buffered_bytes(), 0u);
}

TEST(PublicWebSocket, BinaryBothWays) {
  PublicWebSocket ws;
  const std::string bytes("\x00\x01\xff\xfe binary", 11);
  feed_client(ws, client_frame(WsOpcode::binary, bytes));
  EXPECT_EQ(agent_messages(ws.take_to_agent()), std::vector{BridgeMessage::binary(bytes)});

  feed_agent(ws, agent_binary(bytes));
  const auto frames = client_frames(ws.take_to_client());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, WsOpcode::binary);
  EXPECT_EQ(payload_string(frames[0]), bytes);
}

TEST(PublicWebSocket, EmptyMessages) {
  PublicWebSocket ws;
  feed_client(ws, client_frame(WsOpcode::text, ""));
  feed_client(ws, client_frame(WsOpcode::binary, ""));
  EXPECT_EQ(agent_messages(ws.take_to_agent()), (std::vector{BridgeMessage::text(""), BridgeMessage::binary("")}));
}

TEST(PublicWebSocket, SeveralFramesInOneRead) {
  PublicWebSocket ws;
  feed_client(ws, client_frame(WsOpcode::text, "a") + client_frame(WsOpcode::binary, "b") +
                      client_frame(WsOpcode::text, "c"));
  EXPECT_EQ(agent_messages(ws.take_to_agent()),
            (std::vector{BridgeMessage::text("a"), BridgeMessage::binary("b"), BridgeMessage::text("c")}));
  feed_agent(ws, agent_text("x") + agent_binary("y"));
  EXPECT_EQ(client_frames(ws.take_to_client()).size(), 2u);
}

TEST(PublicWebSocket, FragmentedTextReassembled) {
  PublicWebSocket ws;
  // "caf\xc3\xa9 ok": the two bytes of é are split across fragments, and a PING comes in between.
  feed_client(ws, client_frame(WsOpcode::text, "caf\xc3", false));
  feed_client(ws, client_frame(WsOpcode::ping, "p"));
  feed_client(ws, client_frame(WsOpcode::continuation, "\xa9", false));
  feed_client(ws, client_frame(WsOpcode::continuation, " ok", true));
  EXPECT_EQ(agent_messages(ws.take_to_agent()), std::vector{BridgeMessage::text("caf\xc3\xa9 ok")});
  const auto frames = client_frames(ws.take_to_client());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, WsOpcode::pong);
}

TEST(PublicWebSocket, FragmentedBinaryReassembled) {
  PublicWebSocket ws;
  feed_client(ws, client_frame(WsOpcode::binary, "ab", false));
  feed_client(ws, client_frame(WsOpcode::continuation, "", false));
  feed_client(ws, client_frame(WsOpcode::continuation, "cd", true));
  feed_client(ws, client_frame(WsOpcode::text, "next"));
  EXPECT_EQ(agent_messages(ws.take_to_agent()),
            (std::vector{BridgeMessage::binary("abcd"), BridgeMessage::text("next")}));
}

TEST(PublicWebSocket, OneMebibyteBinaryBothWays) {
  PublicWebSocket ws;
  const std::string big = pattern(1024 * 1024);
  feed_client(ws, client_frame(WsOpcode::binary, big));
  EXPECT_EQ(agent_messages(ws.take_to_agent()), std::vector{BridgeMessage::binary(big)});
  feed_agent(ws, agent_binary(big));
  const auto frames = client_frames(ws.take_to_client());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(payload_string(frames[0]), big);
}

// ---- Client protocol errors ----------------------------------------------------------------------

TEST(PublicWebSocket, TooBigClientMessageIs1009BothWays) {
  PublicWebSocket ws({.max_message_bytes = 1000});
  feed_client(ws, client_frame(WsOpcode::binary, pattern(1000)));  // exactly the limit is fine
  ASSERT_EQ(agent_messages(ws.take_to_agent()).size(), 1u);
  feed_client(ws, client_frame(WsOpcode::binary, pattern(1001)));
  const auto frames = client_frames(ws.take_to_client());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(close_of(frames[0]).first, 1009);
  EXPECT_EQ(agent_messages(ws.take_to_agent()), std::vector{BridgeMessage::close(1009, "message too big")});
  EXPECT_EQ(ws.close_code_to_client(), 1009);
  EXPECT_EQ(ws.close_code_to_agent(), 1009);
  EXPECT_TRUE(ws.finished());  // failed: no echo is awaited
}

TEST(PublicWebSocket, TooBigFragmentedClientMessageIs1009) {
  PublicWebSocket ws({.max_message_bytes = 1000});
  feed_client(ws, client_frame(WsOpcode::text, std::string(600, 'a'), false));
  feed_client(ws, client_frame(WsOpcode::continuation, std::string(401, 'a'), true));
  EXPECT_EQ(close_of(client_frames(ws.take_to_client()).at(0)).first, 1009);
  EXPECT_EQ(agent_messages(ws.take_to_agent()), std::vector{BridgeMessage::close(1009, "message too big")});
  EXPECT_EQ(ws.buffered_bytes(), 0u);
}

TEST(PublicWebSocket, TooBigClientFrameIs1009) {
  PublicWebSocket ws({.max_message_bytes = 1 << 20, .max_frame_payload = 100});
  feed_client(ws, client_frame(WsOpcode::binary, pattern(101)));
  EXPECT_EQ(close_of(client_frames(ws.take_to_client()).at(0)).first, 1009);
  EXPECT_EQ(ws.close_code_to_agent(), 1009);
}

TEST(PublicWebSocket, InvalidUtf8Is1007) {
  PublicWebSocket ws;
  feed_client(ws, client_frame(WsOpcode::text, "ok"));
  feed_client(ws, client_frame(WsOpcode::text, "bad \xc0\xaf"));
  feed_client(ws, client_frame(WsOpcode::text, "ignored after the failure"));
  EXPECT_EQ(close_of(client_frames(ws.take_to_client()).at(0)).first, 1007);
  const auto messages = agent_messages(ws.take_to_agent());
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0], BridgeMessage::text("ok"));
  EXPECT_EQ(messages[1].type, BridgeMessage::Type::close);
  EXPECT_EQ(messages[1].close_code, 1007);
}

TEST(PublicWebSocket, TruncatedUtf8AtTheEndOfFragmentsIs1007) {
  PublicWebSocket ws;
  feed_client(ws, client_frame(WsOpcode::text, "caf", false));
  feed_client(ws, client_frame(WsOpcode::continuation, "\xc3", true));
  EXPECT_EQ(ws.close_code_to_client(), 1007);
}

TEST(PublicWebSocket, UnmaskedClientFrameIs1002) {
  PublicWebSocket ws;
  std::string unmasked;
  encode_ws_frame(unmasked, WsOpcode::text, span_of("hi"));
  feed_client(ws, unmasked);
  EXPECT_EQ(close_of(client_frames(ws.take_to_client()).at(0)).first, 1002);
  EXPECT_EQ(ws.close_code_to_agent(), 1002);
  const auto messages = agent_messages(ws.take_to_agent());
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].type, BridgeMessage::Type::close);
  EXPECT_TRUE(ws.finished());
}

TEST(PublicWebSocket, ContinuationWithoutStartIs1002) {
  PublicWebSocket ws;
  feed_client(ws, client_frame(WsOpcode::continuation, "x"));
  EXPECT_EQ(ws.close_code_to_client(), 1002);
  EXPECT_EQ(ws.close_code_to_agent(), 1002);
}

TEST(PublicWebSocket, NewMessageInsideFragmentedOneIs1002) {
  PublicWebSocket ws;
  feed_client(ws, client_frame(WsOpcode::text, "a", false));
  feed_client(ws, client_frame(WsOpcode::binary, "b"));
  EXPECT_EQ(ws.close_code_to_client(), 1002);
  EXPECT_TRUE(agent_messages(ws.take_to_agent()).at(0).type == BridgeMessage::Type::close);
}

TEST(PublicWebSocket, ReservedBitsAreAProtocolError) {
  PublicWebSocket ws;
  std::string frame = client_frame(WsOpcode::text, "x");
  frame[0] = static_cast<char>(frame[0] | 0x40);  // RSV1 without permessage-deflate
  feed_client(ws, frame);
  EXPECT_EQ(ws.close_code_to_client(), 1002);
}

// ---- Control frames ------------------------------------------------------------------------------

TEST(PublicWebSocket, PingGetsPong) {
  PublicWebSocket ws;
  feed_client(ws, client_frame(WsOpcode::ping, "are you there"));
  feed_client(ws, client_frame(WsOpcode::pong, "unsolicited"));
  const auto frames = client_frames(ws.take_to_client());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, WsOpcode::pong);
  EXPECT_EQ(payload_string(frames[0]), "are you there");
  EXPECT_TRUE(ws.take_to_agent().empty());  // pings are not forwarded (§4.8.2)
}

TEST(PublicWebSocket, SendPing) {
  PublicWebSocket ws;
  ws.send_ping(span_of("keepalive"));
  ws.send_ping(span_of(std::string(200, 'p')));  // cut to 125
  const auto frames = client_frames(ws.take_to_client());
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].opcode, WsOpcode::ping);
  EXPECT_EQ(payload_string(frames[0]), "keepalive");
  EXPECT_EQ(frames[1].payload.size(), 125u);
}

// ---- Closing from the client ---------------------------------------------------------------------

TEST(PublicWebSocket, ClientClose4000WithReason) {
  PublicWebSocket ws;
  feed_client(ws, client_close(4000, "done here"));
  EXPECT_TRUE(ws.client_close_received());
  EXPECT_EQ(agent_messages(ws.take_to_agent()), std::vector{BridgeMessage::close(4000, "done here")});
  const auto frames = client_frames(ws.take_to_client());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(close_of(frames[0]).first, 4000);  // echoed
  EXPECT_TRUE(ws.client_close_sent());
  EXPECT_TRUE(ws.agent_close_sent());
  EXPECT_TRUE(ws.finished());
}

TEST(PublicWebSocket, EmptyClientCloseTellsTheAgent1000) {
  PublicWebSocket ws;
  feed_client(ws, client_frame(WsOpcode::close, ""));
  EXPECT_EQ(agent_messages(ws.take_to_agent()), std::vector{BridgeMessage::close(1000, "")});
  const auto frames = client_frames(ws.take_to_client());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, WsOpcode::close);
  EXPECT_TRUE(frames[0].payload.empty());  // 1005 cannot be sent: the echo is empty too
  EXPECT_EQ(ws.close_code_to_client(), 1005);
  EXPECT_EQ(ws.close_code_to_agent(), 1000);
  EXPECT_TRUE(ws.finished());
}

TEST(PublicWebSocket, InvalidClientCloseCodesAre1002) {
  for (const std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
    PublicWebSocket ws;
    feed_client(ws, client_close(code));
    EXPECT_EQ(ws.close_code_to_client(), 1002) << code;
    EXPECT_EQ(agent_messages(ws.take_to_agent()), std::vector{BridgeMessage::close(1002, "invalid close code")})
        << code;
    EXPECT_FALSE(ws.client_close_received());
  }
  for (const std::uint16_t code : {1000, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4999}) {
    PublicWebSocket ws;
    feed_client(ws, client_close(code));
    EXPECT_EQ(ws.close_code_to_client(), code);
    EXPECT_EQ(ws.close_code_to_agent(), code);
  }
}

TEST(PublicWebSocket, OneByteClosePayloadIs1002) {
  PublicWebSocket ws;
  feed_client(ws, client_frame(WsOpcode::close, "x"));
  EXPECT_EQ(ws.close_code_to_client(), 1002);
}

TEST(PublicWebSocket, InvalidUtf8CloseReasonIs1007) {
  PublicWebSocket ws;
  feed_client(ws, client_close(1000, "\xff"));
  EXPECT_EQ(ws.close_code_to_client(), 1007);
  EXPECT_EQ(ws.close_code_to_agent(), 1007);
}

TEST(PublicWebSocket, NothingIsReadAfterTheClientsClose) {
  PublicWebSocket ws;
  feed_client(ws, client_close(1000) + client_frame(WsOpcode::text, "late") + client_frame(WsOpcode::ping, ""));
  const auto messages = agent_messages(ws.take_to_agent());
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].type, BridgeMessage::Type::close);
  EXPECT_EQ(client_frames(ws.take_to_client()).size(), 1u);  // the echo, no pong
  // The agent's messages in flight go nowhere, and its close is not answered again.
  feed_agent(ws, agent_text("too late") + agent_close(1000));
  EXPECT_TRUE(ws.take_to_client().empty());
  EXPECT_TRUE(ws.take_to_agent().empty());
  EXPECT_TRUE(ws.agent_ended());
}

TEST(PublicWebSocket, ClientGoneTellsTheAgent1001) {
  PublicWebSocket ws;
  feed_agent(ws, agent_text("unsent"));
  ws.client_gone();
  EXPECT_EQ(agent_messages(ws.take_to_agent()), std::vector{BridgeMessage::close(1001, "")});
  EXPECT_TRUE(ws.take_to_client().empty());  // dropped: nobody can write it
  EXPECT_TRUE(ws.finished());
  feed_client(ws, client_frame(WsOpcode::text, "ignored"));
  EXPECT_TRUE(ws.take_to_agent().empty());
}

TEST(PublicWebSocket, ClientGoneWithACode) {
  PublicWebSocket ws;
  ws.client_gone(4001);
  EXPECT_EQ(ws.close_code_to_agent(), 4001);
  PublicWebSocket reserved;
  reserved.client_gone(1006);
  EXPECT_EQ(reserved.close_code_to_agent(), 1000);  // §4.8.2: 1005/1006/1015 become 1000
}

// ---- Closing from the agent ----------------------------------------------------------------------

TEST(PublicWebSocket, AgentClose1001ClosesTheClient) {
  PublicWebSocket ws;
  feed_agent(ws, agent_text("last words") + agent_close(1001, "shutting down") + agent_text("after close"));
  EXPECT_TRUE(ws.agent_ended());
  const auto frames = client_frames(ws.take_to_client());
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(payload_string(frames[0]), "last words");
  EXPECT_EQ(close_of(frames[1]), (std::pair<std::uint16_t, std::string>{1001, "shutting down"}));
  EXPECT_FALSE(ws.finished());  // waiting for the client's echo

  // Data the client sent before it saw our CLOSE goes nowhere; its echo completes the handshake.
  feed_client(ws, client_frame(WsOpcode::text, "in flight") + client_close(1001));
  EXPECT_TRUE(ws.take_to_client().empty());
  EXPECT_TRUE(ws.take_to_agent().empty());  // the agent has closed: no close message back
  EXPECT_FALSE(ws.agent_close_sent());
  EXPECT_TRUE(ws.finished());
}

TEST(PublicWebSocket, AgentCloseCodesThatCannotBeSentBecome1000) {
  for (const int code : {0, 999, 1005, 1006, 1015, 2000, 5000}) {
    PublicWebSocket ws;
    feed_agent(ws, agent_close(code, "r"));
    EXPECT_EQ(close_of(client_frames(ws.take_to_client()).at(0)).first, 1000) << code;
  }
  PublicWebSocket ws;
  feed_agent(ws, agent_close(4321));
  EXPECT_EQ(ws.close_code_to_client(), 4321);
}

TEST(PublicWebSocket, AgentCloseReasonIsCutTo123Bytes) {
  PublicWebSocket ws;
  feed_agent(ws, agent_close(1000, std::string(300, 'r')));
  EXPECT_EQ(close_of(client_frames(ws.take_to_client()).at(0)).second.size(), 123u);
}

TEST(PublicWebSocket, AgentEndStreamIs1000) {
  PublicWebSocket ws;
  ws.agent_finished();
  EXPECT_EQ(close_of(client_frames(ws.take_to_client()).at(0)).first, 1000);
  EXPECT_TRUE(ws.agent_ended());
  EXPECT_FALSE(ws.agent_close_sent());
  ws.client_gone();  // the echo never came; the edge gave up
  EXPECT_TRUE(ws.finished());
  EXPECT_TRUE(ws.take_to_agent().empty());
}

TEST(PublicWebSocket, AgentEndStreamUsesTheBridgesCloseFrameCode) {
  PublicWebSocket ws;
  ws.agent_finished(4002);
  EXPECT_EQ(ws.close_code_to_client(), 4002);
}

TEST(PublicWebSocket, AgentCloseMessageWinsOverLaterEvents) {
  PublicWebSocket ws;
  feed_agent(ws, agent_close(4003));
  ws.agent_finished(4004);
  ws.agent_failed();
  EXPECT_EQ(ws.close_code_to_client(), 4003);
  EXPECT_EQ(client_frames(ws.take_to_client()).size(), 1u);
}

TEST(PublicWebSocket, AgentResetIs1011) {
  PublicWebSocket ws;
  ws.agent_failed();
  EXPECT_EQ(close_of(client_frames(ws.take_to_client()).at(0)).first, 1011);
  feed_client(ws, client_close(1011));
  EXPECT_TRUE(ws.finished());
}

TEST(PublicWebSocket, TooBigAgentMessageIs1009BothWays) {
  PublicWebSocket ws({.max_message_bytes = 1000});
  feed_agent(ws, agent_binary(pattern(1000)));
  ASSERT_EQ(client_frames(ws.take_to_client()).size(), 1u);
  feed_agent(ws, agent_binary(pattern(1001)) + agent_text("never"));
  const auto frames = client_frames(ws.take_to_client());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(close_of(frames[0]).first, 1009);
  EXPECT_EQ(agent_messages(ws.take_to_agent()), std::vector{BridgeMessage::close(1009, "message too big")});
}

TEST(PublicWebSocket, TooLongAgentJsonIs1009AsSoonAsItsLengthArrives) {
  PublicWebSocket ws({.max_message_bytes = 1000, .max_agent_json_bytes = 2000});
  feed_agent(ws, std::string("\x00\x00\x07\xd1", 4));  // 2001
  EXPECT_EQ(ws.close_code_to_client(), 1009);
  EXPECT_EQ(ws.close_code_to_agent(), 1009);
}

TEST(PublicWebSocket, MalformedAgentMessagesAreSkipped) {
  PublicWebSocket ws;
  std::string bad;
  for (const std::string_view json : {"not json", R"({"type":"nope"})", R"({"type":"binary","data":"@@"})"}) {
    const auto n = static_cast<std::uint32_t>(json.size());
    bad += std::string{static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                       static_cast<char>(n)};
    bad += json;
  }
  feed_agent(ws, bad + agent_text("fine"));
  EXPECT_EQ(ws.agent_messages_skipped(), 3u);
  const auto frames = client_frames(ws.take_to_client());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(payload_string(frames[0]), "fine");
}

// ---- Chunking does not matter --------------------------------------------------------------------

TEST(PublicWebSocket, BytesFedOneAtATimeGiveTheSameResult) {
  const std::string from_client = client_frame(WsOpcode::text, "caf\xc3", false) + client_frame(WsOpcode::ping, "p") +
                                  client_frame(WsOpcode::continuation, "\xa9!", true) +
                                  client_frame(WsOpcode::binary, pattern(70000)) + client_close(4000, "bye");
  const std::string from_agent = agent_text("one") + agent_binary(pattern(300)) + agent_close(1001, "later");

  PublicWebSocket whole;
  feed_agent(whole, from_agent);
  feed_client(whole, from_client);

  PublicWebSocket bytewise;
  for (const char c : from_agent) feed_agent(bytewise, std::string_view(&c, 1));
  for (const char c : from_client) feed_client(bytewise, std::string_view(&c, 1));

  EXPECT_EQ(whole.take_to_client(), bytewise.take_to_client());
  EXPECT_EQ(whole.take_to_agent(), bytewise.take_to_agent());
  EXPECT_EQ(whole.finished(), bytewise.finished());
  EXPECT_EQ(whole.close_code_to_client(), bytewise.close_code_to_client());
  EXPECT_EQ(whole.close_code_to_agent(), bytewise.close_code_to_agent());

  // And a client-first order, with every message accounted for.
  PublicWebSocket a;
  PublicWebSocket b;
  feed_client(a, from_client);
  for (const char c : from_client) feed_client(b, std::string_view(&c, 1));
  const std::string to_agent = a.take_to_agent();
  EXPECT_EQ(to_agent, b.take_to_agent());
  const auto messages = agent_messages(to_agent);
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0], BridgeMessage::text("caf\xc3\xa9!"));
  EXPECT_EQ(messages[1], BridgeMessage::binary(pattern(70000)));
  EXPECT_EQ(messages[2], BridgeMessage::close(4000, "bye"));
  EXPECT_EQ(a.take_to_client(), b.take_to_client());
}

TEST(PublicWebSocket, BufferedBytesCountsWhatIsHeld) {
  PublicWebSocket ws;
  const std::string frame = client_frame(WsOpcode::binary, pattern(1000));
  feed_client(ws, std::string_view(frame).substr(0, 500));
  EXPECT_EQ(ws.buffered_bytes(), 500u);
  feed_client(ws, std::string_view(frame).substr(500));
  EXPECT_EQ(ws.buffered_bytes(), ws.pending_to_agent());
  EXPECT_GT(ws.pending_to_agent(), 1000u);
  ws.take_to_agent();
  EXPECT_EQ(ws.buffered_bytes(), 0u);
}
