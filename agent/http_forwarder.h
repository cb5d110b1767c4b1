#pragma once
// The agent's HTTP/1.1 client toward its `forward_to` upstream (PROTOCOL.md §6.3), http:// or
// https://: keep-alive connections kept in a small pool, the request body written whole or streamed
// from the envelope as it arrives, the response head returned at once and its body read in chunks,
// so the response post can stream it to the relay and the agent never holds a whole body.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/upstream_dialer.h"
#include "common/byte_stream.h"
#include "common/expected.h"
#include "common/logging.h"
#include "proto/forward_target.h"
#include "proto/header_rules.h"

namespace inkwire::agent {

struct UpstreamRequest {
  std::string method;
  std::string target;  // origin-form path and query for the request line
  std::vector<proto::HeaderField> headers;  // Host first; no content-length (added from body)
  std::string body;
  bool send_body = true;  // TS sends no body for GET and HEAD
  // When set, the body is read from this stream to its EOF instead of `body` (the envelope's DATA
  // as the relay delivers it): with Content-Length when `body_length` is known, else chunked.
  ByteStream* body_stream = nullptr;
  std::optional<std::uint64_t> body_length;
};

struct UpstreamResponseHead {
  int status = 0;
  // Lowercased names; hop-by-hop fields and content-length removed (the post carries its own).
  std::vector<proto::HeaderField> headers;
  std::optional<std::uint64_t> content_length;  // the body's length when the upstream said
  bool has_body = true;
};

class UpstreamConnection;

// One request/response on a pooled connection. Read the body with read_body() until it returns
// an empty string; the connection goes back to the pool when the exchange ends cleanly.
class UpstreamExchange {
 public:
  UpstreamExchange(class HttpForwarder& owner, std::unique_ptr<UpstreamConnection> connection,
                   UpstreamResponseHead head);
  ~UpstreamExchange();
  const UpstreamResponseHead& head() const { return head_; }
  // The whole body has been read (the next read_body() returns "").
  bool finished() const { return done_; }
  // The next piece of the body; "" at its end. Error: the upstream failed mid-body.
  boost::asio::awaitable<Expected<std::string, std::string>> read_body(std::size_t max_bytes = 64 * 1024);

 private:
  HttpForwarder& owner_;
  std::unique_ptr<UpstreamConnection> connection_;
  UpstreamResponseHead head_;
  bool done_ = false;
  bool failed_ = false;
  std::unique_ptr<char[]> scratch_;
  std::size_t scratch_size_ = 0;
};

class HttpForwarder {
 public:
  // http:// targets, or https:// verified against the system roots.
  HttpForwarder(boost::asio::any_io_executor executor, proto::ForwardTarget target, Logger logger,
                std::size_t max_idle_connections = 64);
  HttpForwarder(std::unique_ptr<UpstreamDialer> dialer, Logger logger, std::size_t max_idle_connections = 64);
  ~HttpForwarder();

  // Sends the request and waits for the response head (bounded by `deadline`). A reused
  // connection the upstream had closed meanwhile is retried once on a fresh one (before any byte
  // of a streamed body was taken; a pooled connection is also probed for a FIN before use).
  boost::asio::awaitable<Expected<std::unique_ptr<UpstreamExchange>, std::string>> start(
      const UpstreamRequest& request, std::chrono::steady_clock::time_point deadline);
  const proto::ForwardTarget& target() const { return dialer_->target(); }
  UpstreamDialer& dialer() { return *dialer_; }

 private:
  friend class UpstreamExchange;
  void release(std::unique_ptr<UpstreamConnection> connection);
  boost::asio::awaitable<boost::system::error_code> write_body(UpstreamConnection& connection,
                                                               const UpstreamRequest& request);

  std::unique_ptr<UpstreamDialer> dialer_;
  Logger logger_;
  std::size_t max_idle_;
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;
};

}  // namespace inkwire::agent
