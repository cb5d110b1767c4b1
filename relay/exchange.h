#pragma once
// One third-party request on its way through the relay: the seam between the edge and the relay
// (DESIGN.md). The edge builds an InboundCall, Relay::dispatch() returns an Exchange, and the edge
// then streams the request body in, awaits the agent's answer, streams the response body out, or
// runs a bridge. Bodies go through bounded BytePipes, so neither side holds a whole body.
//
// The relay drives the other side: it queues the exchange, writes it to a parked intake, matches
// the response post or the bridge CONNECT to it, and fails it (502/503/504) when the agent cannot
// answer. Everything runs on the relay's executor; a relay on another node could stand behind the
// same interface by forwarding these pipes over an internal HTTP/2 stream.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/expected.h"
#include "common/uuid.h"
#include "proto/envelope.h"
#include "proto/header_rules.h"
#include "proto/protocol_constants.h"
#include "relay/byte_pipe.h"

namespace inkwire::relay {

class AgentSession;

struct InboundCall {
  Uuid tunnel_id;
  proto::RouteKind kind = proto::RouteKind::webhook;
  proto::InboundRequest request;  // method, raw target, headers as received, client ip, SNI
  // webhook: the edge writes the body into request_body() and finishes it. false: no body (the
  // pipe starts finished).
  bool has_body = false;
};

// The agent's answer (from its response post), ready for the third party: inkbox-* stripped,
// set-cookie split, hop-by-hop removed (proto::parse_response_post).
struct ResponseHead {
  int status = 0;
  std::vector<proto::HeaderField> headers;
  std::string reason;  // inkbox-reason, for the log only
  // The post's content-length (the SDKs always send one; nghttp2 holds the DATA to it), so the
  // edge can send a content-length instead of chunking; nullopt when the agent sent none.
  std::optional<std::uint64_t> body_length;
};

// The relay could not get an answer; `status` is what the third party gets.
struct DispatchFailure {
  int status = 502;
  std::string reason;  // short, loggable: "no-session", "queue-timeout", "session-lost", ...
};

enum class ExchangeState : std::uint8_t {
  queued,     // waiting for a parked intake
  delivered,  // written to an intake; waiting for the response post (webhook, ws) or bridge (tcp)
  answered,   // the post's headers arrived; its body may still be streaming
  bridging,   // a bridge CONNECT is attached
  done,       // finished or failed; nothing more happens
};

class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  struct Timing {
    std::chrono::steady_clock::duration queue_wait;     // A12
    std::chrono::steady_clock::duration response_wait;  // deadline + grace (A7)
    std::chrono::steady_clock::duration bridge_wait;    // A10 / §4.9 step 2
  };
  Exchange(boost::asio::any_io_executor executor, InboundCall call, std::string request_id, std::string bridge_id,
           Timing timing, std::size_t pipe_capacity);

  const std::string& request_id() const { return request_id_; }
  const std::string& bridge_id() const { return bridge_id_; }  // ws or tcp id; empty for webhook
  proto::RouteKind kind() const { return call_.kind; }
  const InboundCall& call() const { return call_; }
  ExchangeState state() const { return state_; }

  // ---- Edge side ----
  BytePipe& request_body() { return request_body_; }
  // Waits for the agent's response head (webhook, ws-upgrade), or a failure. Enforces the queue
  // wait and the response deadline itself: when one runs out, the exchange fails with 503/504.
  boost::asio::awaitable<Expected<ResponseHead, DispatchFailure>> response();
  BytePipe& response_body() { return response_body_; }
  // ws-upgrade after an accepting (200) head, tcp-stream at once: waits for the agent's bridge
  // CONNECT (bounded). On success call accept_bridge() once the third party has been told (101),
  // then pump to_agent()/from_agent().
  boost::asio::awaitable<Expected<Unit, DispatchFailure>> bridge();
  void accept_bridge();
  BytePipe& to_agent() { return to_agent_; }      // ws: §4.8.2 message bytes; tcp: raw bytes
  BytePipe& from_agent() { return from_agent_; }  // the same, unframed by the relay
  // The code of the agent's first CLOSE frame on a ws bridge (the edge prefers a close message).
  std::optional<std::uint16_t> agent_close_code() const { return agent_close_code_; }
  // The third party went away: the agent's side is told (stream reset or close) and the exchange ends.
  void cancel();

  // ---- Relay side ----
  // Hooks the registry installs; the exchange calls them from response()/bridge() when a wait runs
  // out and from cancel().
  std::function<void(Exchange&, DispatchFailure)> on_timeout;
  std::function<void(Exchange&)> on_cancel;
  std::function<void(Exchange&)> on_bridge_accepted;

  void mark_delivered();
  void set_head(ResponseHead head);
  void mark_bridge_attached();
  void fail(DispatchFailure failure);  // no-op once done or answered
  void finish();                       // the exchange completed normally
  void set_agent_close_code(std::uint16_t code) {
    if (!agent_close_code_) agent_close_code_ = code;
  }
  bool is_done() const { return state_ == ExchangeState::done; }
  bool has_head() const { return head_.has_value(); }
  int head_status() const { return head_ ? head_->status : 0; }
  // Back to the queue after the agent reset the intake before END_STREAM (A11).
  void requeue();
  bool bridge_accepted() const { return bridge_accepted_; }
  const std::optional<DispatchFailure>& failure() const { return failure_; }
  std::chrono::steady_clock::time_point created_at() const { return created_at_; }
  std::chrono::steady_clock::time_point delivered_at() const { return delivered_at_; }

  // Which session and stream currently carry it (for resets and session-loss accounting).
  std::weak_ptr<AgentSession> intake_session;
  std::int32_t intake_stream = 0;
  std::weak_ptr<AgentSession> post_session;
  std::int32_t post_stream = 0;
  std::weak_ptr<AgentSession> bridge_session;
  std::int32_t bridge_stream = 0;
  bool envelope_complete = false;          // END_STREAM went out on the intake (A11: delivered)
  std::vector<proto::HeaderField> envelope;  // built and checked at dispatch
  std::uint64_t delivered_generation = 0;  // the session generation it was delivered on
  bool had_session_at_queue = false;       // for 503 (no session) vs 504 (no intake)

 private:
  void wake();
  boost::asio::awaitable<bool> wait_until(std::chrono::steady_clock::time_point deadline);

  InboundCall call_;
  std::string request_id_;
  std::string bridge_id_;
  Timing timing_;
  ExchangeState state_ = ExchangeState::queued;
  std::optional<ResponseHead> head_;
  std::optional<DispatchFailure> failure_;
  bool bridge_attached_ = false;
  bool bridge_accepted_ = false;
  std::optional<std::uint16_t> agent_close_code_;
  std::chrono::steady_clock::time_point created_at_;
  std::chrono::steady_clock::time_point delivered_at_;
  std::chrono::steady_clock::time_point answered_at_;
  BytePipe request_body_;
  BytePipe response_body_;
  BytePipe to_agent_;
  BytePipe from_agent_;
  boost::asio::steady_timer signal_;
};

}  // namespace inkwire::relay
