#include "agent/websocket_forwarder.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

#include "common/encoding.h"
#include "agent/ws_bridge_channel.h"
#include "proto/bridge_message.h"
#include "proto/forward_target.h"
#include "proto/path_check.h"
#include "proto/ws_frame.h"
#include "proto/ws_handshake.h"

namespace inkwire::agent {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using SteadyClock = std::chrono::steady_clock;
using proto::WsOpcode;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxHandshakeResponse = 16 * 1024;

bool is_hop_or_handshake(std::string_view name) {
  static constexpr std::string_view kSkip[] = {
      "host", "connection", "upgrade", "keep-alive", "te", "trailer", "transfer-encoding", "proxy-authenticate",
      "proxy-authorization", "proxy-connection", "http2-settings", "expect", "content-length",
      "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-accept",
      "sec-websocket-protocol", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded"};
  for (auto skip : kSkip) {
    if (name == skip) return true;
  }
  return false;
}

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

std::array<std::uint8_t, 4> mask_key(RandomSource& random) {
  std::array<std::uint8_t, 4> key{};
  random.fill(key);
  return key;
}

// A whole masked client frame (agent → relay bridge, agent → upstream).
std::string masked_frame(RandomSource& random, WsOpcode op, std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + proto::kWsMaxHeaderSize);
  encode_ws_frame(out, op, std::span(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()), true,
                  mask_key(random));
  return out;
}

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
  const std::string frame = masked_frame(random, WsOpcode::close, payload);
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
          const std::string pong = masked_frame(random, WsOpcode::pong, payload);
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
    const std::string out = masked_frame(random, op, message->data);
    if (co_await b.upstream_writer.write(out)) break;
  }
  co_await close_upstream(b, random, code, reason);
}

struct Handshake {
  std::unique_ptr<UpstreamSocket> upstream;
  std::vector<proto::HeaderField> accept_headers;  // for the accepting post
  std::string leftover;
  int refusal_status = 0;  // non-zero: refuse with this
  std::string refusal_reason;
};

asio::awaitable<Handshake> upstream_handshake(DataPlaneSession& session, UpstreamDialer& dialer, RandomSource& random,
                                              Envelope& envelope, SteadyClock::time_point deadline) {
  Handshake result;
  auto dialed = co_await dialer.dial(deadline);
  if (!dialed) {
    session.logger()->info("agent: websocket {}: {}", envelope.path, dialed.error());
    result.refusal_status = dialed.error().find("timed out") != std::string::npos ? 504 : 502;
    result.refusal_reason = "upstream-unreachable";
    co_return result;
  }
  result.upstream = std::move(*dialed);
  result.upstream->expires_at(deadline);
  std::array<std::uint8_t, 16> nonce{};
  random.fill(nonce);
  const std::string key = base64_encode(nonce);
  const auto& target = dialer.target();
  const std::string url = proto::join_forward_url(target, envelope.path);
  const auto authority_end = url.find('/', url.find("://") + 3);
  std::string head = "GET " + (authority_end == std::string::npos ? std::string("/") : url.substr(authority_end)) +
                     " HTTP/1.1\r\nHost: " + proto::host_header(target) +
                     "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
                     key + "\r\n";
  std::vector<std::pair<std::string, std::string>> offer;
  for (const auto& h : envelope.forwarded) {
    if (h.name == "sec-websocket-protocol") {
      head += "Sec-WebSocket-Protocol: " + h.value + "\r\n";
      offer.emplace_back(h.name, h.value);
    }
  }
  head += "X-Forwarded-Host: " + session.settings().public_host + "\r\nX-Forwarded-Proto: https\r\n";
  if (!envelope.forwarded_for.empty()) head += "X-Forwarded-For: " + envelope.forwarded_for + "\r\n";
  for (const auto& h : envelope.forwarded) {
    if (!is_hop_or_handshake(h.name)) head += h.name + ": " + h.value + "\r\n";
  }
  head += "\r\n";
  auto ec = co_await result.upstream->stream().write_all(head);
  http::response_parser<http::empty_body> parser;
  parser.header_limit(kMaxHandshakeResponse);
  parser.eager(false);
  std::string in;
  std::size_t used_total = 0;
  while (!ec && !parser.is_header_done()) {
    const std::size_t old = in.size();
    if (old >= kMaxHandshakeResponse) {
      ec = http::error::header_limit;
      break;
    }
    in.resize(old + 4096);
    auto [rec, n] = co_await result.upstream->stream().read_some(
        std::span(reinterpret_cast<std::uint8_t*>(in.data()) + old, 4096));
    in.resize(old + (rec ? 0 : n));
    if (rec) {
      ec = rec;
      break;
    }
    boost::beast::error_code pec;
    used_total += parser.put(asio::buffer(in.data() + used_total, in.size() - used_total), pec);
    if (pec && pec != http::error::need_more) ec = pec;
  }
  if (ec) {
    session.logger()->info("agent: websocket {}: the upstream handshake failed: {}", envelope.path,
                           result.upstream->timed_out() ? std::string("timed out") : ec.message());
    result.refusal_status = result.upstream->timed_out() ? 504 : 502;
    result.refusal_reason = "ws-handshake-failed";
    co_return result;
  }
  result.upstream->expires_at(SteadyClock::time_point::max());
  const auto& response = parser.get();
  const int status = static_cast<int>(response.result_int());
  if (status != 101) {
    result.refusal_status = status >= 200 ? status : 502;
    result.refusal_reason = "ws-upstream-refused";
    co_return result;
  }
  const auto accept = response[http::field::sec_websocket_accept];
  const auto extensions = response[http::field::sec_websocket_extensions];
  const auto chosen = response[http::field::sec_websocket_protocol];
  bool ok = accept == proto::websocket_accept_value(key) && extensions.empty();
  if (ok && !chosen.empty()) {
    const auto offered = proto::offered_subprotocols(offer);
    ok = std::find(offered.begin(), offered.end(), std::string(chosen)) != offered.end();
  }
  if (!ok) {
    result.refusal_status = 502;
    result.refusal_reason = "ws-handshake-failed";
    co_return result;
  }
  for (const auto& field : response) {
    std::string name = proto::lowercase_ascii(field.name_string());
    if (name == "sec-websocket-protocol" || !is_hop_or_handshake(name)) {
      result.accept_headers.push_back({std::move(name), std::string(field.value())});
    }
  }
  result.leftover = in.substr(used_total);
  co_return result;
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
  Handshake handshake = co_await upstream_handshake(session, dialer, random, envelope, session.response_deadline(envelope));
  if (handshake.refusal_status) {
    co_await session.post_simple(envelope, handshake.refusal_status, handshake.refusal_reason, handshake.refusal_reason);
    outcome.status = handshake.refusal_status;
    co_return outcome;
  }
  auto post = session.open_post(envelope, 200, {}, handshake.accept_headers, 0, true);
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
                                    std::move(handshake.upstream));
  b->upstream_leftover = std::move(handshake.leftover);
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
