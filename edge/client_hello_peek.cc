#include "edge/client_hello_peek.h"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>

namespace inkwire::edge {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

asio::awaitable<PeekOutcome> peek_client_hello(asio::ip::tcp::socket& socket, std::size_t max_bytes,
                                               std::chrono::steady_clock::time_point deadline) {
  PeekOutcome out;
  std::vector<std::uint8_t> buffer(max_bytes);
  asio::steady_timer timer(socket.get_executor());
  std::size_t last_size = 0;
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    if (std::chrono::steady_clock::now() >= deadline) {
      out.timed_out = true;
      co_return out;
    }
    timer.expires_at(deadline);
    auto ready = co_await (socket.async_wait(asio::socket_base::wait_read, asio::as_tuple(asio::use_awaitable)) ||
                           timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (ready.index() == 1) {
      out.timed_out = true;
      co_return out;
    }
    if (std::get<0>(std::get<0>(ready))) {
      out.closed = true;
      co_return out;
    }
    const ssize_t n = ::recv(socket.native_handle(), buffer.data(), buffer.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) {
      out.closed = true;
      co_return out;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      out.closed = true;
      co_return out;
    }
    const auto size = static_cast<std::size_t>(n);
    out.hello = proto::parse_client_hello(std::span<const std::uint8_t>(buffer.data(), size), max_bytes);
    if (out.hello.status != proto::ClientHelloStatus::need_more) co_return out;
    // The socket stays readable while peeked bytes sit in it, so a wait for "more" would return at
    // once: back off briefly instead (a ClientHello split across segments is rare and short).
    if (size == last_size) {
      timer.expires_after(pause);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      pause = std::min(pause * 2, std::chrono::milliseconds(50));
    } else {
      pause = std::chrono::milliseconds(1);
    }
    last_size = size;
  }
}

}  // namespace inkwire::edge
