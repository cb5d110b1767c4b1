#include "agent/tunnel_stream.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>

namespace inkwire::agent {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

TunnelStream::TunnelStream(asio::any_io_executor executor, std::weak_ptr<StreamOwner> owner, std::int32_t stream_id)
    : owner_(std::move(owner)), id_(stream_id), read_wake_(executor), write_wake_(executor), turn_wake_(std::move(executor)) {}

TunnelStream::~TunnelStream() { close(); }

void TunnelStream::on_headers(int status, proto::H2Headers headers, bool end_stream) {
  status_ = status;
  headers_ = std::move(headers);
  if (end_stream) inbound_ended_ = true;
  read_wake_.cancel();
}

void TunnelStream::on_data(std::span<const std::uint8_t> bytes, bool end_stream) {
  if (local_closed_) {
    // Nobody will read these: credit them now.
    if (auto owner = owner_.lock(); owner && owner->h2()) (void)owner->h2()->consume(id_, bytes.size());
  } else {
    // Bytes already read are dropped before appending: a reader that always lags a little would
    // otherwise keep the whole body's read prefix (bench/agent saw +24 MiB on a 1 GiB upload).
    if (inbound_off_ == inbound_.size()) {
      inbound_.clear();
      inbound_off_ = 0;
    } else if (inbound_off_ >= 64 * 1024) {
      inbound_.erase(0, inbound_off_);
      inbound_off_ = 0;
    }
    inbound_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  if (end_stream) inbound_ended_ = true;
  read_wake_.cancel();
}

void TunnelStream::on_closed(bool reset) {
  closed_ = true;
  if (reset && !inbound_ended_) reset_ = true;
  read_wake_.cancel();
  write_wake_.cancel();
  turn_wake_.cancel();
}

void TunnelStream::on_writable() { write_wake_.cancel(); }

void TunnelStream::on_connection_end() {
  connection_ended_ = true;
  if (!inbound_ended_) reset_ = true;
  read_wake_.cancel();
  write_wake_.cancel();
  turn_wake_.cancel();
}

asio::awaitable<int> TunnelStream::wait_headers(SteadyClock::time_point deadline) {
  while (status_ == 0 && !closed_ && !connection_ended_ && !inbound_ended_) {
    if (SteadyClock::now() >= deadline) co_return 0;
    read_wake_.expires_at(deadline);
    co_await read_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return status_;
}

asio::awaitable<std::pair<boost::system::error_code, std::size_t>> TunnelStream::read_some(
    std::span<std::uint8_t> buffer) {
  for (;;) {
    if (inbound_off_ < inbound_.size()) {
      const std::size_t n = std::min(buffer.size(), inbound_.size() - inbound_off_);
      std::memcpy(buffer.data(), inbound_.data() + inbound_off_, n);
      inbound_off_ += n;
      if (auto owner = owner_.lock(); owner && owner->h2() && !local_closed_) {
        (void)owner->h2()->consume(id_, n);
        owner->wake_writer();  // the WINDOW_UPDATE
      }
      co_return std::pair{boost::system::error_code{}, n};
    }
    if (inbound_ended_) co_return std::pair{boost::system::error_code(asio::error::eof), std::size_t{0}};
    if (reset_ || closed_ || connection_ended_ || local_closed_) {
      co_return std::pair{boost::system::error_code(asio::error::connection_reset), std::size_t{0}};
    }
    read_wake_.expires_at(SteadyClock::time_point::max());
    co_await read_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<boost::system::error_code> TunnelStream::write_all(std::string_view bytes) {
  while (writing_) {
    if (closed_ || connection_ended_ || local_closed_) co_return asio::error::connection_reset;
    turn_wake_.expires_at(SteadyClock::time_point::max());
    co_await turn_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  writing_ = true;
  boost::system::error_code result;
  while (!bytes.empty()) {
    auto owner = owner_.lock();
    auto* h2 = owner ? owner->h2() : nullptr;
    if (!h2 || closed_ || connection_ended_ || local_closed_) {
      result = asio::error::connection_reset;
      break;
    }
    auto taken = h2->write_data(id_, bytes);
    if (!taken) {
      result = asio::error::connection_reset;
      break;
    }
    bytes.remove_prefix(*taken);
    owner->wake_writer();
    owner.reset();  // not held across the wait
    if (!bytes.empty()) {
      write_wake_.expires_at(SteadyClock::time_point::max());
      co_await write_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  writing_ = false;
  turn_wake_.cancel();
  co_return result;
}

void TunnelStream::finish_sending() {
  auto owner = owner_.lock();
  if (auto* h2 = owner ? owner->h2() : nullptr; h2 && !closed_ && !local_closed_) {
    sent_end_ = true;
    (void)h2->end_stream(id_);
    owner->wake_writer();
  }
}

void TunnelStream::credit_unread() {
  const std::size_t unread = inbound_.size() - inbound_off_;
  if (unread == 0) return;
  if (auto owner = owner_.lock(); owner && owner->h2()) (void)owner->h2()->consume(id_, unread);
  inbound_.clear();
  inbound_off_ = 0;
}

void TunnelStream::close() {
  if (local_closed_) return;
  credit_unread();
  local_closed_ = true;
  // Both directions ended: the stream closes by itself once our END_STREAM is out; a reset now
  // could overtake the last DATA still queued.
  auto owner = owner_.lock();
  if (auto* h2 = owner ? owner->h2() : nullptr; h2 && !closed_ && !connection_ended_ && !(sent_end_ && inbound_ended_)) {
    (void)h2->reset_stream(id_, proto::kH2Cancel);
    owner->wake_writer();
  }
  read_wake_.cancel();
  write_wake_.cancel();
  turn_wake_.cancel();
}

}  // namespace inkwire::agent
