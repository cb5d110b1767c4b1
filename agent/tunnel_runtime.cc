#include "agent/tunnel_runtime.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/certificate_renewer.h"
#include "proto/backoff.h"

namespace inkwire::agent {

namespace asio = boost::asio;

TunnelRuntime::TunnelRuntime(asio::any_io_executor executor, SessionSettings settings, SslCtxPtr tls,
                             std::unique_ptr<HttpForwarder> forwarder, Logger logger,
                             std::unique_ptr<PassthroughService> passthrough, const HttpHandler* http_handler,
                             const WebSocketHandler* ws_handler)
    : executor_(executor),
      settings_(std::move(settings)),
      tls_(std::move(tls)),
      forwarder_(std::move(forwarder)),
      passthrough_(std::move(passthrough)),
      logger_(std::move(logger)),
      sleep_(executor) {
  dispatch_.forwarder = forwarder_.get();
  dispatch_.passthrough = passthrough_.get();
  dispatch_.http_handler = http_handler;
  dispatch_.ws_handler = ws_handler;
}

TunnelRuntime::~TunnelRuntime() = default;

void TunnelRuntime::set_certificate_renewer(std::unique_ptr<CertificateRenewer> renewer) {
  renewer_ = std::move(renewer);
  renewer_->on_renewed = [this](SslCtxPtr context) {
    // SSL objects hold their own reference: live third-party connections keep the old context.
    if (passthrough_) passthrough_->tls = std::move(context);
  };
}

void TunnelRuntime::status(RuntimeStatus status, std::string detail, double retry) {
  if (on_status) on_status(RuntimeStatusEvent{status, std::move(detail), retry});
}

void TunnelRuntime::close() {
  closing_ = true;
  sleep_.cancel();
  if (session_) session_->close();
  for (auto& weak : retired_) {
    if (auto old = weak.lock()) old->close();
  }
}

asio::awaitable<RuntimeResult> TunnelRuntime::run() {
  if (renewer_) asio::co_spawn(executor_, renewer_->run(), asio::detached);
  // Whatever way run() ends, the renewer's loop ends with it (or the executor would never idle).
  struct StopRenewer {
    CertificateRenewer* renewer;
    ~StopRenewer() {
      if (renewer) renewer->stop();
    }
  } stop_renewer{renewer_.get()};
  proto::ReconnectBackoff backoff;
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  while (!closing_) {
    status(RuntimeStatus::connecting);
    session_ = std::make_shared<DataPlaneSession>(executor_, settings_, tls_.get(), dispatch_, logger_);
    session_->on_connected = [this, weak = std::weak_ptr<DataPlaneSession>(session_)] {
      status(RuntimeStatus::connected);
      // Make-before-break: sessions still draining post their answers over this one from now on.
      std::erase_if(retired_, [](const auto& old) { return old.expired(); });
      for (auto& old : retired_) {
        if (auto draining = old.lock()) draining->set_successor(weak);
      }
    };
    session_->on_request = on_request;
    const SessionResult result = co_await session_->run();
    if (result.draining) retired_.push_back(session_);
    session_.reset();
    if (closing_ || result.end == SessionEnd::closed) break;
    if (result.end == SessionEnd::auth_failed || result.end == SessionEnd::superseded) {
      status(RuntimeStatus::closed, result.detail);
      co_return RuntimeResult{result.end, result.detail};
    }
    if (result.was_connected) backoff.on_normal_end();
    // A drain reconnects at once: the relay is handing the agent over, not failing. Two handoffs
    // are at least 2 s apart (as the later SDKs do), so a relay that keeps draining is no hot loop.
    double delay = result.end == SessionEnd::normal ? 0.0 : backoff.next_delay(uniform(jitter_));
    if (result.end == SessionEnd::normal) {
      backoff.on_normal_end();
      const auto now = std::chrono::steady_clock::now();
      const auto since = now - last_handoff_;
      if (since < std::chrono::seconds(2)) delay = std::chrono::duration<double>(std::chrono::seconds(2) - since).count();
      last_handoff_ = now;
    }
    status(RuntimeStatus::reconnecting, result.detail, delay);
    logger_->info("agent: session ended ({}); reconnecting in {:.1f} s", result.detail, delay);
    if (delay > 0) {
      sleep_.expires_after(std::chrono::milliseconds(static_cast<std::int64_t>(delay * 1000)));
      co_await sleep_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  status(RuntimeStatus::closed, "closed");
  co_return RuntimeResult{SessionEnd::closed, "closed"};
}

}  // namespace inkwire::agent
