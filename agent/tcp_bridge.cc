#include "agent/tcp_bridge.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "agent/ws_bridge_channel.h"
#include "common/tls_socket.h"
#include "proto/ws_frame.h"

namespace inkwire::agent {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;
using proto::WsOpcode;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
// The relay sends at most 64 KiB per frame (§4.9 recommendation); a peer that sends more is
// accepted up to this bound.
constexpr std::size_t kMaxFramePayload = 1024 * 1024;

struct Flow {
  Flow(asio::any_io_executor executor, std::shared_ptr<TunnelStream> b)
      : bridge(std::move(b)), local(executor), done_wake(executor) {}
  std::shared_ptr<TunnelStream> bridge;
  asio::local::stream_protocol::socket local;  // our end of the pair; the TLS server has the other
  asio::steady_timer done_wake;
  int pumps_running = 2;
  std::uint16_t close_code = proto::ws_close::normal;  // what the CLOSE frame says (§4.9 step 4)
  std::string close_reason = "clean-eof";
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::shared_ptr<void> session;  // the connection the bridge lives on outlives both pumps

  void pump_done() {
    --pumps_running;
    done_wake.cancel();
  }
  void fail(std::uint16_t code, std::string reason) {
    if (close_code == proto::ws_close::normal) {
      close_code = code;
      close_reason = std::move(reason);
    }
  }
};

// Bridge → TLS server: the third party's ciphertext, in order; CLOSE or END_STREAM is its FIN.
asio::awaitable<void> pump_from_bridge(std::shared_ptr<Flow> flow, RandomSource& random) {
  proto::WsFrameDecoder decoder({.max_frame_payload = kMaxFramePayload});
  auto buffer = std::make_unique_for_overwrite<std::uint8_t[]>(kReadChunk);
  bool finished = false;
  bool peer_finished = false;
  while (!finished) {
    auto [ec, n] = co_await flow->bridge->read_some(std::span(buffer.get(), kReadChunk));
    if (ec) {
      peer_finished = ec == asio::error::eof;
      if (!peer_finished) flow->fail(proto::ws_close::going_away, "cancelled");
      break;
    }
    std::span<const std::uint8_t> chunk(buffer.get(), n);
    while (!chunk.empty() && !finished) {
      chunk = chunk.subspan(decoder.feed(chunk));
      for (;;) {
        auto frame = decoder.next_view();
        if (!frame) {
          flow->fail(proto::ws_close::protocol_error, "protocol-error");
          finished = true;
          break;
        }
        if (!*frame) break;
        const auto& f = **frame;
        if (f.opcode == WsOpcode::binary || f.opcode == WsOpcode::continuation) {
          // §4.9: BINARY with continuations is accepted here; the bytes are joined as they come.
          flow->bytes_in += f.payload.size();
          auto [wec, written] = co_await asio::async_write(flow->local, asio::buffer(f.payload.data(), f.payload.size()),
                                                            asio::as_tuple(asio::use_awaitable));
          if (wec) {
            finished = true;  // the TLS side is gone; the other pump reports why
            break;
          }
        } else if (f.opcode == WsOpcode::ping) {
          const std::string pong = masked_ws_frame(
              random, WsOpcode::pong, std::string_view(reinterpret_cast<const char*>(f.payload.data()), f.payload.size()));
          (void)co_await flow->bridge->write_all(pong);
        } else if (f.opcode == WsOpcode::close) {
          peer_finished = true;
          finished = true;
          break;
        } else if (f.opcode != WsOpcode::pong) {
          flow->fail(proto::ws_close::protocol_error, "protocol-error");  // TEXT and others: §4.9 step 3
          finished = true;
          break;
        }
      }
    }
  }
  boost::system::error_code ignored;
  if (peer_finished) {
    flow->local.shutdown(asio::socket_base::shutdown_send, ignored);  // the TLS server reads EOF
  } else {
    flow->local.close(ignored);
  }
  flow->pump_done();
}

// TLS server → bridge: our ciphertext in masked BINARY frames; at its EOF, the CLOSE frame.
asio::awaitable<void> pump_to_bridge(std::shared_ptr<Flow> flow, RandomSource& random) {
  auto buffer = std::make_unique_for_overwrite<char[]>(kReadChunk);
  std::string frame;  // reused: one allocation for the whole flow, not one per read
  for (;;) {
    auto [ec, n] = co_await flow->local.async_read_some(asio::buffer(buffer.get(), kReadChunk),
                                                        asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec != asio::error::eof) flow->fail(proto::ws_close::internal_error, "outbound-error");
      break;
    }
    flow->bytes_out += n;
    frame.clear();
    append_masked_ws_frame(frame, random, WsOpcode::binary, std::string_view(buffer.get(), n));
    if (co_await flow->bridge->write_all(frame)) {
      flow->fail(proto::ws_close::internal_error, "outbound-error");
      break;
    }
  }
  const std::string payload = proto::encode_close_payload(flow->close_code, flow->close_reason);
  const std::string close = masked_ws_frame(random, WsOpcode::close, payload);
  (void)co_await flow->bridge->write_all(close);
  flow->bridge->finish_sending();
  flow->pump_done();
}

}  // namespace

Expected<SslCtxPtr, std::string> make_passthrough_tls_context(const std::string& cert_chain_file,
                                                              const std::string& key_file) {
  TlsServerOptions options;
  options.cert_chain_file = cert_chain_file;
  options.key_file = key_file;
  options.alpn = {"h2", "http/1.1"};
  return make_tls_server_context(options);
}

asio::awaitable<ExchangeOutcome> forward_tcp(DataPlaneSession& session, PassthroughService& service,
                                             HttpForwarder& forwarder, RandomSource& random, Envelope& envelope) {
  ExchangeOutcome outcome;
  const auto& logger = session.logger();
  if (envelope.tcp_id.empty()) {
    logger->info("agent: dropped a tcp-stream envelope without inkbox-tcp-id");
    co_return outcome;
  }
  auto bridge = session.open_bridge(DataPlaneSession::BridgeKind::tcp, envelope.tcp_id);
  if (!bridge) co_return outcome;
  const int opened = co_await bridge->wait_headers(SteadyClock::now() + service.bridge_wait);
  if (opened != 200) {
    logger->info("agent: tcp bridge {} answered {}", envelope.tcp_id, opened);
    bridge->close();  // RST_STREAM(CANCEL), §4.9 step 2
    co_return outcome;
  }
  const auto executor = session.executor();
  auto flow = std::make_shared<Flow>(executor, bridge);
  flow->session = session.shared_from_this();
  asio::local::stream_protocol::socket server_end(executor);
  boost::system::error_code ec;
  asio::local::connect_pair(flow->local, server_end, ec);
  if (ec) {
    logger->warn("agent: cannot make a socket pair for a tcp bridge: {}", ec.message());
    bridge->close();
    co_return outcome;
  }
  // TlsSocket drives a stream socket by its descriptor; the AF_UNIX end serves as well as TCP.
  asio::ip::tcp::socket tls_transport(executor);
  tls_transport.assign(asio::ip::tcp::v4(), server_end.release(), ec);
  TlsSocket tls(std::move(tls_transport), service.tls.get());
  asio::co_spawn(executor, pump_from_bridge(flow, random), asio::detached);
  asio::co_spawn(executor, pump_to_bridge(flow, random), asio::detached);

  asio::steady_timer handshake_deadline(executor);
  handshake_deadline.expires_after(service.handshake_timeout);
  handshake_deadline.async_wait([&tls](const boost::system::error_code& wec) {
    if (!wec) tls.close();
  });
  const auto hec = co_await tls.handshake();
  handshake_deadline.cancel();
  if (hec) {
    logger->info("agent: TLS handshake with a third party failed: {}", hec.message());
    flow->fail(proto::ws_close::internal_error, "tls-error");
    tls.close();
  } else {
    const std::string alpn(tls.alpn());
    outcome.status = 200;
    co_await serve_plaintext(tls, alpn, service.plaintext, forwarder, logger);
  }
  tls.close();
  // The pumps see the pair's EOF and end the bridge (CLOSE, END_STREAM); the third party's side
  // gets close_linger to finish, then everything is cut.
  if (flow->pumps_running > 0) {
    flow->done_wake.expires_after(service.close_linger);
    while (flow->pumps_running > 0) {
      co_await flow->done_wake.async_wait(asio::as_tuple(asio::use_awaitable));
      if (SteadyClock::now() >= flow->done_wake.expiry()) break;
    }
  }
  boost::system::error_code ignored;
  flow->local.close(ignored);
  flow->bridge->close();
  outcome.bytes_in = flow->bytes_in;
  outcome.bytes_out = flow->bytes_out;
  co_return outcome;
}

}  // namespace inkwire::agent
