#include "edge/passthrough_connection.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace inkwire::edge {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {
constexpr std::size_t kChunk = 64 * 1024;  // §4.9: one frame per socket read, at most 64 KiB
// §4.9 step 4: the agent allows 5 s for the other direction once one has ended; so do we.
constexpr auto kHalfCloseWait = std::chrono::seconds(5);
}  // namespace

PassthroughConnection::PassthroughConnection(EdgeContext& ctx, asio::ip::tcp::socket socket, TunnelTarget target,
                                             std::string sni, std::string client_ip)
    : ctx_(ctx),
      socket_(std::move(socket)),
      target_(std::move(target)),
      sni_(std::move(sni)),
      client_ip_(std::move(client_ip)),
      watchdog_(socket_.get_executor()) {}

void PassthroughConnection::force_close() {
  watchdog_.stop();
  boost::system::error_code ignored;
  socket_.close(ignored);
  if (exchange_) exchange_->cancel();
}

void PassthroughConnection::one_direction_done() {
  if (++directions_done_ == 1) watchdog_.set(kHalfCloseWait, "passthrough_half_close");
}

asio::awaitable<void> PassthroughConnection::run() {
  auto self = shared_from_this();
  const auto started = std::chrono::steady_clock::now();
  relay::InboundCall call;
  call.tunnel_id = target_.route.id;
  call.kind = proto::RouteKind::tcp_stream;
  call.request.client_ip = client_ip_;
  call.request.sni_host = sni_;
  AccessRecord record;
  record.protocol = "passthrough";
  record.tunnel = target_.name;
  record.started = started;
  record.client_ip = client_ip_;
  auto dispatched = ctx_.registry.dispatch(std::move(call));
  if (!dispatched) {
    record.error_code = error_code::bad_request;
    record_access(ctx_, record);
    force_close();
    co_return;
  }
  exchange_ = *dispatched;
  watchdog_.on_expired = [self](std::string_view kind) {
    self->ctx_.metrics.timeout(kind).Increment();
    self->force_close();
  };
  asio::co_spawn(socket_.get_executor(), [self] { return self->watchdog_.run(); }, asio::detached);
  // Bounded by the relay: the queue wait, then the bridge wait (§4.9 step 2).
  auto bridged = co_await exchange_->bridge();
  if (!bridged) {
    const EdgeError error = error_for_failure(bridged.error());
    record.status = error.status;
    record.error_code = error.code;
    record_access(ctx_, record);
    force_close();
    co_return;
  }
  exchange_->accept_bridge();
  ctx_.metrics.passthrough_open.Increment();
  co_await (client_to_agent(*exchange_) && agent_to_client(*exchange_));
  ctx_.metrics.passthrough_open.Decrement();
  watchdog_.stop();
  boost::system::error_code ignored;
  socket_.close(ignored);
  record.status = 200;
  record.bytes_in = bytes_in_;
  record.bytes_out = bytes_out_;
  record_access(ctx_, record);
}

asio::awaitable<void> PassthroughConnection::client_to_agent(relay::Exchange& exchange) {
  std::string buffer(kChunk, '\0');
  for (;;) {
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
    if (ec) {
      // FIN: the agent gets CLOSE(1000) + END_STREAM. A reset or our own close: RST_STREAM(CANCEL).
      if (ec == asio::error::eof) {
        exchange.to_agent().finish();
      } else {
        exchange.cancel();
      }
      break;
    }
    bytes_in_ += n;
    if (!co_await exchange.to_agent().write(std::string_view(buffer.data(), n))) break;
  }
  one_direction_done();
}

asio::awaitable<void> PassthroughConnection::agent_to_client(relay::Exchange& exchange) {
  for (;;) {
    relay::PipeRead piece = co_await exchange.from_agent().read(kChunk);
    if (piece.bytes.empty()) {
      boost::system::error_code ignored;
      if (piece.end == relay::PipeEnd::finished) {
        socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);  // the agent flushed close_notify
      } else {
        socket_.close(ignored);
      }
      break;
    }
    bytes_out_ += piece.bytes.size();
    // A client that stops reading is cut after the send deadline (unless a half-close wait runs).
    const bool half_closed = directions_done_ > 0;
    if (!half_closed) watchdog_.set(std::chrono::seconds(ctx_.config.send_timeout_seconds), "send");
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(piece.bytes), asio::as_tuple(asio::use_awaitable));
    if (!half_closed && directions_done_ == 0) watchdog_.clear();
    if (ec) {
      exchange.cancel();
      break;
    }
  }
  one_direction_done();
}

}  // namespace inkwire::edge
