#include "relay/byte_pipe.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace inkwire::relay {

namespace asio = boost::asio;

BytePipe::BytePipe(asio::any_io_executor executor, std::size_t capacity)
    : capacity_(capacity), reader_wake_(executor), writer_wake_(executor) {
  reader_wake_.expires_at(asio::steady_timer::time_point::max());
  writer_wake_.expires_at(asio::steady_timer::time_point::max());
}

std::size_t BytePipe::write_some(std::span<const std::uint8_t> bytes) {
  if (end_ != PipeEnd::open) return 0;
  if (reader_closed_) return bytes.size();  // swallowed: nobody will read them
  const std::size_t n = std::min(room(), bytes.size());
  if (n == 0) return 0;
  compact();
  buffer_.append(reinterpret_cast<const char*>(bytes.data()), n);
  total_written_ += n;
  notify_reader();
  return n;
}

std::size_t BytePipe::write_some(std::string_view bytes) {
  return write_some(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

void BytePipe::push(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return;
  total_written_ += bytes.size();
  // Dropped bytes count as consumed: whatever HTTP/2 window they arrived in must reopen, or a
  // session loses its connection window one abandoned body at a time.
  if (end_ != PipeEnd::open || reader_closed_) {
    if (on_consumed) on_consumed(bytes.size());
    return;
  }
  compact();
  buffer_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  notify_reader();
}

asio::awaitable<bool> BytePipe::write(std::string_view bytes) {
  while (!bytes.empty()) {
    if (end_ != PipeEnd::open) co_return false;
    if (reader_closed_) co_return false;
    const std::size_t n = write_some(bytes);
    bytes.remove_prefix(n);
    if (bytes.empty()) break;
    writer_wake_.expires_at(asio::steady_timer::time_point::max());
    co_await writer_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    // A wake-up and a cancellation of the awaiting coroutine (e.g. the losing side of `||`) both
    // end the wait with operation_aborted; only the state tells them apart.
    if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none) co_return false;
  }
  co_return !reader_closed_;
}

void BytePipe::finish() {
  if (end_ != PipeEnd::open) return;
  end_ = PipeEnd::finished;
  notify_reader();
}

void BytePipe::abort() {
  // A writer that already finished cleanly has delivered everything; a late failure elsewhere
  // must not take the complete body away from the reader.
  if (end_ != PipeEnd::open) return;
  end_ = PipeEnd::aborted;
  const std::size_t dropped = size();
  buffer_.clear();
  read_ = 0;
  if (dropped && on_consumed) on_consumed(dropped);
  notify_reader();
  notify_writer();
}

std::span<const std::uint8_t> BytePipe::peek() const {
  return std::span(reinterpret_cast<const std::uint8_t*>(buffer_.data()) + read_, size());
}

void BytePipe::take(std::size_t n) {
  n = std::min(n, size());
  if (n == 0) return;
  read_ += n;
  total_read_ += n;
  if (read_ == buffer_.size()) {
    buffer_.clear();
    read_ = 0;
  }
  if (on_consumed) on_consumed(n);
  notify_writer();
}

asio::awaitable<PipeRead> BytePipe::read(std::size_t max_bytes) {
  for (;;) {
    if (size() > 0) {
      const std::size_t n = std::min(max_bytes, size());
      PipeRead out;
      out.bytes.assign(buffer_.data() + read_, n);
      take(n);
      co_return out;
    }
    if (end_ != PipeEnd::open || reader_closed_) {
      PipeRead out;
      out.end = reader_closed_ && end_ == PipeEnd::open ? PipeEnd::aborted : end_;
      co_return out;
    }
    reader_wake_.expires_at(asio::steady_timer::time_point::max());
    co_await reader_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none) {
      co_return PipeRead{{}, PipeEnd::aborted};
    }
  }
}

void BytePipe::close_reader() {
  if (reader_closed_) return;
  reader_closed_ = true;
  const std::size_t dropped = size();
  buffer_.clear();
  read_ = 0;
  total_read_ += dropped;
  if (dropped && on_consumed) on_consumed(dropped);
  notify_writer();
  reader_wake_.cancel();
}

void BytePipe::notify_reader() {
  reader_wake_.cancel();
  if (on_readable) on_readable();
}

void BytePipe::notify_writer() {
  writer_wake_.cancel();
  if (on_writable) on_writable();
}

// Keeps appends amortised O(1) without letting a long-lived pipe's dead prefix grow.
void BytePipe::compact() {
  if (read_ > 0 && read_ >= buffer_.size() / 2) {
    buffer_.erase(0, read_);
    read_ = 0;
  }
}

}  // namespace inkwire::relay
