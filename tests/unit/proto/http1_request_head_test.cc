#include "proto/http1_request_head.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

using inkwire::proto::check_request_head;
using inkwire::proto::find_request_head_end;
using inkwire::proto::RequestHeadError;
using inkwire::proto::RequestHeadFacts;

namespace {

constexpr std::size_t npos = std::string_view::npos;

// The reason a head is refused with, or "" when it is accepted (with the status on the side).
RequestHeadError refusal(std::string_view head) {
  auto r = check_request_head(head);
  if (r) return {0, ""};
  return r.error();
}

RequestHeadFacts accepted(std::string_view head) {
  auto r = check_request_head(head);
  EXPECT_TRUE(r.has_value()) << "refused: " << r.error().reason;
  return r ? *r : RequestHeadFacts{};
}

RequestHeadError bad(std::string_view reason) { return {400, reason}; }

// A GET with Host, plus `fields` (each ending in CRLF).
std::string get_with(std::string_view fields) {
  return "GET / HTTP/1.1\r\nHost: a.example\r\n" + std::string(fields) + "\r\n";
}

std::string post_with(std::string_view fields) {
  return "POST /hook HTTP/1.1\r\nHost: a.example\r\n" + std::string(fields) + "\r\n";
}

}  // namespace

// ---- find_request_head_end -----------------------------------------------------------------------

TEST(FindRequestHeadEnd, FindsCrlfCrlf) {
  const std::string bytes = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
  EXPECT_EQ(find_request_head_end(bytes), bytes.size() - 4);
}

TEST(FindRequestHeadEnd, NeedsMoreBytes) {
  EXPECT_EQ(find_request_head_end(""), npos);
  EXPECT_EQ(find_request_head_end("GET / HTTP/1.1\r\nHost: a\r\n"), npos);
  EXPECT_EQ(find_request_head_end("GET / HTTP/1.1\r\nHost: a\r\n\r"), npos);
}

TEST(FindRequestHeadEnd, FindsBareLfEndsSoTheyCanBeRefused) {
  for (const std::string_view bytes : {"GET / HTTP/1.1\nHost: a\n\nX", "GET / HTTP/1.1\r\nHost: a\n\r\nX",
                                       "GET / HTTP/1.1\r\nHost: a\r\n\nX", "GET / HTTP/1.1\nHost: a\r\n\r\nX"})
    EXPECT_EQ(find_request_head_end(bytes), bytes.size() - 1) << bytes;
}

TEST(FindRequestHeadEnd, ResumesFromAnEarlierMiss) {
  const std::string bytes = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  // Every split point: a miss over the first n bytes, then a resumed scan of the whole.
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    ASSERT_EQ(find_request_head_end(std::string_view(bytes).substr(0, n)), npos) << n;
    EXPECT_EQ(find_request_head_end(bytes, n < 2 ? 0 : n - 2), bytes.size()) << n;
  }
}

// ---- Good requests -------------------------------------------------------------------------------

TEST(CheckRequestHead, GetWithHost) {
  const std::string head = "GET /a?b=c HTTP/1.1\r\nHost: a.example:8443\r\nAccept: */*\r\n\r\n";
  const RequestHeadFacts f = accepted(head);
  EXPECT_EQ(f.method, "GET");
  EXPECT_EQ(f.target, "/a?b=c");
  EXPECT_EQ(f.host, "a.example:8443");
  EXPECT_FALSE(f.http10);
  EXPECT_FALSE(f.chunked);
  EXPECT_FALSE(f.content_length.has_value());
  EXPECT_FALSE(f.connection_close);
  EXPECT_FALSE(f.has_upgrade_websocket);
  EXPECT_FALSE(f.upgrade_h2c);
  EXPECT_FALSE(f.expect_100_continue);
  EXPECT_EQ(f.field_count, 2u);
  EXPECT_TRUE(f.persistent());
}

TEST(CheckRequestHead, PostWithContentLength) {
  // The facts' views point into the head, so it must outlive them.
  const std::string head = post_with("Content-Length: \t 1234 \r\nContent-Type: text/plain\r\n");
  const RequestHeadFacts f = accepted(head);
  EXPECT_EQ(f.method, "POST");
  ASSERT_TRUE(f.content_length.has_value());
  EXPECT_EQ(*f.content_length, 1234u);
  EXPECT_FALSE(f.chunked);
}

TEST(CheckRequestHead, LargestContentLength) {
  const RequestHeadFacts f = accepted(post_with("Content-Length: 9999999999999999999\r\n"));
  EXPECT_EQ(f.content_length, std::uint64_t{9999999999999999999u});
  EXPECT_EQ(refusal(post_with("Content-Length: 10000000000000000000\r\n")), bad("bad-content-length"));
}

TEST(CheckRequestHead, ChunkedPost) {
  const RequestHeadFacts f = accepted(post_with("Transfer-Encoding:  ChUnKeD \r\n"));
  EXPECT_TRUE(f.chunked);
  EXPECT_FALSE(f.content_length.has_value());
}

TEST(CheckRequestHead, WebSocketUpgradeFacts) {
  const RequestHeadFacts f = accepted(get_with(
      "Connection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
  EXPECT_TRUE(f.has_upgrade_websocket);
  EXPECT_TRUE(f.connection_upgrade);
  EXPECT_TRUE(f.connection_keep_alive);
  EXPECT_FALSE(f.upgrade_h2c);
}

TEST(CheckRequestHead, WebSocketUpgradeNeedsTheConnectionOption) {
  EXPECT_FALSE(accepted(get_with("Upgrade: websocket\r\n")).has_upgrade_websocket);
  EXPECT_FALSE(accepted("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n").has_upgrade_websocket);
  // Options may come in several Connection fields.
  EXPECT_TRUE(accepted(get_with("Connection: keep-alive\r\nUpgrade: websocket/13\r\nConnection: upgrade\r\n"))
                  .has_upgrade_websocket);
}

TEST(CheckRequestHead, H2cUpgradeFlagged) {
  const RequestHeadFacts f = accepted(get_with("Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                                               "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"));
  EXPECT_TRUE(f.upgrade_h2c);
  EXPECT_FALSE(f.has_upgrade_websocket);
  // Flagged without the connection option too: the edge should never pass it on.
  EXPECT_TRUE(accepted(get_with("Upgrade: foo, H2C\r\n")).upgrade_h2c);
}

TEST(CheckRequestHead, Expect100Continue) {
  const RequestHeadFacts f = accepted(post_with("Content-Length: 10\r\nExpect: 100-Continue\r\n"));
  EXPECT_TRUE(f.expect_100_continue);
  // RFC 9110 §10.1.1: ignored in HTTP/1.0.
  EXPECT_FALSE(accepted("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n").expect_100_continue);
}

TEST(CheckRequestHead, OtherExpectationIs417) {
  EXPECT_EQ(refusal(post_with("Expect: 200-ok\r\n")), (RequestHeadError{417, "unsupported-expectation"}));
  EXPECT_EQ(refusal(post_with("Expect:\r\n")), (RequestHeadError{417, "unsupported-expectation"}));
  EXPECT_EQ(refusal(post_with("Expect: 100-continue, foo\r\n")), (RequestHeadError{417, "unsupported-expectation"}));
}

TEST(CheckRequestHead, ConnectionClose) {
  const RequestHeadFacts f = accepted(get_with("Connection: CLOSE\r\n"));
  EXPECT_TRUE(f.connection_close);
  EXPECT_FALSE(f.persistent());
}

TEST(CheckRequestHead, Http10WithoutHostIsFine) {
  const RequestHeadFacts f = accepted("GET /x HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(f.http10);
  EXPECT_TRUE(f.host.empty());
  EXPECT_EQ(f.field_count, 0u);
  EXPECT_FALSE(f.persistent());
  EXPECT_TRUE(accepted("GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").persistent());
}

TEST(CheckRequestHead, EmptyValuesAndListElementsAreFine) {
  const RequestHeadFacts f =
      accepted(get_with("X-Empty:\r\nX-Blank:   \r\nConnection: ,, close ,\r\nX-Tab:\ta\tb\r\n"));
  EXPECT_TRUE(f.connection_close);
}

TEST(CheckRequestHead, ObsTextInValuesIsLeftToTheEnvelopeRules) {
  accepted(get_with("X-Name: caf\xc3\xa9\r\n"));
}

// ---- Smuggling: body framing ---------------------------------------------------------------------

TEST(CheckRequestHead, ContentLengthWithTransferEncoding) {
  EXPECT_EQ(refusal(post_with("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")),
            bad("content-length-with-transfer-encoding"));
  EXPECT_EQ(refusal(post_with("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")),
            bad("content-length-with-transfer-encoding"));
}

TEST(CheckRequestHead, DuplicateContentLength) {
  EXPECT_EQ(refusal(post_with("Content-Length: 5\r\nContent-Length: 5\r\n")), bad("duplicate-content-length"));
  EXPECT_EQ(refusal(post_with("content-length: 5\r\nCONTENT-LENGTH: 6\r\n")), bad("duplicate-content-length"));
}

TEST(CheckRequestHead, EmptyContentLength) {
  EXPECT_EQ(refusal(post_with("Content-Length:\r\n")), bad("bad-content-length"));
  EXPECT_EQ(refusal(post_with("Content-Length:   \r\n")), bad("bad-content-length"));
}

TEST(CheckRequestHead, NegativeContentLength) {
  EXPECT_EQ(refusal(post_with("Content-Length: -1\r\n")), bad("bad-content-length"));
}

TEST(CheckRequestHead, ContentLengthWithPlusSign) {
  EXPECT_EQ(refusal(post_with("Content-Length: +5\r\n")), bad("bad-content-length"));
}

TEST(CheckRequestHead, ContentLengthOtherJunk) {
  EXPECT_EQ(refusal(post_with("Content-Length: 5 5\r\n")), bad("bad-content-length"));
  EXPECT_EQ(refusal(post_with("Content-Length: 0x10\r\n")), bad("bad-content-length"));
  EXPECT_EQ(refusal(post_with("Content-Length: 5.0\r\n")), bad("bad-content-length"));
  EXPECT_EQ(refusal(post_with("Content-Length: \xd9\xa5\r\n")), bad("bad-content-length"));  // Arabic-Indic 5
}

TEST(CheckRequestHead, ContentLengthList) {
  EXPECT_EQ(refusal(post_with("Content-Length: 5, 5\r\n")), bad("content-length-list"));
  EXPECT_EQ(refusal(post_with("Content-Length: 5,\r\n")), bad("content-length-list"));
}

TEST(CheckRequestHead, TransferEncodingGzipChunked) {
  EXPECT_EQ(refusal(post_with("Transfer-Encoding: gzip, chunked\r\n")), bad("transfer-encoding-list"));
}

TEST(CheckRequestHead, TransferEncodingChunkedTwice) {
  EXPECT_EQ(refusal(post_with("Transfer-Encoding: chunked, chunked\r\n")), bad("transfer-encoding-list"));
}

TEST(CheckRequestHead, TransferEncodingWithParams) {
  EXPECT_EQ(refusal(post_with("Transfer-Encoding: chunked;x=1\r\n")), bad("transfer-encoding-params"));
  EXPECT_EQ(refusal(post_with("Transfer-Encoding: chunked;x\r\n")), bad("transfer-encoding-params"));
}

TEST(CheckRequestHead, TransferEncodingNotChunked) {
  EXPECT_EQ(refusal(post_with("Transfer-Encoding: identity\r\n")), bad("transfer-encoding-not-chunked"));
  EXPECT_EQ(refusal(post_with("Transfer-Encoding: xchunked\r\n")), bad("transfer-encoding-not-chunked"));
  EXPECT_EQ(refusal(post_with("Transfer-Encoding: \"chunked\"\r\n")), bad("transfer-encoding-not-chunked"));
  EXPECT_EQ(refusal(post_with("Transfer-Encoding:\r\n")), bad("empty-transfer-encoding"));
}

TEST(CheckRequestHead, TwoTransferEncodingFields) {
  EXPECT_EQ(refusal(post_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")),
            bad("duplicate-transfer-encoding"));
  EXPECT_EQ(refusal(post_with("Transfer-Encoding: gzip\r\ntransfer-encoding: chunked\r\n")),
            bad("transfer-encoding-not-chunked"));
}

TEST(CheckRequestHead, TransferEncodingOnHttp10) {
  EXPECT_EQ(refusal("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), bad("transfer-encoding-in-http10"));
}

// ---- Smuggling: line structure -------------------------------------------------------------------

TEST(CheckRequestHead, BareLfInRequestLine) {
  EXPECT_EQ(refusal("GET / HTTP/1.1\nHost: a\r\n\r\n"), bad("bare-lf"));
}

TEST(CheckRequestHead, BareLfInHeader) {
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"), bad("bare-lf"));
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nHost: a\n\n"), bad("bare-lf"));
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nHost: a\r\n\n"), bad("bare-lf"));
}

TEST(CheckRequestHead, LoneCr) {
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"), bad("bare-cr"));
  EXPECT_EQ(refusal("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"), bad("bare-cr"));
}

TEST(CheckRequestHead, ObsFold) {
  EXPECT_EQ(refusal(get_with("X-A: 1\r\n 2\r\n")), bad("obs-fold"));
  EXPECT_EQ(refusal(get_with("X-A: 1\r\n\tTransfer-Encoding: chunked\r\n")), bad("obs-fold"));
}

TEST(CheckRequestHead, SpaceBeforeColon) {
  EXPECT_EQ(refusal(post_with("Content-Length : 5\r\n")), bad("whitespace-before-colon"));
}

TEST(CheckRequestHead, TabBeforeColon) {
  EXPECT_EQ(refusal(post_with("Transfer-Encoding\t: chunked\r\n")), bad("whitespace-before-colon"));
}

TEST(CheckRequestHead, EmptyName) {
  EXPECT_EQ(refusal(get_with(": value\r\n")), bad("empty-field-name"));
}

TEST(CheckRequestHead, NoColon) {
  EXPECT_EQ(refusal(get_with("X-No-Colon\r\n")), bad("missing-colon"));
}

TEST(CheckRequestHead, NameNotAToken) {
  EXPECT_EQ(refusal(get_with("X Y: 1\r\n")), bad("bad-field-name"));
  EXPECT_EQ(refusal(get_with("X\"Y: 1\r\n")), bad("bad-field-name"));
  EXPECT_EQ(refusal(get_with("caf\xc3\xa9: 1\r\n")), bad("bad-field-name"));
}

TEST(CheckRequestHead, NulInValue) {
  EXPECT_EQ(refusal(get_with(std::string("X-A: a\0b\r\n", 10))), bad("nul-byte"));
}

TEST(CheckRequestHead, DelInValue) {
  EXPECT_EQ(refusal(get_with("X-A: a\x7f"
                             "b\r\n")),
            bad("bad-field-value"));
}

TEST(CheckRequestHead, OtherControlBytesInValue) {
  EXPECT_EQ(refusal(get_with("X-A: a\x01\r\n")), bad("bad-field-value"));
  EXPECT_EQ(refusal(get_with("X-A: \x1b[31m\r\n")), bad("bad-field-value"));
}

// ---- Host ----------------------------------------------------------------------------------------

TEST(CheckRequestHead, MissingHost) {
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), bad("missing-host"));
}

TEST(CheckRequestHead, TwoHosts) {
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), bad("duplicate-host"));
  EXPECT_EQ(refusal("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), bad("duplicate-host"));
}

TEST(CheckRequestHead, HostWithCharactersNoAuthorityHas) {
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nHost: a.example/x\r\n\r\n"), bad("bad-host"));
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nHost: user@a.example\r\n\r\n"), bad("bad-host"));
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), bad("bad-host"));
  EXPECT_EQ(accepted("GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n").host, "[::1]:8443");
}

// ---- Request line --------------------------------------------------------------------------------

TEST(CheckRequestHead, Http20Version) {
  EXPECT_EQ(refusal("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), (RequestHeadError{505, "http-version-not-supported"}));
  EXPECT_EQ(refusal("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), (RequestHeadError{505, "http-version-not-supported"}));
}

TEST(CheckRequestHead, LowercaseHttpVersion) {
  EXPECT_EQ(refusal("GET / http/1.1\r\nHost: a\r\n\r\n"), bad("bad-http-version"));
}

TEST(CheckRequestHead, MalformedVersions) {
  EXPECT_EQ(refusal("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), bad("bad-http-version"));
  EXPECT_EQ(refusal("GET / HTTP/11\r\nHost: a\r\n\r\n"), bad("bad-http-version"));
  EXPECT_EQ(refusal("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), bad("bad-http-version"));
  EXPECT_EQ(refusal("GET / x HTTP/1.1\r\nHost: a\r\n\r\n"), bad("bad-http-version"));
}

TEST(CheckRequestHead, DoubleSpaceInRequestLine) {
  EXPECT_EQ(refusal("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), bad("bad-request-line"));
  EXPECT_EQ(refusal("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), bad("bad-http-version"));
}

TEST(CheckRequestHead, OtherRequestLineShapes) {
  EXPECT_EQ(refusal("GET\r\nHost: a\r\n\r\n"), bad("bad-request-line"));
  EXPECT_EQ(refusal("GET /\r\nHost: a\r\n\r\n"), bad("bad-request-line"));
  EXPECT_EQ(refusal(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), bad("bad-method"));
  EXPECT_EQ(refusal("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), bad("bad-method"));
  EXPECT_EQ(refusal("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), bad("bad-method"));
  EXPECT_EQ(refusal("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n"), bad("bad-request-target"));
  EXPECT_EQ(refusal("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), bad("bad-request-target"));
  // RFC 9112 §2.2 lets a server skip empty lines before a request; the edge refuses them.
  EXPECT_EQ(refusal("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), bad("empty-request-line"));
}

// ---- The head as a whole -------------------------------------------------------------------------

TEST(CheckRequestHead, MustBeExactlyOneHead) {
  EXPECT_EQ(refusal(""), bad("incomplete-head"));
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nHost: a\r\n"), bad("incomplete-head"));
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nHost: a\r\n\r\nX"), bad("incomplete-head"));
  EXPECT_EQ(refusal("GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n"), bad("incomplete-head"));
}

TEST(CheckRequestHead, ReasonsAreKebabCase) {
  for (const std::string_view head :
       {"GET / HTTP/1.1\nHost: a\r\n\r\n", "GET / http/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/3.0\r\n\r\n"}) {
    const RequestHeadError e = refusal(head);
    ASSERT_FALSE(e.reason.empty());
    for (const char c : e.reason) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') << e.reason;
  }
}
