// libFuzzer target: arbitrary bytes as what a third party sends the edge before its request head
// ends (proto/http1_request_head.h). Besides "no crash, no sanitizer report" it checks:
//   * find_request_head_end finds the first LF followed by an empty line and nothing earlier, and a
//     scan resumed from an earlier miss (as the header describes) finds the same end;
//   * check_request_head refuses with 400/417/505 and a kebab-case reason, and refuses anything
//     that is not exactly one head;
//   * an accepted head has CRLF line ends only and no NUL, one body framing at most, and facts
//     consistent with each other; the smuggling mutations of it (a second Content-Length, a
//     Transfer-Encoding next to a Content-Length, a bare LF, an obs-fold) are refused;
//   * Boost.Beast, the parser the edge runs after the check, frames an accepted head's body the
//     same way (chunked, Content-Length) and reads the same method, target and version. This is
//     the property the check exists for: whatever passes is read one way only.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

// Header-only Beast (no BOOST_BEAST_SEPARATE_COMPILATION here; see tests/fuzz/CMakeLists.txt).
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/asio/buffer.hpp>

#include "proto/http1_request_head.h"

namespace {

using inkwire::proto::check_request_head;
using inkwire::proto::find_request_head_end;
using inkwire::proto::RequestHeadFacts;

constexpr std::size_t npos = std::string_view::npos;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool is_terminator_at(std::string_view bytes, std::size_t end) {
  if (end < 2 || end > bytes.size() || bytes[end - 1] != '\n') return false;
  return bytes[end - 2] == '\n' || (end >= 3 && bytes[end - 2] == '\r' && bytes[end - 3] == '\n');
}

void check_find(std::string_view bytes, std::size_t end) {
  if (end == npos) {
    check(bytes.find("\n\n") == npos && bytes.find("\n\r\n") == npos);
    return;
  }
  check(is_terminator_at(bytes, end));
  // Nothing ends earlier.
  check(find_request_head_end(bytes.substr(0, end - 1)) == npos);
  // A reader that missed over a prefix of n bytes and resumes finds the same end.
  for (const std::size_t n : {std::size_t{1}, end / 3, end / 2, end - 2, end - 1}) {
    if (n > end - 1) continue;
    check(find_request_head_end(bytes, n < 2 ? 0 : n - 2) == end);
  }
}

bool reason_is_kebab(std::string_view reason) {
  if (reason.empty()) return false;
  return std::all_of(reason.begin(), reason.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

bool refused(std::string_view head) { return !check_request_head(head).has_value(); }

// `head` with `line` (ending in CRLF) added as the last field.
std::string with_field(std::string_view head, std::string_view line) {
  std::string out(head.substr(0, head.size() - 2));
  out += line;
  out += "\r\n";
  return out;
}

void check_accepted(std::string_view head, const RequestHeadFacts& f) {
  // Line structure.
  std::size_t crlf = 0;
  for (std::size_t i = 0; i < head.size(); ++i) {
    check(head[i] != '\0');
    if (head[i] == '\n') check(i > 0 && head[i - 1] == '\r');
    if (head[i] == '\r') check(i + 1 < head.size() && head[i + 1] == '\n');
    if (head[i] == '\n') ++crlf;
  }
  check(crlf >= 2 && f.field_count == crlf - 2);
  check(head.substr(0, f.method.size()) == f.method && !f.method.empty());
  check(!f.target.empty() && head.substr(f.method.size() + 1, f.target.size()) == f.target);
  for (const char c : f.target) check(static_cast<unsigned char>(c) > 0x20 && c != 0x7F);

  // Facts agree with each other.
  check(!(f.chunked && f.content_length));
  if (f.http10) check(!f.chunked && !f.has_upgrade_websocket && !f.expect_100_continue);
  if (f.has_upgrade_websocket) check(f.connection_upgrade);
  if (f.persistent()) check(!f.connection_close);

  // Smuggling mutations are refused.
  check(refused(with_field(head, "Content-Length: 0")) || (!f.content_length && !f.chunked));
  if (f.content_length || f.chunked || f.http10) check(refused(with_field(head, "Transfer-Encoding: chunked")));
  check(refused(with_field(head, "Transfer-Encoding: gzip, chunked")));
  check(refused(with_field(head, "Content-Length : 1")));
  {
    std::string bare(head);
    bare.erase(head.find("\r\n"), 1);  // the request line ends with a bare LF
    check(refused(bare));
  }
  if (f.field_count > 0) {
    std::string folded(head);
    folded.insert(head.find("\r\n") + 2, " ");
    check(refused(folded));
  }
}

// Beast, as the edge configures it: no limits that would make it refuse what we checked.
void check_beast_agrees(std::string_view head, const RequestHeadFacts& f) {
  namespace http = boost::beast::http;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(UINT32_MAX);
  parser.body_limit(boost::none);
  parser.eager(false);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(head.data(), head.size()), ec);
  // Beast may be stricter in corners (it refuses some target bytes, for one); the edge then
  // answers 400 from Beast's error, which is safe. What must never happen is two readings.
  if (ec || !parser.is_header_done()) return;
  const auto& req = parser.get();
  check(parser.chunked() == f.chunked);
  const auto length = parser.content_length();
  check(length.has_value() == f.content_length.has_value());
  if (length) check(*length == *f.content_length);
  check(req.version() == (f.http10 ? 10 : 11));
  check(req.method_string() == f.method);
  check(req.target() == f.target);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Heads are bounded by the edge (header_limit); 16 KiB keeps the mutation checks fast.
  const std::string_view bytes(reinterpret_cast<const char*>(data), std::min<std::size_t>(size, 16384));
  const std::size_t end = find_request_head_end(bytes);
  check_find(bytes, end);

  const std::string_view head = end == npos ? bytes : bytes.substr(0, end);
  const auto result = check_request_head(head);
  if (end == npos) check(!result.has_value());
  if (!result) {
    const auto& e = result.error();
    check(e.status == 400 || e.status == 417 || e.status == 505);
    check(reason_is_kebab(e.reason));
    return 0;
  }
  check_accepted(head, *result);
  check_beast_agrees(head, *result);
  return 0;
}
