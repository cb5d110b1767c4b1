#include "common/plain_stream.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace inkwire {

namespace asio = boost::asio;
using boost::system::error_code;

asio::awaitable<std::pair<error_code, std::size_t>> PlainStream::read_some(std::span<std::uint8_t> buffer) {
  auto [ec, n] =
      co_await socket_.async_read_some(asio::buffer(buffer.data(), buffer.size()), asio::as_tuple(asio::use_awaitable));
  co_return std::pair{ec, n};
}

asio::awaitable<error_code> PlainStream::write_all(std::string_view bytes) {
  auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                                            asio::as_tuple(asio::use_awaitable));
  co_return ec;
}

void PlainStream::finish_sending() {
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

void PlainStream::close() {
  error_code ignored;
  socket_.close(ignored);
}

}  // namespace inkwire
