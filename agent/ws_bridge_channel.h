#pragma once
// The agent's end of a ws bridge (PROTOCOL.md §4.8.1, §4.8.2) as messages: RFC 6455 frames on the
// CONNECT stream (ours masked, the relay's either way; continuations ignored; PING answered with
// PONG), and inside their payloads the length-prefixed JSON messages. Used by the WebSocket
// forwarder (URL mode) and by in-process WebSocket handlers.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "agent/tunnel_stream.h"
#include "common/random_source.h"
#include "proto/bridge_message.h"
#include "proto/ws_frame.h"

namespace inkwire::agent {

// Appends one masked client frame (FIN = 1) with a fresh random key: every frame the agent sends,
// to the relay's bridges and to WebSocket upstreams, is one of these (RFC 6455 §5.3).
void append_masked_ws_frame(std::string& out, RandomSource& random, proto::WsOpcode op, std::string_view payload);
// The same as a new string, for one-off frames (PONG, CLOSE).
std::string masked_ws_frame(RandomSource& random, proto::WsOpcode op, std::string_view payload);

class WsBridgeChannel {
 public:
  WsBridgeChannel(std::shared_ptr<TunnelStream> bridge, RandomSource& random,
                  std::size_t max_message_bytes = 16 * 1024 * 1024);

  // The next text or binary message, or the peer's close message; nullopt when the bridge ended
  // without one (END_STREAM: 1000, a CLOSE frame: its code, a reset: 1001, a framing error: 1002,
  // a message over the limit: 1009 — see end_code()).
  boost::asio::awaitable<std::optional<proto::BridgeMessage>> receive();
  // One message in one masked BINARY frame. False when the bridge is gone.
  boost::asio::awaitable<bool> send(const proto::BridgeMessage& message);
  boost::asio::awaitable<bool> send_text(std::string_view text);
  boost::asio::awaitable<bool> send_binary(std::string_view bytes);
  // Ends our side once: the close message, a CLOSE frame with the code, then END_STREAM.
  boost::asio::awaitable<void> close(std::uint16_t code, std::string_view reason);
  bool closed_by_us() const { return close_sent_; }
  std::uint16_t end_code() const { return end_code_; }
  std::string_view end_reason() const { return end_reason_; }
  TunnelStream& stream() { return *bridge_; }

 private:
  boost::asio::awaitable<bool> write_frame(proto::WsOpcode op, std::string_view payload);

  std::shared_ptr<TunnelStream> bridge_;
  RandomSource& random_;
  proto::WsFrameDecoder frames_;
  proto::BridgeMessageDecoder messages_;
  std::deque<proto::BridgeMessage> ready_;
  std::unique_ptr<std::uint8_t[]> buffer_;
  bool ended_ = false;
  bool close_sent_ = false;
  std::uint16_t end_code_ = proto::ws_close::normal;
  std::string end_reason_;
};

}  // namespace inkwire::agent
