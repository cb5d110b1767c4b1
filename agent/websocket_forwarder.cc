#include "agent/websocket_forwarder.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/upstream_websocket.h"
#include "agent/ws_bridge_channel.h"
#include "proto/bridge_message.h"
#include "proto/path_check.h"
#include "proto/ws_frame.h"

namespace inkwire::agent {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;
using proto::WsOpcode;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;

// Writes from two pumps onto one upstream connection, one whole frame at a time.
class OrderedWriter {
 public:
  OrderedWriter(ByteStream& stream, asio::any_io_executor executor) : stream_(stream), wake_(std::move(executor)) {}
  asio::awaitable<boost::system::error_code> write(std::string_view bytes) {
    while (busy_) {
      wake_.expires_at(SteadyClock::time_point::max());
      co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    busy_ = true;
    const auto ec = co_await stream_.write_all(bytes);
    busy_ = false;
    wake_.cancel();
    co_return ec;
  }

 private:
  ByteStream& stream_;
  asio::steady_timer wake_;
  bool busy_ = false;
};

struct Bridge {
  Bridge(asio::any_io_executor executor, std::shared_ptr<TunnelStream> b, RandomSource& random,
         std::size_t max_message_bytes, std::unique_ptr<UpstreamSocket> u)
      : bridge(b), channel(std::move(b), random, max_message_bytes), upstream(std::move(u)),
        upstream_writer(upstream->stream(), executor), done_wake(executor), linger(executor) {}
  std::shared_ptr<TunnelStream> bridge;
  WsBridgeChannel channel;
  std::unique_ptr<UpstreamSocket> upstream;
  OrderedWriter upstream_writer;
  asio::steady_timer done_wake;
  asio::steady_timer linger;
  std::string upstream_leftover;  // frame bytes that came with the 101
  bool upstream_pump_done = false;
  bool close_sent_upstream = false;
  std::shared_ptr<void> session;  // the connection the bridge stream lives on outlives both pumps
};

asio::awaitable<void> close_upstream(Bridge& b, RandomSource& random, std::uint16_t code, std::string_view reason) {
  if (b.close_sent_upstream) co_return;
  b.close_sent_upstream = true;
  const std::string payload = proto::encode_close_payload(code, reason);
  const std::string frame = masked_ws_frame(random, WsOpcode::close, payload);
  (void)co_await b.upstream_writer.write(frame);
}

// Upstream frames → bridge messages.
asio::awaitable<void> pump_upstream(std::shared_ptr<Bridge> b, RandomSource& random, WebSocketLimits limits) {
  proto::WsFrameDecoder decoder({.max_frame_payload = limits.max_message_bytes,
                                 .mask_policy = proto::WsMaskPolicy::require_unmasked});
  std::string message;
  WsOpcode message_op = WsOpcode::binary;
  bool in_message = false;
  std::uint16_t end_code = proto::ws_close::internal_error;
  std::string end_reason = "upstream connection lost";
  auto buffer = std::make_unique_for_overwrite<std::uint8_t[]>(kReadChunk);
  std::string pending = std::move(b->upstream_leftover);
  bool finished = false;
  while (!finished) {
    std::span<const std::uint8_t> chunk;
    if (!pending.empty()) {
      chunk = std::span(reinterpret_cast<const std::uint8_t*>(pending.data()), pending.size());
    } else {
      auto [ec, n] = co_await b->upstream->stream().read_some(std::span(buffer.get(), kReadChunk));
      if (ec) break;
      chunk = std::span<const std::uint8_t>(buffer.get(), n);
    }
    while (!chunk.empty() && !finished) {
      chunk = chunk.subspan(decoder.feed(chunk));
      for (;;) {
        auto frame = decoder.next_view();
        if (!frame) {
          end_code = proto::ws_close_code(frame.error());
          end_reason = std::string(proto::to_string(frame.error()));
          co_await close_upstream(*b, random, end_code, end_reason);
          finished = true;
          break;
        }
        if (!*frame) break;
        const auto& f = **frame;
        const std::string_view payload(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
        if (f.opcode == WsOpcode::ping) {
          const std::string pong = masked_ws_frame(random, WsOpcode::pong, payload);
          (void)co_await b->upstream_writer.write(pong);
          continue;
        }
        if (f.opcode == WsOpcode::pong) continue;
        if (f.opcode == WsOpcode::close) {
          auto close = proto::decode_close_payload(f.payload);
          end_code = close ? close->code : proto::ws_close::protocol_error;
          if (end_code == proto::ws_close::no_status) end_code = proto::ws_close::normal;
          end_reason = close ? close->reason : std::string();
          // Echo the CLOSE (RFC 6455 §5.5.1), then the upstream closes the TCP connection.
          co_await close_upstream(*b, random, end_code, end_reason);
          finished = true;
          break;
        }
        const bool continuation = f.opcode == WsOpcode::continuation;
        if (continuation != in_message || message.size() + payload.size() > limits.max_message_bytes) {
          end_code = continuation != in_message ? proto::ws_close::protocol_error : proto::ws_close::too_big;
          end_reason = end_code == proto::ws_close::too_big ? "message too big" : "bad fragmentation";
          co_await close_upstream(*b, random, end_code, end_reason);
          finished = true;
          break;
        }
        if (!continuation) message_op = f.opcode;
        message.append(payload);
        in_message = !f.fin;
        if (in_message) continue;
        bool sent = false;
        if (message_op == WsOpcode::text) {
          sent = co_await b->channel.send_text(message);
        } else {
          sent = co_await b->channel.send_binary(message);
        }
        message.clear();
        if (!sent) {
          finished = true;  // the relay side is gone; the other pump sees it too
          break;
        }
      }
    }
    pending.clear();
  }
  co_await b->channel.close(end_code, end_reason);
  b->upstream_pump_done = true;
  b->done_wake.cancel();
  // The third party's side gets close_linger to finish; then the bridge is cut.
  b->linger.expires_after(limits.close_linger);
  b->linger.async_wait([b](const boost::system::error_code& ec) {
    if (!ec) b->bridge->close();
  });
}

// Bridge messages → upstream frames. Returns when the relay side has ended.
asio::awaitable<void> pump_bridge(Bridge& b, RandomSource& random) {
  std::uint16_t code = proto::ws_close::normal;
  std::string reason;
  for (;;) {
    auto message = co_await b.channel.receive();
    if (!message) {
      code = b.channel.end_code();
      reason = std::string(b.channel.end_reason());
      break;
    }
    if (message->type == proto::BridgeMessage::Type::close) {
      code = static_cast<std::uint16_t>(message->close_code);
      reason = message->close_reason;
      break;
    }
    const auto op = message->type == proto::BridgeMessage::Type::text ? WsOpcode::text : WsOpcode::binary;
    const std::string out = masked_ws_frame(random, op, message->data);
    if (co_await b.upstream_writer.write(out)) break;
  }
  co_await close_upstream(b, random, code, reason);
}

}  // namespace

asio::awaitable<ExchangeOutcome> forward_websocket(DataPlaneSession& session, UpstreamDialer& dialer,
                                                   RandomSource& random, Envelope& envelope,
                                                   const WebSocketLimits& limits) {
  ExchangeOutcome outcome;
  if (proto::invalid_path_reason(envelope.path)) {
    co_await session.post_simple(envelope, 400, "invalid-path", "invalid path");
    outcome.status = 400;
    co_return outcome;
  }
  if (envelope.ws_id.empty()) {
    co_await session.post_simple(envelope, 400, "missing-ws-id", "missing ws id");
    outcome.status = 400;
    co_return outcome;
  }
  UpstreamWebSocketRequest request;
  request.path = envelope.path;
  request.headers = envelope.forwarded;
  request.public_host = session.settings().public_host;
  request.forwarded_for = envelope.forwarded_for;
  auto handshake = co_await upstream_websocket_handshake(dialer, random, request, session.response_deadline(envelope),
                                                         session.logger());
  if (!handshake) {
    const UpstreamWebSocketRefusal& refused = handshake.error();
    const std::string reason(refused.reason);
    co_await session.post_simple(envelope, refused.status, reason, reason);
    outcome.status = refused.status;
    co_return outcome;
  }
  auto post = session.open_post(envelope, 200, {}, handshake->headers, 0, true);
  if (!post) co_return outcome;
  const auto accepted = co_await post->wait_headers(SteadyClock::now() + limits.bridge_wait);
  if (accepted != 200) {
    session.logger()->info("agent: websocket {}: the relay answered the accept with {}", envelope.path, accepted);
    outcome.status = 502;
    co_return outcome;
  }
  auto bridge = session.open_bridge(DataPlaneSession::BridgeKind::ws, envelope.ws_id);
  if (!bridge) co_return outcome;
  const auto opened = co_await bridge->wait_headers(SteadyClock::now() + limits.bridge_wait);
  if (opened != 200) {
    session.logger()->info("agent: websocket {}: the bridge was answered {}", envelope.path, opened);
    bridge->close();  // RST_STREAM(CANCEL), §4.8 step 3
    outcome.status = 502;
    co_return outcome;
  }
  outcome.status = 101;
  auto b = std::make_shared<Bridge>(session.executor(), bridge, random, limits.max_message_bytes,
                                    std::move(handshake->upstream));
  b->upstream_leftover = std::move(handshake->leftover);
  b->session = session.shared_from_this();
  asio::co_spawn(session.executor(), pump_upstream(b, random, limits), asio::detached);
  co_await pump_bridge(*b, random);
  // The upstream answers our CLOSE and closes; give it close_linger, then cut it.
  if (!b->upstream_pump_done) {
    b->done_wake.expires_after(limits.close_linger);
    co_await b->done_wake.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!b->upstream_pump_done) {
      b->upstream->stream().close();
      b->done_wake.expires_after(std::chrono::seconds(1));
      co_await b->done_wake.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  b->linger.cancel();
  b->bridge->close();
  b->upstream->stream().close();
  co_return outcome;
}

}  // namespace inkwire::agent
