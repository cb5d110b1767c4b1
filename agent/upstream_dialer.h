#pragma once
// Opens connections to the agent's `forward_to` upstream (PROTOCOL.md §6.3, §6.4): TCP, plus TLS
// for an https:// target (verified against the system roots and an optional CA bundle unless
// verification was turned off, as the SDKs' forward_to_verify_tls / forward_to_ca_bundle do).
// Both the HTTP forwarder and the WebSocket bridge dial through it, so the rules live once.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "common/byte_stream.h"
#include "common/expected.h"
#include "common/tls_server_context.h"
#include "proto/forward_target.h"

namespace inkwire::agent {

struct UpstreamTlsOptions {
  bool verify = true;    // false: any certificate is accepted (a self-signed local dev server)
  std::string ca_file;   // extra trusted CAs (PEM), on top of the system roots
};

// One open upstream connection: the byte stream and a deadline that closes it when it passes
// (every wait on the stream then fails), so reads and writes are bounded without a timer each.
class UpstreamSocket {
 public:
  UpstreamSocket(boost::asio::any_io_executor executor, std::unique_ptr<ByteStream> stream, int native_fd);
  ~UpstreamSocket();
  UpstreamSocket(const UpstreamSocket&) = delete;
  UpstreamSocket& operator=(const UpstreamSocket&) = delete;

  ByteStream& stream() { return *stream_; }
  // Closes the stream at `at` unless moved again first; time_point::max() disarms it.
  void expires_at(std::chrono::steady_clock::time_point at);
  void expires_after(std::chrono::steady_clock::duration d) { expires_at(std::chrono::steady_clock::now() + d); }
  bool timed_out() const { return state_->timed_out; }
  // An idle pooled connection the upstream has closed (EOF or an error waiting): not reusable.
  bool closed_by_peer() const;

 private:
  struct State {
    ByteStream* stream = nullptr;
    bool timed_out = false;
  };
  std::unique_ptr<ByteStream> stream_;
  int fd_ = -1;
  std::shared_ptr<State> state_;  // shared with the timer's handler, which may outlive a wait
  boost::asio::steady_timer timer_;
};

class UpstreamDialer {
 public:
  // Fails when the CA bundle cannot be loaded.
  static Expected<std::unique_ptr<UpstreamDialer>, std::string> create(boost::asio::any_io_executor executor,
                                                                       proto::ForwardTarget target,
                                                                       const UpstreamTlsOptions& tls);
  UpstreamDialer(boost::asio::any_io_executor executor, proto::ForwardTarget target, SslCtxPtr tls);

  // Resolves (loopback names only resolve locally), connects and, for https, handshakes, all
  // before `deadline`. The error is one line for the log ("cannot connect to ...", "TLS ...").
  boost::asio::awaitable<Expected<std::unique_ptr<UpstreamSocket>, std::string>> dial(
      std::chrono::steady_clock::time_point deadline);
  const proto::ForwardTarget& target() const { return target_; }
  const boost::asio::any_io_executor& executor() const { return executor_; }

 private:
  boost::asio::any_io_executor executor_;
  proto::ForwardTarget target_;
  SslCtxPtr tls_;  // null for http://
  bool verify_ = true;
};

}  // namespace inkwire::agent
