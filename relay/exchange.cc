#include "relay/exchange.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace inkwire::relay {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

Exchange::Exchange(asio::any_io_executor executor, InboundCall call, std::string request_id,
                   std::string bridge_id, Timing timing, std::size_t pipe_capacity)
    : call_(std::move(call)),
      request_id_(std::move(request_id)),
      bridge_id_(std::move(bridge_id)),
      timing_(timing),
      created_at_(Clock::now()),
      request_body_(executor, pipe_capacity),
      response_body_(executor, pipe_capacity),
      to_agent_(executor, pipe_capacity),
      from_agent_(executor, pipe_capacity),
      signal_(executor) {
  if (!call_.has_body || call_.kind != proto::RouteKind::webhook) request_body_.finish();
}

void Exchange::wake() { signal_.cancel(); }

// true when woken by a state change, false when the deadline passed.
asio::awaitable<bool> Exchange::wait_until(Clock::time_point deadline) {
  if (Clock::now() >= deadline) co_return false;
  signal_.expires_at(deadline);
  auto [ec] = co_await signal_.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return ec == asio::error::operation_aborted || Clock::now() < deadline;
}

asio::awaitable<Expected<ResponseHead, DispatchFailure>> Exchange::response() {
  auto self = shared_from_this();
  for (;;) {
    if (head_) co_return *head_;
    if (failure_) co_return unexpected(*failure_);
    if (state_ == ExchangeState::done) co_return unexpected(DispatchFailure{502, "no-response"});
    const bool queued = state_ == ExchangeState::queued;
    const auto deadline = queued ? created_at_ + timing_.queue_wait : delivered_at_ + timing_.response_wait;
    if (co_await wait_until(deadline)) continue;
    if (head_ || failure_) continue;
    DispatchFailure failure;
    if (queued) {
      failure = had_session_at_queue || !intake_session.expired() ? DispatchFailure{504, "queue-timeout"}
                                                                   : DispatchFailure{503, "no-session"};
    } else {
      failure = DispatchFailure{504, "response-deadline"};
    }
    if (on_timeout) on_timeout(*this, failure);
    fail(failure);
  }
}

asio::awaitable<Expected<Unit, DispatchFailure>> Exchange::bridge() {
  auto self = shared_from_this();
  // ws: the window starts at the accepting post; tcp: at delivery (the queue wait comes first).
  for (;;) {
    if (bridge_attached_) co_return Unit{};
    if (failure_) co_return unexpected(*failure_);
    // Finished without a bridge (a refused ws-upgrade) or refused by the agent: nothing will come.
    if (state_ == ExchangeState::done || (head_ && head_->status != 200))
      co_return unexpected(DispatchFailure{502, "no-bridge"});
    const bool queued = state_ == ExchangeState::queued;
    Clock::time_point deadline;
    if (queued) {
      deadline = created_at_ + timing_.queue_wait;
    } else if (call_.kind == proto::RouteKind::ws_upgrade) {
      deadline = answered_at_ + timing_.bridge_wait;
    } else {
      deadline = delivered_at_ + timing_.bridge_wait;
    }
    if (co_await wait_until(deadline)) continue;
    if (bridge_attached_ || failure_) continue;
    DispatchFailure failure = queued ? (had_session_at_queue ? DispatchFailure{504, "queue-timeout"}
                                                             : DispatchFailure{503, "no-session"})
                                     : DispatchFailure{502, "bridge-timeout"};
    if (on_timeout) on_timeout(*this, failure);
    fail(failure);
  }
}

void Exchange::accept_bridge() {
  if (!bridge_attached_ || bridge_accepted_ || state_ == ExchangeState::done) return;
  bridge_accepted_ = true;
  if (on_bridge_accepted) on_bridge_accepted(*this);
}

void Exchange::cancel() {
  if (state_ == ExchangeState::done) return;
  if (on_cancel) on_cancel(*this);
  fail(DispatchFailure{499, "client-gone"});
  request_body_.abort();
  response_body_.close_reader();
  to_agent_.abort();
  from_agent_.close_reader();
}

void Exchange::mark_delivered() {
  if (state_ != ExchangeState::queued) return;
  state_ = ExchangeState::delivered;
  delivered_at_ = Clock::now();
  wake();
}

void Exchange::requeue() {
  if (state_ != ExchangeState::delivered) return;
  state_ = ExchangeState::queued;
  created_at_ = Clock::now();  // a fresh queue wait: the agent is reconnecting or re-parking
  intake_session.reset();
  intake_stream = 0;
  wake();
}

void Exchange::set_head(ResponseHead head) {
  if (state_ == ExchangeState::done || head_) return;
  head_ = std::move(head);
  state_ = ExchangeState::answered;
  answered_at_ = Clock::now();
  wake();
}

void Exchange::mark_bridge_attached() {
  if (state_ == ExchangeState::done) return;
  bridge_attached_ = true;
  state_ = ExchangeState::bridging;
  wake();
}

void Exchange::fail(DispatchFailure failure) {
  if (state_ == ExchangeState::done) return;
  state_ = ExchangeState::done;
  if (!failure_) failure_ = std::move(failure);
  // A body or bridge in progress ends with an error the edge can see (RST / 1011 / reset).
  response_body_.abort();
  from_agent_.abort();
  wake();
}

void Exchange::finish() {
  if (state_ == ExchangeState::done) return;
  state_ = ExchangeState::done;
  wake();
}

}  // namespace inkwire::relay
