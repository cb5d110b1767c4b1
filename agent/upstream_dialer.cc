#include "agent/upstream_dialer.h"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/plain_stream.h"
#include "common/tls_socket.h"

namespace inkwire::agent {

namespace asio = boost::asio;

UpstreamSocket::UpstreamSocket(asio::any_io_executor executor, std::unique_ptr<ByteStream> stream, int native_fd)
    : stream_(std::move(stream)), fd_(native_fd), state_(std::make_shared<State>()), timer_(std::move(executor)) {
  state_->stream = stream_.get();
}

UpstreamSocket::~UpstreamSocket() {
  state_->stream = nullptr;  // a handler already queued must not touch the stream
  timer_.cancel();
}

void UpstreamSocket::expires_at(std::chrono::steady_clock::time_point at) {
  timer_.cancel();
  if (at == std::chrono::steady_clock::time_point::max()) return;
  timer_.expires_at(at);
  timer_.async_wait([state = state_](const boost::system::error_code& ec) {
    if (ec || !state->stream) return;
    state->timed_out = true;
    state->stream->close();
  });
}

bool UpstreamSocket::closed_by_peer() const {
  if (fd_ < 0 || !stream_->is_open()) return true;
  char probe;
  const ssize_t n = ::recv(fd_, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  // 0: FIN; -1 with EAGAIN: idle and alive; anything else (bytes nobody asked for, an error): unusable.
  return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

Expected<std::unique_ptr<UpstreamDialer>, std::string> UpstreamDialer::create(asio::any_io_executor executor,
                                                                              proto::ForwardTarget target,
                                                                              const UpstreamTlsOptions& tls) {
  SslCtxPtr context;
  if (target.scheme == "https") {
    auto made = make_tls_client_context(tls.ca_file, {"http/1.1"});
    if (!made) return unexpected("forward_to: " + made.error());
    context = std::move(*made);
    if (!tls.verify) SSL_CTX_set_verify(context.get(), SSL_VERIFY_NONE, nullptr);
  }
  auto dialer = std::make_unique<UpstreamDialer>(std::move(executor), std::move(target), std::move(context));
  if (!tls.verify) dialer->verify_ = false;
  return dialer;
}

UpstreamDialer::UpstreamDialer(asio::any_io_executor executor, proto::ForwardTarget target, SslCtxPtr tls)
    : executor_(std::move(executor)), target_(std::move(target)), tls_(std::move(tls)) {}

asio::awaitable<Expected<std::unique_ptr<UpstreamSocket>, std::string>> UpstreamDialer::dial(
    std::chrono::steady_clock::time_point deadline) {
  const std::string port = target_.port_text.empty() ? (target_.scheme == "https" ? "443" : "80") : target_.port_text;
  asio::ip::tcp::resolver resolver(executor_);
  auto [rec, endpoints] = co_await resolver.async_resolve(target_.host, port, asio::as_tuple(asio::use_awaitable));
  if (rec) co_return unexpected("cannot resolve " + target_.host + ": " + rec.message());
  asio::ip::tcp::socket socket(executor_);
  asio::steady_timer timer(executor_);
  timer.expires_at(deadline);
  bool timed_out = false;
  timer.async_wait([&socket, &timed_out](const boost::system::error_code& ec) {
    if (ec) return;
    timed_out = true;
    boost::system::error_code ignored;
    socket.close(ignored);
  });
  auto [cec, endpoint] = co_await asio::async_connect(socket, endpoints, asio::as_tuple(asio::use_awaitable));
  if (cec) {
    timer.cancel();
    co_return unexpected("cannot connect to " + target_.host + ":" + port + ": " +
                         (timed_out ? std::string("timed out") : cec.message()));
  }
  boost::system::error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  const int fd = static_cast<int>(socket.native_handle());
  if (!tls_) {
    timer.cancel();
    auto stream = std::make_unique<PlainStream>(std::move(socket));
    co_return std::make_unique<UpstreamSocket>(executor_, std::move(stream), fd);
  }
  TlsSocket::Client client{target_.host, verify_};
  auto tls = std::make_unique<TlsSocket>(std::move(socket), tls_.get(), client);
  // The timer above closes `socket`, which has moved: a handshake stall is bounded by the
  // UpstreamSocket's own deadline instead.
  timer.cancel();
  TlsSocket& handshaking = *tls;
  auto result = std::make_unique<UpstreamSocket>(executor_, std::move(tls), fd);
  result->expires_at(deadline);
  const auto hec = co_await handshaking.handshake();
  if (hec) {
    co_return unexpected("TLS handshake with " + target_.host + ":" + port + " failed: " +
                         (result->timed_out() ? std::string("timed out") : hec.message()));
  }
  result->expires_at(std::chrono::steady_clock::time_point::max());
  co_return result;
}

}  // namespace inkwire::agent
