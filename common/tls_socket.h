#pragma once
#include "common/byte_stream.h"
// A TLS connection driven by OpenSSL directly on a non-blocking TCP socket, awaited with Asio's
// readiness waits. Unlike asio::ssl::stream, it keeps no buffers of its own (that stream holds two
// 17 KiB buffers per connection): OpenSSL reads from the socket into its record buffer, released
// between records (SSL_MODE_RELEASE_BUFFERS), and decrypted bytes go straight into the caller's
// buffer. An idle agent session therefore costs only OpenSSL's and nghttp2's state — the relay
// holds 10,000 of them per process.
//
// One reader and one writer may be active at once (from coroutines on the same executor); each
// OpenSSL call is synchronous and completes before the coroutine suspends, so a buffer handed to
// read_some() is written only during that call and may be shared between connections of a thread.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace inkwire {

class TlsSocket final : public ByteStream {
 public:
  // Server side. The socket is switched to non-blocking mode.
  TlsSocket(boost::asio::ip::tcp::socket socket, SSL_CTX* context);
  // Client side (the agent): `server_name` is sent as SNI unless it is an IP literal (as the SDKs
  // do), and the peer certificate must match it (DNS name, or IP SAN for a literal).
  struct Client {
    std::string server_name;
    bool verify = true;  // false only for a local upstream the user chose not to verify
  };
  TlsSocket(boost::asio::ip::tcp::socket socket, SSL_CTX* context, const Client& client);
  ~TlsSocket();
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;

  boost::asio::awaitable<boost::system::error_code> handshake();
  // At least one byte, or an error: asio::error::eof for a clean close (close_notify or TCP FIN).
  boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>> read_some(
      std::span<std::uint8_t> buffer) override;
  boost::asio::awaitable<boost::system::error_code> write_all(std::string_view bytes) override;
  // Sends close_notify if the connection is up and nothing blocks it; never waits.
  void send_close_notify();
  // Half-close: FIN after whatever was written; reading stays possible (a lingering close).
  void shutdown_send();
  // close_notify, then FIN (ByteStream).
  void finish_sending() override {
    send_close_notify();
    shutdown_send();
  }
  // Closes the TCP socket; pending waits complete with operation_aborted.
  void close() override;
  bool is_open() const override { return socket_.is_open(); }
  std::string_view alpn() const;
  boost::asio::any_io_executor get_executor() { return socket_.get_executor(); }

 private:
  // Maps an OpenSSL result to "wait for readable/writable" or an error.
  struct Next {
    std::optional<boost::asio::socket_base::wait_type> wait;
    boost::system::error_code error;
  };
  static Next next_step(int ssl_error, int ret);

  boost::asio::ip::tcp::socket socket_;
  SSL* ssl_ = nullptr;
  bool shutdown_sent_ = false;
};

}  // namespace inkwire
