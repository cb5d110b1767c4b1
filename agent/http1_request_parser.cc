#include "agent/http1_request_parser.h"

#include <algorithm>

#include "proto/http1_request_head.h"

namespace inkwire::agent {
namespace {

// A chunk-size line (size and extensions) longer than this is refused: real clients send a few
// hex digits, and the bound keeps a line that never ends from being buffered and rescanned.
constexpr std::size_t kMaxChunkLine = 4096;
// Blank lines tolerated before a request line (RFC 9112 §2.2: a server SHOULD ignore at least one,
// sent by old clients after a POST body).
constexpr int kMaxLeadingBlankLines = 4;
// Pre-allocating a Content-Length body saves reallocations, but only up to this much: the client
// may announce a large body and then send nothing.
constexpr std::uint64_t kMaxBodyReserve = 1024 * 1024;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Control bytes other than HTAB, and DEL: never valid in a chunk extension or a trailer field.
bool has_bad_byte(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return (c < 0x20 && c != '\t') || c == 0x7F;
  });
}

}  // namespace

void Http1RequestParser::reset() {
  phase_ = Phase::head;
  scanned_ = 0;
  leading_blank_lines_ = 0;
  remaining_ = 0;
  trailer_bytes_ = 0;
  request_ = ParsedRequest{};
  head_ = Http1HeadInfo{};
  error_ = RequestError{};
}

Http1RequestParser::Status Http1RequestParser::fail(int status, std::string_view reason) {
  phase_ = Phase::failed;
  error_ = RequestError{status, reason};
  return Status::failed;
}

Http1RequestParser::Status Http1RequestParser::feed_head(std::string_view input, std::size_t& consumed) {
  // Counted across feed() calls: how the bytes were cut must not change how many are skipped
  // (http1_request_parser_fuzz found "\r\n" x 6 refused whole but skipped in pieces).
  while (leading_blank_lines_ < kMaxLeadingBlankLines && scanned_ == 0 && input.starts_with("\r\n")) {
    input.remove_prefix(2);
    consumed += 2;
    ++leading_blank_lines_;
  }
  const std::size_t end = proto::find_request_head_end(input, scanned_);
  if (end == std::string_view::npos) {
    if (input.size() > limits_.max_header_bytes) return fail(431, "request-head-too-large");
    scanned_ = input.size() < 2 ? 0 : input.size() - 2;
    return Status::need_more;
  }
  if (end > limits_.max_header_bytes) return fail(431, "request-head-too-large");
  const std::string_view head = input.substr(0, end);
  auto checked = proto::check_request_head(head);
  if (!checked) return fail(checked.error().status, checked.error().reason);
  const proto::RequestHeadFacts& facts = *checked;
  request_.method = std::string(facts.method);
  request_.path = std::string(facts.target);
  request_.is_websocket = facts.has_upgrade_websocket;
  request_.headers.reserve(facts.field_count);
  // check_request_head refused every malformed line: each one here is `name ":" value` with CRLF.
  for (std::size_t pos = head.find("\r\n") + 2; pos < head.size();) {
    const std::size_t eol = head.find("\r\n", pos);
    const std::string_view line = head.substr(pos, eol - pos);
    if (line.empty()) break;
    const std::size_t colon = line.find(':');
    request_.headers.push_back(
        {proto::lowercase_ascii(line.substr(0, colon)), std::string(proto::trim_ows(line.substr(colon + 1)))});
    pos = eol + 2;
  }
  head_.http10 = facts.http10;
  head_.persistent = facts.persistent();
  head_.expect_continue = facts.expect_100_continue;
  head_.chunked = facts.chunked;
  head_.content_length = facts.content_length;
  consumed += end;
  scanned_ = 0;
  if (facts.content_length && *facts.content_length > limits_.max_body_bytes) {
    return fail(413, "request-body-too-large");
  }
  if (facts.chunked) {
    phase_ = Phase::chunk_size;
  } else if (facts.content_length.value_or(0) > 0) {
    remaining_ = *facts.content_length;
    request_.body.reserve(static_cast<std::size_t>(std::min(remaining_, kMaxBodyReserve)));
    phase_ = Phase::length_body;
  } else {
    phase_ = Phase::done;
  }
  return Status::head_complete;
}

void Http1RequestParser::take_body(std::string_view input, std::size_t& pos) {
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size() - pos));
  request_.body.append(input.data() + pos, n);
  pos += n;
  remaining_ -= n;
}

Http1RequestParser::Status Http1RequestParser::parse_chunk_size(std::string_view line) {
  std::size_t digits = 0;
  std::uint64_t size = 0;
  for (; digits < line.size() && hex_value(line[digits]) >= 0; ++digits) {
    // 15 hex digits already exceed any body cap; more could overflow.
    if (digits == 15) return fail(413, "request-body-too-large");
    size = size * 16 + static_cast<std::uint64_t>(hex_value(line[digits]));
  }
  if (digits == 0) return fail(400, "bad-chunk-size");
  // chunk-ext = *( BWS ";" ... ) (RFC 9112 §7.1.1): ignored, but it must start with ';' and carry
  // no control bytes.
  std::string_view ext = line.substr(digits);
  if (has_bad_byte(ext)) return fail(400, "bad-chunk-extension");
  ext = proto::trim_ows(ext);
  if (!ext.empty() && ext.front() != ';') return fail(400, "bad-chunk-size");
  if (size == 0) {
    phase_ = Phase::trailers;
    return Status::need_more;
  }
  if (request_.body.size() + size > limits_.max_body_bytes) return fail(413, "request-body-too-large");
  remaining_ = size;
  phase_ = Phase::chunk_data;
  return Status::need_more;
}

Http1RequestParser::Status Http1RequestParser::feed(std::string_view input, std::size_t& consumed) {
  consumed = 0;
  if (phase_ == Phase::head) return feed_head(input, consumed);
  std::size_t pos = 0;
  for (;;) {
    switch (phase_) {
      case Phase::head:  // not reached: a request's head is parsed once, above
      case Phase::failed:
        return Status::failed;
      case Phase::done:
        consumed = pos;
        return Status::complete;
      case Phase::length_body:
      case Phase::chunk_data:
        take_body(input, pos);
        if (remaining_ > 0) {
          consumed = pos;
          return Status::need_more;
        }
        phase_ = phase_ == Phase::length_body ? Phase::done : Phase::chunk_crlf;
        break;
      case Phase::chunk_crlf:
        if (input.size() - pos < 2) {
          // A lone '\r' waits for its '\n'; anything else is already wrong.
          if (input.size() > pos && input[pos] != '\r') return fail(400, "bad-chunk-end");
          consumed = pos;
          return Status::need_more;
        }
        if (input.substr(pos, 2) != "\r\n") return fail(400, "bad-chunk-end");
        pos += 2;
        phase_ = Phase::chunk_size;
        break;
      case Phase::chunk_size: {
        const std::size_t eol = input.find("\r\n", pos);
        if (eol == std::string_view::npos) {
          if (input.size() - pos > kMaxChunkLine) return fail(400, "chunk-line-too-long");
          consumed = pos;
          return Status::need_more;
        }
        if (eol - pos > kMaxChunkLine) return fail(400, "chunk-line-too-long");
        const std::string_view line = input.substr(pos, eol - pos);
        pos = eol + 2;
        if (parse_chunk_size(line) == Status::failed) return Status::failed;
        break;
      }
      case Phase::trailers: {
        // Trailer fields are read and dropped: the upstream request carries a Content-Length, and
        // nothing the agent forwards needs them.
        const std::size_t eol = input.find("\r\n", pos);
        const std::size_t line_size = eol == std::string_view::npos ? input.size() - pos : eol - pos;
        if (trailer_bytes_ + line_size > limits_.max_header_bytes) return fail(431, "trailers-too-large");
        if (eol == std::string_view::npos) {
          consumed = pos;
          return Status::need_more;
        }
        const std::string_view line = input.substr(pos, line_size);
        pos = eol + 2;
        if (line.empty()) {
          phase_ = Phase::done;
          break;
        }
        trailer_bytes_ += line.size() + 2;
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || !proto::is_token(line.substr(0, colon)) || has_bad_byte(line)) {
          return fail(400, "bad-trailer");
        }
        break;
      }
    }
  }
}

}  // namespace inkwire::agent
