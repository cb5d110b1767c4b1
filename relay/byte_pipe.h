#pragma once
// A bounded byte pipe between two parties on one executor: the edge (or a test) on one end, an
// agent session's stream on the other. Bodies and bridge bytes stream through it, so no side ever
// holds a whole body; HTTP/2 windows are reopened only as the reader takes bytes (on_consumed).
//
// Single-threaded by design: every call happens on the relay's executor. Coroutine users await
// read()/write(); the session side uses the non-suspending calls plus the on_readable/on_writable
// hooks, which only schedule a pump and never re-enter the pipe from inside the call that fires them.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace inkwire::relay {

enum class PipeEnd : std::uint8_t {
  open,      // bytes may still come
  finished,  // the writer ended cleanly (END_STREAM, FIN): EOF after the buffered bytes
  aborted,   // the writer failed (RST_STREAM, connection lost): buffered bytes are dropped
};

struct PipeRead {
  std::string bytes;  // empty with end != open: the pipe is done
  PipeEnd end = PipeEnd::open;
};

class BytePipe {
 public:
  BytePipe(boost::asio::any_io_executor executor, std::size_t capacity);
  BytePipe(const BytePipe&) = delete;
  BytePipe& operator=(const BytePipe&) = delete;

  // ---- Writer side ----
  std::size_t room() const { return size() >= capacity_ ? 0 : capacity_ - size(); }
  // Appends what fits and returns how much that was (0 when full or the reader is gone).
  std::size_t write_some(std::span<const std::uint8_t> bytes);
  std::size_t write_some(std::string_view bytes);
  // Appends everything regardless of capacity. For a writer whose input is already bounded by an
  // HTTP/2 window: the peer cannot send more than it was credited, so memory stays bounded.
  void push(std::span<const std::uint8_t> bytes);
  // Waits for room as needed; false when the reader went away or the pipe was aborted.
  boost::asio::awaitable<bool> write(std::string_view bytes);
  void finish();
  void abort();
  // ---- Reader side ----
  std::size_t size() const { return buffer_.size() - read_; }
  bool at_end() const { return size() == 0 && end_ != PipeEnd::open; }
  PipeEnd end() const { return end_; }
  std::uint64_t bytes_read() const { return total_read_; }
  std::uint64_t bytes_written() const { return total_written_; }
  // The unread bytes, without taking them; take(n) then removes n of them.
  std::span<const std::uint8_t> peek() const;
  void take(std::size_t n);
  // Waits until bytes or the end are there; takes up to max_bytes.
  boost::asio::awaitable<PipeRead> read(std::size_t max_bytes = 64 * 1024);
  // The reader will not read any more: buffered bytes are dropped (and reported as consumed, so a
  // window they held is reopened), later writes are swallowed, a waiting writer wakes.
  void close_reader();
  bool reader_closed() const { return reader_closed_; }

  // Hooks (may be empty). on_consumed(n): n bytes left the pipe (taken or dropped).
  std::function<void(std::size_t)> on_consumed;
  std::function<void()> on_readable;  // bytes or the end arrived
  std::function<void()> on_writable;  // room appeared (or the reader went away)

 private:
  void notify_reader();
  void notify_writer();
  void compact();

  std::size_t capacity_;
  std::string buffer_;
  std::size_t read_ = 0;
  PipeEnd end_ = PipeEnd::open;
  bool reader_closed_ = false;
  std::uint64_t total_read_ = 0;
  std::uint64_t total_written_ = 0;
  // Each side has at most one waiting coroutine; a timer that never expires is its wake-up signal.
  boost::asio::steady_timer reader_wake_;
  boost::asio::steady_timer writer_wake_;
};

}  // namespace inkwire::relay
