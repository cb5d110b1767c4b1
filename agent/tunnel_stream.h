#pragma once
// One HTTP/2 stream of the agent's data-plane connection seen as a ByteStream: the DATA of an
// intake's envelope (the request body, read as it arrives) or a CONNECT bridge to the relay (§4.8,
// §4.9, read and written). Received bytes are credited back to the relay only as they are read,
// so a slow upstream holds the relay back instead of filling the agent's memory; bytes left unread
// when the stream is abandoned are credited at once, so the connection window never shrinks.
// Writes take the stream's write turn, so two writers (a pump and a PONG) never interleave bytes
// of their frames.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/byte_stream.h"
#include "proto/h2_session.h"

namespace inkwire::agent {

// What a TunnelStream needs from the connection that owns it.
class StreamOwner {
 public:
  virtual ~StreamOwner() = default;
  virtual proto::H2Session* h2() = 0;  // null once the connection ended
  virtual void wake_writer() = 0;
};

class TunnelStream final : public ByteStream {
 public:
  // The owner is held weakly: a stream a task still holds may outlive its connection.
  TunnelStream(boost::asio::any_io_executor executor, std::weak_ptr<StreamOwner> owner, std::int32_t stream_id);
  ~TunnelStream() override;

  std::int32_t id() const { return id_; }

  // ---- Fed by the connection's reader ----
  void on_headers(int status, proto::H2Headers headers, bool end_stream);
  void on_data(std::span<const std::uint8_t> bytes, bool end_stream);
  void on_closed(bool reset);  // the stream is gone (reset, or both sides ended)
  void on_writable();
  void on_connection_end();    // the whole connection is gone

  // ---- Used by the task that owns the flow ----
  // Waits for the response HEADERS (a CONNECT's 200). Returns the status, or 0 when the stream
  // ended first or `deadline` passed.
  boost::asio::awaitable<int> wait_headers(std::chrono::steady_clock::time_point deadline);
  const proto::H2Headers& headers() const { return headers_; }
  // Our side already ended (an intake's request went out with END_STREAM): closing after the
  // peer's END_STREAM needs no reset.
  void mark_sent_end() { sent_end_ = true; }
  bool reset() const { return reset_; }
  bool input_ended() const { return inbound_ended_; }
  // Bytes held for the reader, read or not yet (a bound the tests check).
  std::size_t held_bytes() const { return inbound_.size(); }

  boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>> read_some(
      std::span<std::uint8_t> buffer) override;
  boost::asio::awaitable<boost::system::error_code> write_all(std::string_view bytes) override;
  void finish_sending() override;  // END_STREAM after what was written
  void close() override;           // RST_STREAM(CANCEL) unless already closed; unread bytes credited
  bool is_open() const override { return !closed_ && !connection_ended_; }

 private:
  void credit_unread();

  std::weak_ptr<StreamOwner> owner_;
  std::int32_t id_;
  boost::asio::steady_timer read_wake_;
  boost::asio::steady_timer write_wake_;
  boost::asio::steady_timer turn_wake_;
  proto::H2Headers headers_;
  int status_ = 0;
  std::string inbound_;
  std::size_t inbound_off_ = 0;
  bool inbound_ended_ = false;
  bool closed_ = false;
  bool reset_ = false;
  bool connection_ended_ = false;
  bool local_closed_ = false;
  bool sent_end_ = false;
  bool writing_ = false;  // a write_all holds the turn
};

}  // namespace inkwire::agent
