#pragma once
// The relay's half of one ws or tcp bridge stream (PROTOCOL.md §4.8.1, §4.9): RFC 6455 framing
// between the agent's HTTP/2 stream and the exchange's two byte pipes. Toward the agent: unmasked
// BINARY frames of at most 64 KiB, FIN = 1, then CLOSE(1000) and END_STREAM when the edge finishes.
// From the agent: frames are unmasked and their payloads passed on (continuations ignored on ws,
// joined on tcp), PINGs answered, the first CLOSE code kept for the edge.
//
// Flow control (house rule 3): bytes are credited back to the agent only as the edge takes them
// from the pipe (plus framing overhead), so a slow third party holds back the agent, not memory.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "proto/h2_session.h"
#include "proto/protocol_constants.h"
#include "proto/ws_frame.h"
#include "relay/exchange.h"

namespace inkwire::relay {

class BridgeStream {
 public:
  BridgeStream(proto::RouteKind kind, std::shared_ptr<Exchange> exchange, std::size_t max_frame_payload);

  Exchange& exchange() { return *exchange_; }
  const std::shared_ptr<Exchange>& exchange_ptr() const { return exchange_; }

  // Agent -> edge. False on a framing error (the caller resets the stream).
  bool on_agent_data(std::span<const std::uint8_t> bytes);
  void on_agent_end();
  // Bytes to credit to the agent now (received, minus what still sits unread in the pipe).
  std::size_t take_credit();
  // Everything received and not yet credited, whatever the pipe still holds: for a stream that has
  // closed (nothing more can arrive, so memory stays bounded) — the connection window must reopen.
  std::size_t take_all_credit();
  // Pending output to the agent (a PONG) that pump() should send.
  bool has_output() const { return staging_off_ < staging_.size(); }

  enum class Pump : std::uint8_t { wait, end_stream, reset };
  // Edge -> agent: moves pipe bytes, framed, into the HTTP/2 stream as far as it takes them.
  Pump pump(proto::H2Session& h2, std::int32_t stream_id);

  std::uint64_t bytes_in() const { return received_; }
  std::uint64_t bytes_out() const { return sent_payload_; }

 private:
  proto::RouteKind kind_;
  std::shared_ptr<Exchange> exchange_;
  proto::WsFrameDecoder decoder_;
  std::string staging_;  // framed bytes not yet accepted by the HTTP/2 stream
  std::size_t staging_off_ = 0;
  std::uint64_t received_ = 0;
  std::uint64_t credited_ = 0;
  std::uint64_t sent_payload_ = 0;
  bool agent_closed_ = false;  // CLOSE frame seen: later data frames are ignored
  bool close_sent_ = false;
  bool failed_ = false;
};

}  // namespace inkwire::relay
