#pragma once
// The byte transport under a public HTTP connection: TLS (TlsSocket) on the HTTPS listener, plain
// TCP (PlainStream) on the HTTP listener. The edge's HTTP/1.1 and HTTP/2 code is written once
// against this; the only virtual call per read or write is far below the cost of the syscall.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

namespace inkwire {

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // At least one byte, or an error: asio::error::eof for a clean close.
  virtual boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>> read_some(
      std::span<std::uint8_t> buffer) = 0;
  virtual boost::asio::awaitable<boost::system::error_code> write_all(std::string_view bytes) = 0;
  // The graceful end of our direction: TLS close_notify (when nothing blocks it), then FIN.
  virtual void finish_sending() = 0;
  // Closes the TCP socket; pending waits complete with operation_aborted.
  virtual void close() = 0;
  virtual bool is_open() const = 0;
};

}  // namespace inkwire
