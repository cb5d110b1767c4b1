#include "proto/public_websocket.h"

#include "proto/header_rules.h"

#include <algorithm>
#include <variant>

namespace inkwire::proto {
namespace {

// A bridge message's length prefix is 32 bits, and encode_bridge_text may escape every byte as
// \u00XX (6 bytes): capping messages at 512 MiB keeps any JSON the edge writes below 4 GiB.
constexpr std::size_t kMaxMessageCap = std::size_t{512} * 1024 * 1024;
// Above this, a reassembly buffer is given back after its message instead of being kept for the
// next one: one large message should not pin its size in memory for the life of the connection.
constexpr std::size_t kKeptFragmentCapacity = 64 * 1024;
// RFC 6455 §7.4.1 "invalid frame payload data" (ws_close has only the codes the relay sends).
constexpr std::uint16_t kInvalidPayload = 1007;

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string_view chars_of(std::span<const std::uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

PublicWebSocketLimits normalised(PublicWebSocketLimits limits) {
  limits.max_message_bytes = std::min(limits.max_message_bytes, kMaxMessageCap);
  if (limits.max_agent_json_bytes == 0) limits.max_agent_json_bytes = 3 * limits.max_message_bytes + 1024;
  return limits;
}

// What may go into a CLOSE frame or a close message. PROTOCOL.md §4.8.2 asks for 1005, 1006 and
// 1015 to become 1000 toward the agent; the same holds for any code that cannot be sent on the
// wire (below 1000, 1004, 1016-2999, 5000 and up): a browser that receives one fails the
// connection with 1002 instead of reporting the peer's close, so "normal closure" is the most
// faithful thing left to say.
std::uint16_t sendable_or_normal(std::uint16_t code) {
  return is_sendable_close_code(code) ? code : ws_close::normal;
}

}  // namespace

bool is_sendable_close_code(std::uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

PublicWebSocket::PublicWebSocket(PublicWebSocketLimits limits)
    : limits_(normalised(limits)),
      client_decoder_({.max_frame_payload = limits_.max_frame_payload, .mask_policy = WsMaskPolicy::require_masked}),
      agent_decoder_({.max_message_bytes = limits_.max_agent_json_bytes}) {}

// ---- Client → agent ------------------------------------------------------------------------------

void PublicWebSocket::feed_from_client(std::span<const std::uint8_t> bytes) {
  // The decoder may take only part of the input while a frame is pending; draining makes room, so
  // this loop always progresses.
  while (!bytes.empty() && client_readable()) {
    bytes = bytes.subspan(client_decoder_.feed(bytes));
    drain_client_frames();
  }
}

void PublicWebSocket::drain_client_frames() {
  while (client_readable()) {
    auto frame = client_decoder_.next_view();
    if (!frame) {
      fail_client(ws_close_code(frame.error()), to_string(frame.error()));
      return;
    }
    if (!*frame) return;
    handle_client_frame(**frame);
  }
}

void PublicWebSocket::handle_client_frame(const WsFrameView& frame) {
  switch (frame.opcode) {
    case WsOpcode::text:
    case WsOpcode::binary:
    case WsOpcode::continuation:
      handle_client_data(frame.opcode, frame.fin, frame.payload);
      return;
    case WsOpcode::ping:
      // RFC 6455 §5.5.2; not after our CLOSE (§5.5.1: nothing follows it).
      if (client_writable()) encode_ws_frame(to_client_, WsOpcode::pong, frame.payload);
      return;
    case WsOpcode::pong:
      return;  // unsolicited or an answer to send_ping(): either way nothing to do
    case WsOpcode::close:
      handle_client_close(frame.payload);
      return;
  }
}

void PublicWebSocket::handle_client_data(WsOpcode opcode, bool fin, std::span<const std::uint8_t> payload) {
  // RFC 6455 §5.4: a continuation needs a message to continue, and a new message may not start
  // until the fragmented one has ended (control frames may come in between).
  if (opcode == WsOpcode::continuation) {
    if (!fragment_opcode_) return fail_client(ws_close::protocol_error, "continuation without a message");
  } else if (fragment_opcode_) {
    return fail_client(ws_close::protocol_error, "new message inside a fragmented one");
  }
  const std::size_t so_far = fragment_opcode_ ? fragments_.size() : 0;
  if (payload.size() > limits_.max_message_bytes - so_far) return fail_client(ws_close::too_big, "message too big");

  // The common case, a message in one frame, goes from the decoder's buffer straight to the agent.
  if (opcode != WsOpcode::continuation && fin) return deliver_client_message(opcode, chars_of(payload));

  if (opcode != WsOpcode::continuation) fragment_opcode_ = opcode;
  fragments_.append(chars_of(payload));
  if (!fin) return;
  const WsOpcode message_opcode = *fragment_opcode_;
  fragment_opcode_.reset();
  deliver_client_message(message_opcode, fragments_);
  if (fragments_.capacity() > kKeptFragmentCapacity)
    std::string().swap(fragments_);
  else
    fragments_.clear();
}

void PublicWebSocket::deliver_client_message(WsOpcode opcode, std::string_view message) {
  // RFC 6455 §8.1: invalid UTF-8 in a text message fails the connection (1007). It is checked on
  // the whole message, so a sequence split across fragments is fine.
  if (opcode == WsOpcode::text && !is_valid_utf8(message))
    return fail_client(kInvalidPayload, "invalid utf-8 in text message");
  if (!agent_writable()) return;  // the agent has closed: nothing more goes to it
  if (opcode == WsOpcode::text)
    encode_bridge_text(to_agent_, message);
  else
    encode_bridge_binary(to_agent_, bytes_of(message));
}

void PublicWebSocket::handle_client_close(std::span<const std::uint8_t> payload) {
  const auto close = decode_close_payload(payload);
  if (!close) return fail_client(ws_close::protocol_error, "malformed close frame");
  // RFC 6455 §7.4: a code that may not be sent is a protocol error when received, 1005 written out
  // included. An empty payload (reported as 1005, "no status") is legitimate.
  if (!payload.empty() && !is_sendable_close_code(close->code))
    return fail_client(ws_close::protocol_error, "invalid close code");
  if (!is_valid_utf8(close->reason)) return fail_client(kInvalidPayload, "invalid utf-8 in close reason");

  client_close_received_ = true;
  // Echo the code (RFC 6455 §5.5.1), or nothing after an empty CLOSE; when our CLOSE went first,
  // this one completes the handshake and close_client() does nothing.
  close_client(close->code, {});
  close_agent(close->code, close->reason);
  stop_reading_client();
}

// ---- Agent → client ------------------------------------------------------------------------------

void PublicWebSocket::feed_from_agent(std::span<const std::uint8_t> bytes) {
  while (!bytes.empty() && agent_readable()) {
    bytes = bytes.subspan(agent_decoder_.feed(bytes));
    drain_agent_messages();
  }
}

void PublicWebSocket::drain_agent_messages() {
  while (agent_readable()) {
    auto item = agent_decoder_.next();
    if (!item) return fail_agent();
    if (!*item) return;
    if (const auto* message = std::get_if<BridgeMessage>(&**item))
      handle_agent_message(*message);
    else
      ++agent_skipped_;  // PROTOCOL.md §4.8.2: malformed JSON is skipped, unknown types ignored
  }
}

void PublicWebSocket::handle_agent_message(const BridgeMessage& message) {
  switch (message.type) {
    case BridgeMessage::Type::text:
    case BridgeMessage::Type::binary: {
      if (message.data.size() > limits_.max_message_bytes) return fail_agent();
      const bool text = message.type == BridgeMessage::Type::text;
      // The JSON parser accepts only valid UTF-8 and refuses lone surrogate escapes, so this
      // never fires today; it stays because a browser would fail the whole connection (1007) for
      // one bad text message, and skipping it is what the agents do with bad messages.
      if (text && !is_valid_utf8(message.data)) {
        ++agent_skipped_;
        return;
      }
      if (client_writable())
        encode_ws_frame(to_client_, text ? WsOpcode::text : WsOpcode::binary, bytes_of(message.data));
      return;
    }
    case BridgeMessage::Type::close:
      agent_ended_ = true;
      close_client(sendable_or_normal(static_cast<std::uint16_t>(message.close_code)), message.close_reason);
      stop_reading_agent();
      return;
  }
}

void PublicWebSocket::agent_finished(std::optional<std::uint16_t> close_frame_code) {
  if (agent_ended_) return;
  agent_ended_ = true;
  // §4.8.2: the first close code seen wins; a close message would have ended the agent already.
  close_client(close_frame_code ? sendable_or_normal(*close_frame_code) : ws_close::normal, {});
  stop_reading_agent();
}

void PublicWebSocket::agent_failed() {
  if (agent_ended_) return;
  agent_ended_ = true;
  close_client(ws_close::internal_error, {});
  stop_reading_agent();
}

void PublicWebSocket::fail_agent() {
  // The agent sent a message above the limit (or a length prefix announcing one): close both sides
  // with 1009 and read nothing more from it.
  agent_failed_ = true;
  close_client(ws_close::too_big, "message too big");
  close_agent(ws_close::too_big, "message too big");
  stop_reading_agent();
}

// ---- Edge events ---------------------------------------------------------------------------------

void PublicWebSocket::client_gone(std::optional<std::uint16_t> code) {
  if (client_gone_) return;
  client_gone_ = true;
  close_agent(code.value_or(ws_close::going_away), {});
  std::string().swap(to_client_);  // nobody will write it
  stop_reading_client();
}

void PublicWebSocket::send_ping(std::span<const std::uint8_t> payload) {
  if (!client_writable()) return;
  encode_ws_frame(to_client_, WsOpcode::ping, payload.first(std::min(payload.size(), kWsMaxControlPayload)));
}

// ---- Closing -------------------------------------------------------------------------------------

void PublicWebSocket::close_client(std::uint16_t code, std::string_view reason) {
  if (!client_writable()) return;
  close_to_client_ = code;
  const std::string payload = code == ws_close::no_status ? std::string() : encode_close_payload(code, reason);
  encode_ws_frame(to_client_, WsOpcode::close, bytes_of(payload));
}

void PublicWebSocket::fail_client(std::uint16_t code, std::string_view reason) {
  // RFC 6455 §7.1.7 "fail the connection": send CLOSE if we still may, then read nothing more; the
  // edge may close the TCP connection without waiting for an echo.
  client_failed_ = true;
  close_client(code, reason);
  close_agent(code, reason);
  stop_reading_client();
}

void PublicWebSocket::close_agent(std::uint16_t code, std::string_view reason) {
  if (!agent_writable()) return;
  code = sendable_or_normal(code);
  close_to_agent_ = code;
  encode_bridge_close(to_agent_, code, reason);
}

void PublicWebSocket::stop_reading_client() {
  // Release what the decoders hold now rather than when the bridge is destroyed.
  client_decoder_ = WsFrameDecoder(client_decoder_.limits());
  fragment_opcode_.reset();
  std::string().swap(fragments_);
}

void PublicWebSocket::stop_reading_agent() {
  agent_decoder_ = BridgeMessageDecoder({.max_message_bytes = limits_.max_agent_json_bytes});
}

// ---- Queries -------------------------------------------------------------------------------------

std::string PublicWebSocket::take_to_client() {
  std::string out;
  out.swap(to_client_);
  return out;
}

std::string PublicWebSocket::take_to_agent() {
  std::string out;
  out.swap(to_agent_);
  return out;
}

std::size_t PublicWebSocket::buffered_bytes() const {
  return to_client_.size() + to_agent_.size() + client_decoder_.buffered() + fragments_.size() +
         agent_decoder_.buffered();
}

bool PublicWebSocket::finished() const {
  // The client side is done when it is gone, or when our CLOSE is out and either its CLOSE came
  // back or we failed it (no echo is awaited then). The agent side is done once it has been told,
  // or has ended by itself.
  const bool client_done = client_gone_ || (close_to_client_ && (client_close_received_ || client_failed_));
  const bool agent_done = close_to_agent_.has_value() || agent_ended_;
  return client_done && agent_done;
}

}  // namespace inkwire::proto
