#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "proto/bridge_message.h"
#include "proto/ws_frame.h"

// The edge's WebSocket toward a third party, bridged to an agent (PROTOCOL.md §4.8). The edge is
// the RFC 6455 server: the client's frames are masked, ours are not. The agent's side is the
// §4.8.2 message stream (4-byte length + JSON), as Exchange::to_agent()/from_agent() carry it; the
// relay owns the bridge's outer framing.
//
// Sans-IO: the edge feeds bytes and events in and writes out what take_to_client() and
// take_to_agent() return. Every complete client message becomes one bridge message (the bridge
// cannot express fragments); every agent message becomes one unfragmented frame.
//
// Closing:
//   * client CLOSE        → echoed, then the agent gets a close message with its code (1005, i.e.
//                           no code, becomes 1000);
//   * client protocol error (unmasked frame, bad fragmentation, bad close code…) → CLOSE 1002 / 1007
//                           / 1009 to the client and the same code to the agent;
//   * client gone         → the agent gets close 1001 (or the given code);
//   * agent close message → CLOSE with its code (made sendable) and reason; nothing more goes out;
//   * agent END_STREAM    → CLOSE 1000 (or the bridge's CLOSE-frame code); RST → CLOSE 1011.
// After sending the agent a close message the edge flushes take_to_agent() and ends the bridge
// stream (END_STREAM). finished() says when both sides are done and the TCP connection may close
// once the last bytes are written; while it waits for a client's CLOSE echo, the edge bounds the
// wait with its own timer and
// then calls client_gone().
namespace inkwire::proto {

struct PublicWebSocketLimits {
  // Largest message, reassembled, in either direction; above it the client is closed with 1009
  // and the agent told 1009 (PROTOCOL.md §4.8.2's recommendation).
  std::size_t max_message_bytes = 16 * 1024 * 1024;
  // Largest single client frame payload (1009 above it), which bounds the frame decoder's buffer.
  std::size_t max_frame_payload = 16 * 1024 * 1024;
  // Largest JSON of one agent bridge message; 0 means 3 * max_message_bytes + 1 KiB. The JSON is
  // bigger than the message it carries: base64 is 4/3, and a writer that escapes non-ASCII as \uXXXX
  // (Python's json.dumps does by default) makes text up to 3 times its UTF-8 size. Only text made
  // mostly of escaped control characters (6 bytes each) can hit this before max_message_bytes.
  std::size_t max_agent_json_bytes = 0;
};

class PublicWebSocket {
 public:
  explicit PublicWebSocket(PublicWebSocketLimits limits = {});

  // ---- Input -------------------------------------------------------------------------------------

  // Bytes read from the third party. Ignored once the client side is closed (its CLOSE arrived,
  // it failed, or it is gone).
  void feed_from_client(std::span<const std::uint8_t> bytes);
  // §4.8.2 message bytes from the agent. Ignored once the agent's side has ended.
  void feed_from_agent(std::span<const std::uint8_t> bytes);
  // The bridge ended (END_STREAM) without a close message: the client is closed with the code of
  // the agent's CLOSE frame if the relay saw one (Exchange::agent_close_code()), else 1000.
  void agent_finished(std::optional<std::uint16_t> close_frame_code = std::nullopt);
  // The bridge was reset: the client is closed with 1011.
  void agent_failed();
  // The client's connection went away without a CLOSE (or the edge gives up on it): the agent gets
  // a close message with `code` (made sendable), 1001 when none. Pending client output is dropped.
  void client_gone(std::optional<std::uint16_t> code = std::nullopt);
  // A keepalive PING to the client (payload cut to 125 bytes); nothing once a CLOSE was sent.
  void send_ping(std::span<const std::uint8_t> payload);

  // ---- Output ------------------------------------------------------------------------------------

  std::string take_to_client();
  std::string take_to_agent();
  std::size_t pending_to_client() const { return to_client_.size(); }
  std::size_t pending_to_agent() const { return to_agent_.size(); }
  // Everything held: output not yet taken, partial frames and messages. For backpressure: stop
  // reading the client while pending_to_agent() is high, the agent while pending_to_client() is.
  std::size_t buffered_bytes() const;

  // ---- State -------------------------------------------------------------------------------------

  bool client_close_sent() const { return close_to_client_.has_value(); }
  bool client_close_received() const { return client_close_received_; }
  bool client_gone() const { return client_gone_; }
  bool agent_close_sent() const { return close_to_agent_.has_value(); }
  // The agent's side ended: its close message, END_STREAM or RST.
  bool agent_ended() const { return agent_ended_; }
  // Both directions are closed: nothing more will be produced for either side. The edge flushes
  // what is pending, ends the bridge and closes the TCP connection.
  bool finished() const;

  // The code of the CLOSE frame sent to the client (1005 when it echoed an empty CLOSE).
  std::optional<std::uint16_t> close_code_to_client() const { return close_to_client_; }
  // The code of the close message sent to the agent.
  std::optional<std::uint16_t> close_code_to_agent() const { return close_to_agent_; }
  // Agent messages skipped as §4.8.2 says (malformed JSON, unknown type, invalid UTF-8 text), for
  // counting.
  std::uint64_t agent_messages_skipped() const { return agent_skipped_; }

 private:
  void drain_client_frames();
  void handle_client_frame(const WsFrameView& frame);
  void handle_client_data(WsOpcode opcode, bool fin, std::span<const std::uint8_t> payload);
  void handle_client_close(std::span<const std::uint8_t> payload);
  void deliver_client_message(WsOpcode opcode, std::string_view message);
  void drain_agent_messages();
  void handle_agent_message(const BridgeMessage& message);
  // The agent sent more than the limits allow: 1009 both ways, and nothing more is read from it.
  void fail_agent();

  // Sends the client a CLOSE (once); a code of 1005 sends an empty payload.
  void close_client(std::uint16_t code, std::string_view reason);
  // The client broke the protocol: CLOSE with `code`, stop reading it, tell the agent.
  void fail_client(std::uint16_t code, std::string_view reason);
  // Sends the agent a close message (once, and only while its side is open).
  void close_agent(std::uint16_t code, std::string_view reason);
  bool client_readable() const { return !client_close_received_ && !client_failed_ && !client_gone_; }
  bool client_writable() const { return !close_to_client_ && !client_gone_; }
  bool agent_writable() const { return !close_to_agent_ && !agent_ended_; }
  bool agent_readable() const { return !agent_ended_ && !agent_failed_; }
  void stop_reading_client();
  void stop_reading_agent();

  PublicWebSocketLimits limits_;
  WsFrameDecoder client_decoder_;
  BridgeMessageDecoder agent_decoder_;
  std::string to_client_;
  std::string to_agent_;

  // A fragmented client message being reassembled.
  std::optional<WsOpcode> fragment_opcode_;
  std::string fragments_;

  std::optional<std::uint16_t> close_to_client_;
  std::optional<std::uint16_t> close_to_agent_;
  bool client_close_received_ = false;
  bool client_failed_ = false;
  bool client_gone_ = false;
  bool agent_ended_ = false;
  bool agent_failed_ = false;
  std::uint64_t agent_skipped_ = 0;
};

// Whether a close code may be sent in a CLOSE frame (RFC 6455 §7.4, IANA registry): 1000-1003,
// 1007-1014 and 3000-4999. 1004 is reserved, 1005/1006/1015 are only ever reported locally, and
// 1016-2999 belong to future standards. The same set is what a received CLOSE may carry.
bool is_sendable_close_code(std::uint16_t code);

}  // namespace inkwire::proto
