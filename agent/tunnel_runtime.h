#pragma once
// The agent's reconnect loop around DataPlaneSession (PROTOCOL.md §4.10): the first attempt at
// once, then the SDKs' backoff (1 s doubling to 30 s, ±25 % jitter, reset after a session that
// got connected); hello 401/403 and the superseded signals end it for good; a drain (GOAWAY)
// reconnects at once. Status changes go to a callback, as the SDKs' status callback does.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "agent/data_plane_session.h"
#include "agent/http_forwarder.h"
#include "agent/tcp_bridge.h"
#include "common/tls_server_context.h"

namespace inkwire::agent {

enum class RuntimeStatus { connecting, connected, reconnecting, closed };

struct RuntimeStatusEvent {
  RuntimeStatus status = RuntimeStatus::connecting;
  std::string detail;            // why (for reconnecting and closed)
  double retry_in_seconds = 0;   // reconnecting: the backoff delay
};

struct RuntimeResult {
  SessionEnd end = SessionEnd::closed;  // auth_failed, superseded or closed
  std::string detail;
};

class TunnelRuntime {
 public:
  // `forwarder` may be null when handlers serve everything; `passthrough` is set for passthrough
  // tunnels only. The handlers must outlive the runtime.
  TunnelRuntime(boost::asio::any_io_executor executor, SessionSettings settings, SslCtxPtr tls,
                std::unique_ptr<HttpForwarder> forwarder, Logger logger,
                std::unique_ptr<PassthroughService> passthrough = nullptr, const HttpHandler* http_handler = nullptr,
                const WebSocketHandler* ws_handler = nullptr);
  ~TunnelRuntime();

  boost::asio::awaitable<RuntimeResult> run();
  // Graceful: the current session drains (in-flight requests finish) and run() returns `closed`.
  void close();
  // Passthrough: keeps the certificate fresh while running and swaps it in for new connections.
  void set_certificate_renewer(std::unique_ptr<class CertificateRenewer> renewer);
  std::function<void(const RuntimeStatusEvent&)> on_status;
  std::function<void(const RequestRecord&)> on_request;

 private:
  void status(RuntimeStatus status, std::string detail = {}, double retry = 0);

  boost::asio::any_io_executor executor_;
  SessionSettings settings_;
  SslCtxPtr tls_;
  std::unique_ptr<HttpForwarder> forwarder_;
  std::unique_ptr<PassthroughService> passthrough_;
  Dispatch dispatch_;
  std::unique_ptr<class CertificateRenewer> renewer_;
  Logger logger_;
  boost::asio::steady_timer sleep_;
  std::shared_ptr<DataPlaneSession> session_;
  std::vector<std::weak_ptr<DataPlaneSession>> retired_;  // draining, finishing in-flight requests
  bool closing_ = false;
  std::chrono::steady_clock::time_point last_handoff_{};  // the last drain reconnect
  std::mt19937_64 jitter_{std::random_device{}()};
};

}  // namespace inkwire::agent
