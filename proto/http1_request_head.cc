#include "proto/http1_request_head.h"

#include "proto/header_rules.h"

namespace inkwire::proto {
namespace {

RequestHeadError bad(std::string_view reason) { return {400, reason}; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_ows(char c) { return c == ' ' || c == '\t'; }

// Control bytes other than HTAB, and DEL (RFC 9110 §5.5). Beast lets most of them through, and an
// agent's HTTP/2 stack resets the stream for them anyway (see is_valid_field_value).
bool is_bad_value_byte(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return (c < 0x20 && c != '\t') || c == 0x7F;
}

// uri-host [ ":" port ] (RFC 9112 §3.2 asks for 400 on an invalid Host value): the characters of
// reg-name, IP-literal and port, and nothing else. No '/', '@', '?', '#', whitespace or non-ASCII,
// which is what a Host used to confuse routing or logs would need. The structure (one port, a
// well-formed IPv6 literal) is left to the edge's routing, which matches names exactly anyway.
bool is_host_byte(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c)) return true;
  switch (c) {
    case '-': case '.': case '_': case '~':                                    // unreserved
    case '!': case '$': case '&': case '\'': case '(': case ')': case '*':
    case '+': case ',': case ';': case '=':                                    // sub-delims
    case '%': case ':': case '[': case ']':                                    // pct, port, IP-literal
      return true;
    default:
      return false;
  }
}

// Calls fn(element) for each non-empty element of a comma-separated list (RFC 9110 §5.6.1: empty
// elements are allowed and ignored), OWS-trimmed.
template <typename Fn>
void for_each_list_element(std::string_view value, Fn&& fn) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    const std::string_view element = trim_ows(value.substr(0, comma));
    if (!element.empty()) fn(element);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

// Line endings and NUL over the whole head: every LF preceded by CR, every CR followed by LF.
// Bare LF is what Beast (and many servers) accept as a line end while others do not, so a field
// hidden behind one would be seen by one parser and not another.
std::optional<RequestHeadError> check_bytes(std::string_view head) {
  for (std::size_t i = 0; i < head.size(); ++i) {
    const char c = head[i];
    if (c == '\0') return bad("nul-byte");
    if (c == '\n' && (i == 0 || head[i - 1] != '\r')) return bad("bare-lf");
    if (c == '\r' && (i + 1 == head.size() || head[i + 1] != '\n')) return bad("bare-cr");
  }
  return std::nullopt;
}

// method SP request-target SP HTTP-version, with exactly one SP each (RFC 9112 §3: the lenient
// whitespace parsing it allows is what this refuses).
std::optional<RequestHeadError> parse_request_line(std::string_view line, RequestHeadFacts& facts) {
  if (line.empty()) return bad("empty-request-line");  // leading CRLFs before a request are refused
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return bad("bad-request-line");
  const std::string_view method = line.substr(0, sp1);
  if (!is_token(method)) return bad("bad-method");
  const std::string_view rest = line.substr(sp1 + 1);
  const std::size_t sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos || sp2 == 0) return bad("bad-request-line");
  const std::string_view target = rest.substr(0, sp2);
  for (const char ch : target) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7F) return bad("bad-request-target");
  }
  // HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3).
  const std::string_view version = rest.substr(sp2 + 1);
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !is_digit(version[5]) || version[6] != '.' ||
      !is_digit(version[7]))
    return bad("bad-http-version");
  if (version == "HTTP/1.0") {
    facts.http10 = true;
  } else if (version != "HTTP/1.1") {
    return RequestHeadError{505, "http-version-not-supported"};
  }
  facts.method = method;
  facts.target = target;
  return std::nullopt;
}

// Counts and flags gathered over the field lines, for the checks that need all of them.
struct FieldTally {
  std::size_t content_length = 0;
  std::size_t transfer_encoding = 0;
  std::size_t host = 0;
  bool upgrade_websocket = false;
  bool expect_continue = false;
};

std::optional<RequestHeadError> check_content_length(std::string_view value, FieldTally& tally,
                                                     RequestHeadFacts& facts) {
  // Two fields, even with equal values, are refused: RFC 9112 §6.3 lets a recipient merge equal
  // values, and whether the parser behind does is exactly what a smuggler probes.
  if (++tally.content_length > 1) return bad("duplicate-content-length");
  const std::string_view v = trim_ows(value);
  if (v.find(',') != std::string_view::npos) return bad("content-length-list");
  // 19 digits always fit in 64 bits; nobody sends a larger body to an edge.
  if (v.empty() || v.size() > 19) return bad("bad-content-length");
  std::uint64_t n = 0;
  for (const char c : v) {
    if (!is_digit(c)) return bad("bad-content-length");
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  facts.content_length = n;
  return std::nullopt;
}

std::optional<RequestHeadError> check_transfer_encoding(std::string_view value, FieldTally& tally,
                                                        RequestHeadFacts& facts) {
  // Only a lone "chunked" is accepted. Beast takes any list whose last coding is chunked
  // ("gzip, chunked") as chunked and would then hand the edge a still-encoded body; codings the
  // edge would have to undo are not worth the ambiguity. 400 rather than RFC 9112 §6.1's 501,
  // because a client sending these is either broken or probing.
  if (++tally.transfer_encoding > 1) return bad("duplicate-transfer-encoding");
  // RFC 9112 §6.1: a 1.0 recipient cannot be assumed to understand chunked; treating the message
  // as faulty is the safe reading.
  if (facts.http10) return bad("transfer-encoding-in-http10");
  const std::string_view v = trim_ows(value);
  if (iequals_ascii(v, "chunked")) {
    facts.chunked = true;
    return std::nullopt;
  }
  if (v.empty()) return bad("empty-transfer-encoding");
  if (v.find(',') != std::string_view::npos) return bad("transfer-encoding-list");
  if (v.find(';') != std::string_view::npos) return bad("transfer-encoding-params");
  return bad("transfer-encoding-not-chunked");
}

std::optional<RequestHeadError> check_field(std::string_view name, std::string_view value, FieldTally& tally,
                                            RequestHeadFacts& facts) {
  if (iequals_ascii(name, "content-length")) return check_content_length(value, tally, facts);
  if (iequals_ascii(name, "transfer-encoding")) return check_transfer_encoding(value, tally, facts);
  if (iequals_ascii(name, "host")) {
    if (++tally.host > 1) return bad("duplicate-host");
    const std::string_view v = trim_ows(value);
    for (const char c : v)
      if (!is_host_byte(c)) return bad("bad-host");
    facts.host = v;
    return std::nullopt;
  }
  if (iequals_ascii(name, "connection")) {
    for_each_list_element(value, [&](std::string_view option) {
      if (iequals_ascii(option, "close")) facts.connection_close = true;
      if (iequals_ascii(option, "keep-alive")) facts.connection_keep_alive = true;
      if (iequals_ascii(option, "upgrade")) facts.connection_upgrade = true;
    });
    return std::nullopt;
  }
  if (iequals_ascii(name, "upgrade")) {
    // protocol-name [ "/" protocol-version ] (RFC 9110 §7.8); the version does not matter here.
    for_each_list_element(value, [&](std::string_view protocol) {
      const std::string_view protocol_name = protocol.substr(0, protocol.find('/'));
      if (iequals_ascii(protocol_name, "websocket")) tally.upgrade_websocket = true;
      if (iequals_ascii(protocol_name, "h2c")) facts.upgrade_h2c = true;
    });
    return std::nullopt;
  }
  if (iequals_ascii(name, "expect")) {
    // 100-continue is the only expectation defined (RFC 9110 §10.1.1); a server that cannot meet
    // one answers 417. Each Expect field must say exactly that.
    if (!iequals_ascii(trim_ows(value), "100-continue")) return RequestHeadError{417, "unsupported-expectation"};
    tally.expect_continue = true;
    return std::nullopt;
  }
  return std::nullopt;
}

// One field line (without its CRLF).
std::optional<RequestHeadError> check_field_line(std::string_view line, FieldTally& tally,
                                                 RequestHeadFacts& facts) {
  // obs-fold (RFC 9112 §5.2): a server must refuse or unfold it; Beast unfolds, others do not.
  if (is_ows(line.front())) return bad("obs-fold");
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return bad("missing-colon");
  const std::string_view name = line.substr(0, colon);
  if (name.empty()) return bad("empty-field-name");
  // RFC 9112 §5.1: whitespace between name and colon MUST be refused with 400; a parser that
  // trims it sees "Transfer-Encoding " as Transfer-Encoding, one that does not sees another field.
  if (is_ows(name.back())) return bad("whitespace-before-colon");
  if (!is_token(name)) return bad("bad-field-name");
  const std::string_view value = line.substr(colon + 1);
  for (const char c : value)
    if (is_bad_value_byte(c)) return bad("bad-field-value");
  return check_field(name, value, tally, facts);
}

}  // namespace

std::size_t find_request_head_end(std::string_view bytes, std::size_t from) {
  for (std::size_t i = bytes.find('\n', from); i != std::string_view::npos; i = bytes.find('\n', i + 1)) {
    if (i + 1 < bytes.size() && bytes[i + 1] == '\n') return i + 2;
    if (i + 2 < bytes.size() && bytes[i + 1] == '\r' && bytes[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

Expected<RequestHeadFacts, RequestHeadError> check_request_head(std::string_view head) {
  // One head, whole: a blank line earlier than the end (or none) means the caller cut it wrongly,
  // and checking only part of what Beast will parse would defeat the point.
  if (find_request_head_end(head) != head.size()) return unexpected(bad("incomplete-head"));
  if (auto error = check_bytes(head)) return unexpected(*error);

  // From here on every line ends with CRLF, and the last line is the empty one.
  RequestHeadFacts facts;
  std::size_t eol = head.find("\r\n");
  if (auto error = parse_request_line(head.substr(0, eol), facts)) return unexpected(*error);

  FieldTally tally;
  for (std::size_t pos = eol + 2; pos < head.size(); pos = eol + 2) {
    eol = head.find("\r\n", pos);
    const std::string_view line = head.substr(pos, eol - pos);
    if (line.empty()) break;  // the blank line, which is the end (checked above)
    ++facts.field_count;
    if (auto error = check_field_line(line, tally, facts)) return unexpected(*error);
  }

  if (tally.content_length > 0 && tally.transfer_encoding > 0)
    return unexpected(bad("content-length-with-transfer-encoding"));
  if (!facts.http10 && tally.host == 0) return unexpected(bad("missing-host"));
  facts.has_upgrade_websocket = !facts.http10 && tally.upgrade_websocket && facts.connection_upgrade;
  facts.expect_100_continue = !facts.http10 && tally.expect_continue;
  return facts;
}

}  // namespace inkwire::proto
