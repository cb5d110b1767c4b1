#include "agent/ws_bridge_channel.h"

#include <boost/asio/error.hpp>

namespace inkwire::agent {

namespace asio = boost::asio;
using proto::WsOpcode;

namespace {
constexpr std::size_t kReadChunk = 64 * 1024;
}

WsBridgeChannel::WsBridgeChannel(std::shared_ptr<TunnelStream> bridge, RandomSource& random,
                                 std::size_t max_message_bytes)
    : bridge_(std::move(bridge)),
      random_(random),
      // A frame may carry a whole message; base64 makes a binary one about 4/3 larger.
      frames_({.max_frame_payload = max_message_bytes * 4 / 3 + 1024}),
      messages_({.max_message_bytes = max_message_bytes * 4 / 3 + 1024}),
      buffer_(std::make_unique_for_overwrite<std::uint8_t[]>(kReadChunk)) {}

void append_masked_ws_frame(std::string& out, RandomSource& random, WsOpcode op, std::string_view payload) {
  std::array<std::uint8_t, 4> key{};
  random.fill(key);
  out.reserve(out.size() + payload.size() + proto::kWsMaxHeaderSize);
  encode_ws_frame(out, op, std::span(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()), true,
                  key);
}

std::string masked_ws_frame(RandomSource& random, WsOpcode op, std::string_view payload) {
  std::string out;
  append_masked_ws_frame(out, random, op, payload);
  return out;
}

asio::awaitable<bool> WsBridgeChannel::write_frame(WsOpcode op, std::string_view payload) {
  // Per call, not a member: a PONG from receive() may be written while a send() waits for its turn.
  const std::string out = masked_ws_frame(random_, op, payload);
  const auto ec = co_await bridge_->write_all(out);
  co_return !ec;
}

asio::awaitable<std::optional<proto::BridgeMessage>> WsBridgeChannel::receive() {
  while (ready_.empty() && !ended_) {
    auto [ec, n] = co_await bridge_->read_some(std::span(buffer_.get(), kReadChunk));
    if (ec) {
      ended_ = true;
      end_code_ = ec == asio::error::eof ? proto::ws_close::normal : proto::ws_close::going_away;
      break;
    }
    std::span<const std::uint8_t> chunk(buffer_.get(), n);
    while (!chunk.empty() && !ended_) {
      chunk = chunk.subspan(frames_.feed(chunk));
      for (;;) {
        auto frame = frames_.next_view();
        if (!frame) {
          ended_ = true;
          end_code_ = proto::ws_close::protocol_error;
          end_reason_ = proto::to_string(frame.error());
          break;
        }
        if (!*frame) break;
        const auto& f = **frame;
        if (f.opcode == WsOpcode::ping) {
          // (The pong waits for the write turn; a frame is never split by another writer.)
          const std::string payload(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
          (void)co_await write_frame(WsOpcode::pong, payload);
          continue;
        }
        if (f.opcode == WsOpcode::close) {
          auto close = proto::decode_close_payload(f.payload);
          ended_ = true;
          end_code_ = close && close->code != proto::ws_close::no_status ? close->code : proto::ws_close::normal;
          end_reason_ = close ? close->reason : std::string();
          break;
        }
        // §4.8.1: continuations (and PONGs) are ignored on the ws bridge.
        if (f.opcode != WsOpcode::binary && f.opcode != WsOpcode::text) continue;
        std::span<const std::uint8_t> payload = f.payload;
        while (!payload.empty() && !ended_) {
          payload = payload.subspan(messages_.feed(payload));
          for (;;) {
            auto item = messages_.next();
            if (!item) {
              ended_ = true;
              end_code_ = proto::ws_close::too_big;
              end_reason_ = "message too big";
              break;
            }
            if (!*item) break;
            // Skipped messages (malformed JSON, unknown type) are dropped, as the SDKs do (§4.8.2).
            if (auto* message = std::get_if<proto::BridgeMessage>(&**item)) ready_.push_back(std::move(*message));
          }
        }
      }
    }
  }
  if (ready_.empty()) co_return std::nullopt;
  proto::BridgeMessage next = std::move(ready_.front());
  ready_.pop_front();
  if (next.type == proto::BridgeMessage::Type::close) {
    end_code_ = static_cast<std::uint16_t>(next.close_code);
    end_reason_ = next.close_reason;
  }
  co_return next;
}

asio::awaitable<bool> WsBridgeChannel::send(const proto::BridgeMessage& message) {
  std::string inner;
  proto::encode_bridge_message(inner, message);
  co_return co_await write_frame(WsOpcode::binary, inner);
}

asio::awaitable<bool> WsBridgeChannel::send_text(std::string_view text) {
  std::string inner;
  proto::encode_bridge_text(inner, text);
  co_return co_await write_frame(WsOpcode::binary, inner);
}

asio::awaitable<bool> WsBridgeChannel::send_binary(std::string_view bytes) {
  std::string inner;
  proto::encode_bridge_binary(inner, std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  co_return co_await write_frame(WsOpcode::binary, inner);
}

asio::awaitable<void> WsBridgeChannel::close(std::uint16_t code, std::string_view reason) {
  if (close_sent_) co_return;
  close_sent_ = true;
  std::string inner;
  proto::encode_bridge_close(inner, code, reason);
  if (co_await write_frame(WsOpcode::binary, inner)) {
    const std::string payload = proto::encode_close_payload(code, reason);
    (void)co_await write_frame(WsOpcode::close, payload);
  }
  bridge_->finish_sending();
}

}  // namespace inkwire::agent
