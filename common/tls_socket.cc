#include "common/tls_socket.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>

namespace inkwire {

namespace asio = boost::asio;
using boost::system::error_code;

TlsSocket::TlsSocket(asio::ip::tcp::socket socket, SSL_CTX* context) : socket_(std::move(socket)) {
  error_code ignored;
  socket_.non_blocking(true, ignored);
  ssl_ = SSL_new(context);
  if (ssl_) {
    SSL_set_fd(ssl_, static_cast<int>(socket_.native_handle()));
    SSL_set_accept_state(ssl_);
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    // A peer that drops TCP without close_notify reads as EOF, like any other close: agents do it.
    SSL_set_options(ssl_, SSL_OP_IGNORE_UNEXPECTED_EOF);
    // One read(2) for a record's header and body (and whatever follows), not two per record.
    SSL_set_read_ahead(ssl_, 1);
  }
}

TlsSocket::TlsSocket(asio::ip::tcp::socket socket, SSL_CTX* context, const Client& client)
    : socket_(std::move(socket)) {
  error_code ignored;
  socket_.non_blocking(true, ignored);
  ssl_ = SSL_new(context);
  if (!ssl_) return;
  SSL_set_fd(ssl_, static_cast<int>(socket_.native_handle()));
  SSL_set_connect_state(ssl_);
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  SSL_set_options(ssl_, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_set_read_ahead(ssl_, 1);
  boost::system::error_code ec;
  (void)asio::ip::make_address(client.server_name, ec);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
  if (!ec) {
    X509_VERIFY_PARAM_set1_ip_asc(param, client.server_name.c_str());  // no SNI for an IP literal
  } else {
    SSL_set_tlsext_host_name(ssl_, client.server_name.c_str());
    X509_VERIFY_PARAM_set1_host(param, client.server_name.c_str(), client.server_name.size());
  }
  SSL_set_verify(ssl_, client.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
}

TlsSocket::~TlsSocket() {
  if (ssl_) SSL_free(ssl_);
}

std::string_view TlsSocket::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  if (ssl_) SSL_get0_alpn_selected(ssl_, &data, &len);
  return data ? std::string_view(reinterpret_cast<const char*>(data), len) : std::string_view();
}

// What an OpenSSL result asks for: wait until the socket is readable or writable, or give up
// with an error. Not a coroutine itself: every connection has a read waiting at all times, and a
// nested coroutine frame per wait would cost each idle connection its size.
TlsSocket::Next TlsSocket::next_step(int ssl_error, int ret) {
  switch (ssl_error) {
    case SSL_ERROR_WANT_READ:
      return Next{asio::socket_base::wait_read, {}};
    case SSL_ERROR_WANT_WRITE:
      return Next{asio::socket_base::wait_write, {}};
    case SSL_ERROR_ZERO_RETURN:
      return Next{std::nullopt, asio::error::eof};
    case SSL_ERROR_SYSCALL: {
      const int err = errno;
      ERR_clear_error();
      if (ret == 0 || err == 0) return Next{std::nullopt, asio::error::eof};
      return Next{std::nullopt, error_code(err, boost::system::system_category())};
    }
    default: {
      const unsigned long code = ERR_get_error();
      ERR_clear_error();
      if (code == 0) return Next{std::nullopt, asio::error::connection_reset};
      return Next{std::nullopt, error_code(static_cast<int>(code), asio::error::get_ssl_category())};
    }
  }
}

asio::awaitable<error_code> TlsSocket::handshake() {
  if (!ssl_) co_return asio::error::no_memory;
  for (;;) {
    if (!socket_.is_open()) co_return asio::error::operation_aborted;
    ERR_clear_error();
    const int ret = SSL_do_handshake(ssl_);
    if (ret == 1) co_return error_code();
    const Next next = next_step(SSL_get_error(ssl_, ret), ret);
    if (!next.wait) co_return next.error;
    auto [ec] = co_await socket_.async_wait(*next.wait, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return ec;
  }
}

asio::awaitable<std::pair<error_code, std::size_t>> TlsSocket::read_some(std::span<std::uint8_t> buffer) {
  for (;;) {
    if (!socket_.is_open()) co_return std::pair{error_code(asio::error::operation_aborted), std::size_t{0}};
    ERR_clear_error();
    const int ret = SSL_read(ssl_, buffer.data(), static_cast<int>(buffer.size()));
    if (ret > 0) co_return std::pair{error_code(), static_cast<std::size_t>(ret)};
    const Next next = next_step(SSL_get_error(ssl_, ret), ret);
    if (!next.wait) co_return std::pair{next.error, std::size_t{0}};
    auto [ec] = co_await socket_.async_wait(*next.wait, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return std::pair{ec, std::size_t{0}};
  }
}

asio::awaitable<error_code> TlsSocket::write_all(std::string_view bytes) {
  while (!bytes.empty()) {
    if (!socket_.is_open()) co_return asio::error::operation_aborted;
    ERR_clear_error();
    const int ret = SSL_write(ssl_, bytes.data(), static_cast<int>(std::min<std::size_t>(bytes.size(), 1 << 30)));
    if (ret > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(ret));
      continue;
    }
    const Next next = next_step(SSL_get_error(ssl_, ret), ret);
    if (!next.wait) co_return next.error;
    auto [ec] = co_await socket_.async_wait(*next.wait, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return ec;
  }
  co_return error_code();
}

void TlsSocket::send_close_notify() {
  if (!ssl_ || shutdown_sent_ || !socket_.is_open() || !SSL_is_init_finished(ssl_)) return;
  shutdown_sent_ = true;
  ERR_clear_error();
  (void)SSL_shutdown(ssl_);  // non-blocking: sent if the socket takes it, else skipped
  ERR_clear_error();
}

void TlsSocket::shutdown_send() {
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

void TlsSocket::close() {
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace inkwire
