#pragma once
// ByteStream over a plain TCP socket (the edge's HTTP listener).
#include <boost/asio/ip/tcp.hpp>

#include "common/byte_stream.h"

namespace inkwire {

class PlainStream final : public ByteStream {
 public:
  explicit PlainStream(boost::asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
  boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>> read_some(
      std::span<std::uint8_t> buffer) override;
  boost::asio::awaitable<boost::system::error_code> write_all(std::string_view bytes) override;
  void finish_sending() override;
  void close() override;
  bool is_open() const override { return socket_.is_open(); }

 private:
  boost::asio::ip::tcp::socket socket_;
};

}  // namespace inkwire
