// The passthrough plaintext service's request parsing (PROTOCOL.md §6.5) against the SDK's
// conformance vectors (protocol-fixtures/h1_envelope_reference, h2_transcode_reference), the
// incremental HTTP/1.1 parser's framing and limits, and the upstream request builder (§6.3 with
// §6.5's "no X-Forwarded-For"). Pure: no sockets.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "agent/http1_request_parser.h"
#include "agent/plaintext_request.h"
#include "agent/upstream_request_builder.h"
#include "common/encoding.h"
#include "proto/forward_target.h"

namespace inkwire::agent {
namespace {

namespace json = boost::json;
using proto::HeaderField;

const std::string kFixtures = INKWIRE_TESTDATA_DIR "/protocol-fixtures";

json::object load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(text.str(), ec);
  EXPECT_FALSE(ec) << path << ": " << ec.message();
  return v.is_object() ? v.as_object() : json::object{};
}

std::vector<HeaderField> field_list(const json::value& v) {
  std::vector<HeaderField> out;
  for (const auto& pair : v.as_array()) {
    const auto& p = pair.as_array();
    out.push_back({std::string(p.at(0).as_string()), std::string(p.at(1).as_string())});
  }
  return out;
}

std::vector<std::string> fixture_files(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(kFixtures + "/" + dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// -------------------------------------------------------------------------------- the fixtures

TEST(PlaintextRequestFixtures, Http1EnvelopeReference) {
  const auto files = fixture_files("h1_envelope_reference");
  ASSERT_EQ(files.size(), 2u);
  for (const auto& file : files) {
    SCOPED_TRACE(file);
    const json::object fixture = load(file);
    const std::string raw(fixture.at("input_raw_h1").as_string());
    const json::object& expected = fixture.at("expected_dispatch_request").as_object();
    auto parsed = parse_http1_request(raw, Http1Limits{});
    ASSERT_TRUE(parsed) << parsed.error().reason;
    EXPECT_EQ(parsed->method, expected.at("method").as_string());
    EXPECT_EQ(parsed->path, expected.at("path").as_string());
    EXPECT_EQ(parsed->is_websocket, expected.at("is_websocket").as_bool());
    EXPECT_EQ(parsed->headers, field_list(expected.at("headers")));
    std::string body;
    if (expected.contains("body_bytes_b64")) {
      auto decoded = base64_decode(std::string(expected.at("body_bytes_b64").as_string()));
      ASSERT_TRUE(decoded);
      body = *decoded;
    }
    EXPECT_EQ(parsed->body, body);

    // The same bytes fed one at a time, as a slow client sends them, give the same request.
    Http1RequestParser parser{Http1Limits{}};
    std::string buffer;
    bool complete = false;
    for (char c : raw) {
      buffer += c;
      for (;;) {
        std::size_t used = 0;
        const auto status = parser.feed(buffer, used);
        buffer.erase(0, used);
        ASSERT_NE(status, Http1RequestParser::Status::failed) << parser.error().reason;
        if (status == Http1RequestParser::Status::complete) complete = true;
        if (status != Http1RequestParser::Status::head_complete) break;
      }
    }
    ASSERT_TRUE(complete);
    EXPECT_TRUE(buffer.empty());
    EXPECT_EQ(parser.request().headers, parsed->headers);
    EXPECT_EQ(parser.request().body, body);
  }
}

TEST(PlaintextRequestFixtures, H2TranscodeReference) {
  const auto files = fixture_files("h2_transcode_reference");
  ASSERT_EQ(files.size(), 1u);
  for (const auto& file : files) {
    SCOPED_TRACE(file);
    const json::object fixture = load(file);
    std::vector<HeaderField> fields = field_list(fixture.at("input_h2_pseudo_headers"));
    for (auto& f : field_list(fixture.at("input_h2_regular_headers"))) fields.push_back(std::move(f));
    const json::object& expected = fixture.at("expected_dispatch_request").as_object();
    EXPECT_EQ(expected.at("transport").as_string(), "h2");

    auto check = [&](const ParsedRequest& parsed) {
      EXPECT_EQ(parsed.method, expected.at("method").as_string());
      EXPECT_EQ(parsed.path, expected.at("path").as_string());
      EXPECT_EQ(parsed.is_websocket, expected.at("is_websocket").as_bool());
      EXPECT_TRUE(parsed.body.empty());
      // A subset check, as the fixture says.
      for (const auto& want : field_list(expected.at("headers_must_contain"))) {
        EXPECT_NE(std::find(parsed.headers.begin(), parsed.headers.end(), want), parsed.headers.end())
            << want.name << ": " << want.value;
      }
    };
    auto parsed = parse_h2_request(fields);
    ASSERT_TRUE(parsed) << parsed.error().reason;
    check(*parsed);

    // The same request as proto::H2Session reports it.
    proto::H2RequestHeaders session_view;
    for (const auto& f : fields) {
      if (f.name == ":method") session_view.method = f.value;
      else if (f.name == ":scheme") session_view.scheme = f.value;
      else if (f.name == ":authority") session_view.authority = f.value;
      else if (f.name == ":path") session_view.path = f.value;
      else session_view.headers.push_back({f.name, f.value});
    }
    auto from_session = parse_h2_request(h2_request_fields(session_view));
    ASSERT_TRUE(from_session);
    check(*from_session);
    EXPECT_EQ(from_session->headers, parsed->headers);
  }
}

// ------------------------------------------------------------------------- HTTP/1.1 framing

Expected<ParsedRequest, RequestError> parse(std::string_view raw, Http1Limits limits = {}) {
  return parse_http1_request(raw, limits);
}

TEST(Http1RequestParser, ContentLengthBodyAndPipelining) {
  const std::string raw =
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "GET /b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n";
  Http1RequestParser parser{Http1Limits{}};
  std::string_view rest = raw;
  std::size_t used = 0;
  EXPECT_EQ(parser.feed(rest, used), Http1RequestParser::Status::head_complete);
  rest.remove_prefix(used);
  EXPECT_TRUE(parser.head().persistent);
  EXPECT_EQ(parser.head().content_length, 5u);
  EXPECT_EQ(parser.feed(rest, used), Http1RequestParser::Status::complete);
  rest.remove_prefix(used);
  EXPECT_EQ(parser.request().body, "hello");
  parser.reset();
  EXPECT_EQ(parser.feed(rest, used), Http1RequestParser::Status::head_complete);
  rest.remove_prefix(used);
  EXPECT_EQ(parser.feed(rest, used), Http1RequestParser::Status::complete);
  rest.remove_prefix(used);
  EXPECT_EQ(parser.request().path, "/b?q=1");
  EXPECT_TRUE(rest.empty());
}

TEST(Http1RequestParser, ChunkExtensionsAndTrailers) {
  auto parsed = parse(
      "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;name=value\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Checksum: 1\r\n\r\n");
  ASSERT_TRUE(parsed) << parsed.error().reason;
  EXPECT_EQ(parsed->body, "abc0123456789");
  // Trailers are read and dropped; the head's fields are all that is kept.
  EXPECT_EQ(parsed->headers.size(), 2u);
}

TEST(Http1RequestParser, ConnectionOptionsAndVersions) {
  Http1RequestParser parser{Http1Limits{}};
  std::size_t used = 0;
  ASSERT_EQ(parser.feed("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", used),
            Http1RequestParser::Status::head_complete);
  EXPECT_FALSE(parser.head().persistent);
  parser.reset();
  ASSERT_EQ(parser.feed("GET / HTTP/1.0\r\n\r\n", used), Http1RequestParser::Status::head_complete);
  EXPECT_TRUE(parser.head().http10);
  EXPECT_FALSE(parser.head().persistent);
  parser.reset();
  ASSERT_EQ(parser.feed("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", used),
            Http1RequestParser::Status::head_complete);
  EXPECT_TRUE(parser.head().expect_continue);
  EXPECT_TRUE(parser.head().has_body());
}

TEST(Http1RequestParser, WebSocketUpgradeIsFlagged) {
  auto parsed = parse(
      "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
  ASSERT_TRUE(parsed);
  EXPECT_TRUE(parsed->is_websocket);
  // Without the upgrade connection option it is an ordinary request (RFC 9110 §7.8).
  auto plain = parse("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->is_websocket);
}

TEST(Http1RequestParser, LeadingBlankLinesAreSkipped) {
  auto parsed = parse("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(parsed) << parsed.error().reason;
  EXPECT_EQ(parsed->path, "/");
}

TEST(Http1RequestParser, BodiesOverTheCapAre413) {
  Http1Limits limits;
  limits.max_body_bytes = 10;
  auto announced = parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", limits);
  ASSERT_FALSE(announced);
  EXPECT_EQ(announced.error(), (RequestError{413, "request-body-too-large"}));
  auto at_cap = parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789", limits);
  ASSERT_TRUE(at_cap);
  auto chunked = parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n",
                       limits);
  ASSERT_FALSE(chunked);
  EXPECT_EQ(chunked.error().status, 413);
  auto huge_chunk = parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", limits);
  ASSERT_FALSE(huge_chunk);
  EXPECT_EQ(huge_chunk.error().status, 413);
}

TEST(Http1RequestParser, MalformedRequestsAreRefused) {
  struct Case {
    std::string raw;
    int status;
  };
  const Case cases[] = {
      {"GET / HTTP/1.1\nHost: x\n\n", 400},                                                    // bare LF
      {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n\r\n", 400},                                                          // no Host
      {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
      {"GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", 417},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},          // bad size
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 400},    // no CRLF
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\nabc\r\n", 400},   // bad ext
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", 400},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.raw);
    auto parsed = parse(c.raw);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().status, c.status) << parsed.error().reason;
  }
}

TEST(Http1RequestParser, HeadAndLinesAreBounded) {
  Http1Limits limits;
  limits.max_header_bytes = 256;
  Http1RequestParser parser{limits};
  std::size_t used = 0;
  const std::string big = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(300, 'a');
  EXPECT_EQ(parser.feed(big, used), Http1RequestParser::Status::failed);
  EXPECT_EQ(parser.error().status, 431);

  Http1RequestParser chunks{Http1Limits{}};
  ASSERT_EQ(chunks.feed("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", used),
            Http1RequestParser::Status::head_complete);
  const std::string endless_line = "1;" + std::string(5000, 'e');
  EXPECT_EQ(chunks.feed(endless_line, used), Http1RequestParser::Status::failed);
  EXPECT_EQ(chunks.error().reason, "chunk-line-too-long");
}

TEST(Http1RequestParser, IncompleteInputAsksForMore) {
  auto parsed = parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().reason, "incomplete-request");
}

// ------------------------------------------------------------------------------- HTTP/2 lists

TEST(H2RequestParsing, RefusesMalformedLists) {
  const std::vector<HeaderField> no_method = {{":scheme", "https"}, {":path", "/"}};
  EXPECT_FALSE(parse_h2_request(no_method));
  const std::vector<HeaderField> late_pseudo = {{":method", "GET"}, {"accept", "*/*"}, {":path", "/"}};
  EXPECT_FALSE(parse_h2_request(late_pseudo));
  const std::vector<HeaderField> no_path = {{":method", "GET"}, {":scheme", "https"}};
  EXPECT_FALSE(parse_h2_request(no_path));
  const std::vector<HeaderField> twice = {{":method", "GET"}, {":method", "GET"}, {":path", "/"}};
  EXPECT_FALSE(parse_h2_request(twice));
}

TEST(H2RequestParsing, ExtendedConnectWebSocket) {
  const std::vector<HeaderField> fields = {{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
                                           {":authority", "a.test"}, {":path", "/chat"}, {"sec-websocket-version", "13"}};
  auto parsed = parse_h2_request(fields);
  ASSERT_TRUE(parsed);
  EXPECT_TRUE(parsed->is_websocket);
  EXPECT_EQ(parsed->path, "/chat");
}

// ------------------------------------------------------------------ the upstream request (§6.3)

proto::ForwardTarget target(std::string_view url) {
  auto parsed = proto::parse_forward_target(url, false);
  EXPECT_TRUE(parsed) << parsed.error();
  return *parsed;
}

TEST(UpstreamRequestBuilder, PassthroughInjectionWithoutClientAddress) {
  const std::vector<HeaderField> headers = {
      {":authority", "pub.example"}, {"host", "pub.example"}, {"user-agent", "probe/1"}, {"connection", "keep-alive"},
      {"transfer-encoding", "chunked"}, {"x-forwarded-for", "6.6.6.6"}, {"forwarded", "for=6.6.6.6"},
      {"x-forwarded-host", "evil"}, {"content-length", "5"}, {"expect", "100-continue"}, {"te", "trailers"},
      {"cookie", "a=1"}, {"accept", "*/*"}, {"cookie", "b=2"}};
  UpstreamRequestInput input;
  input.method = "POST";
  input.path = "/hook?x=1";
  input.headers = headers;
  input.body = "hello";
  input.public_host = "pub.example";
  const UpstreamRequest request = build_upstream_request(target("http://127.0.0.1:8080/api/"), std::move(input));
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/api/hook?x=1");
  const std::vector<HeaderField> want = {{"Host", "127.0.0.1:8080"},      {"X-Forwarded-Host", "pub.example"},
                                         {"X-Forwarded-Proto", "https"},   {"user-agent", "probe/1"},
                                         {"cookie", "a=1; b=2"},           {"accept", "*/*"}};
  EXPECT_EQ(request.headers, want);
  EXPECT_TRUE(request.send_body);
  EXPECT_EQ(request.body, "hello");
}

TEST(UpstreamRequestBuilder, EdgeModeAddsTheClientAddress) {
  UpstreamRequestInput input;
  input.method = "GET";
  input.path = "hook";
  input.public_host = "pub.example";
  input.forwarded_for = "2001:db8::1";
  const UpstreamRequest request = build_upstream_request(target("http://localhost"), std::move(input));
  EXPECT_EQ(request.target, "/hook");
  ASSERT_EQ(request.headers.size(), 5u);
  EXPECT_EQ(request.headers[3], (HeaderField{"X-Forwarded-For", "2001:db8::1"}));
  EXPECT_EQ(request.headers[4], (HeaderField{"Forwarded", "for=\"[2001:db8::1]\""}));
  EXPECT_FALSE(request.send_body);  // TS sends no body with GET and HEAD
}

}  // namespace
}  // namespace inkwire::agent
