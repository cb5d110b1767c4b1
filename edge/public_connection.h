#pragma once
// What the Edge can ask of any public connection it holds (HTTP/1.1, HTTP/2, passthrough).
#include <boost/asio/awaitable.hpp>

namespace inkwire::edge {

class PublicConnection {
 public:
  virtual ~PublicConnection() = default;
  // Serves the connection until it ends.
  virtual boost::asio::awaitable<void> run() = 0;
  // SIGTERM: finish the request in flight (or stop taking new streams), then close.
  virtual void drain() = 0;
  // Close now; the connection's coroutine ends soon after.
  virtual void force_close() = 0;
};

}  // namespace inkwire::edge
