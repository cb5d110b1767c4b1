#pragma once
// An incremental, sans-IO HTTP/1.x request parser for the passthrough plaintext service
// (PROTOCOL.md §6.5). The head is checked by proto::check_request_head, which refuses everything
// two parsers could frame differently (the same rules the public edge applies); the body is read
// by Content-Length or de-chunked here, bounded by Http1Limits.
//
// The caller keeps the unconsumed input: each feed() gets it from its first unconsumed byte and
// says how many bytes it used up. A head is used up only once it is complete (its scan resumes
// where the last one stopped); a chunk-size line or trailer line only once it is complete (each is
// bounded, so rescanning one costs little).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "agent/plaintext_request.h"

namespace inkwire::agent {

// What the connection needs to know about a request's head besides ParsedRequest.
struct Http1HeadInfo {
  bool http10 = false;
  bool persistent = true;  // another request may follow on the connection (RFC 9112 §9.3)
  bool expect_continue = false;  // "Expect: 100-continue" on HTTP/1.1
  bool chunked = false;
  std::optional<std::uint64_t> content_length;
  bool has_body() const { return chunked || content_length.value_or(0) > 0; }
};

class Http1RequestParser {
 public:
  enum class Status {
    need_more,      // every byte given was used (or is kept for a line): feed more
    head_complete,  // reported once per request, before its body; feed again to read the body
    complete,       // request() holds the whole request
    failed,         // error() says why; the connection cannot be reused
  };

  explicit Http1RequestParser(const Http1Limits& limits) : limits_(limits) {}

  Status feed(std::string_view input, std::size_t& consumed);
  // Ready for the next request on the same connection.
  void reset();

  ParsedRequest& request() { return request_; }
  const Http1HeadInfo& head() const { return head_; }
  const RequestError& error() const { return error_; }

 private:
  enum class Phase { head, length_body, chunk_size, chunk_data, chunk_crlf, trailers, done, failed };

  Status feed_head(std::string_view input, std::size_t& consumed);
  Status fail(int status, std::string_view reason);
  // Takes up to `remaining_` body bytes from input[pos...] (the cap was checked when the length
  // or the chunk size was read).
  void take_body(std::string_view input, std::size_t& pos);
  Status parse_chunk_size(std::string_view line);

  Http1Limits limits_;
  Phase phase_ = Phase::head;
  std::size_t scanned_ = 0;  // bytes of the pending head already searched for its end
  int leading_blank_lines_ = 0;  // empty lines skipped before this request's line (RFC 9112 §2.2)
  std::uint64_t remaining_ = 0;  // of the Content-Length body or of the current chunk
  std::size_t trailer_bytes_ = 0;
  ParsedRequest request_;
  Http1HeadInfo head_;
  RequestError error_;
};

}  // namespace inkwire::agent
