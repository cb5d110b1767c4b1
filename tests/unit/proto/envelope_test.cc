// Envelope building (PROTOCOL.md §4.6), response-post mapping (§4.7), Set-Cookie splitting, the
// WebSocket accept helper and the §4.1 header rules they share.
#include "proto/envelope.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "proto/header_rules.h"
#include "proto/protocol_constants.h"
#include "proto/request_target.h"
#include "proto/response_post.h"
#include "proto/set_cookie.h"
#include "proto/ws_handshake.h"

namespace {

using namespace inkwire::proto;
using Headers = std::vector<std::pair<std::string, std::string>>;
using Code = EnvelopeError::Code;

// §4.1, checked independently of agent_header_list_error: what hyper-h2 and Node accept.
void expect_agent_safe(const std::vector<HeaderField>& fields) {
  std::size_t bytes = std::string_view(":status").size() + 3 + 32;
  for (const HeaderField& f : fields) {
    SCOPED_TRACE(f.name);
    EXPECT_FALSE(f.name.empty());
    for (char c : f.name) EXPECT_FALSE(c >= 'A' && c <= 'Z') << "uppercase in name";
    EXPECT_TRUE(is_token(f.name));
    EXPECT_EQ(f.value.find_first_of(std::string("\r\n\0", 3)), std::string::npos);
    if (!f.value.empty()) {
      EXPECT_NE(f.value.front(), ' ');
      EXPECT_NE(f.value.front(), '\t');
      EXPECT_NE(f.value.back(), ' ');
      EXPECT_NE(f.value.back(), '\t');
    }
    EXPECT_TRUE(is_valid_utf8(f.value));
    for (std::string_view banned : {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"})
      EXPECT_NE(f.name, banned);
    if (f.name == "te") {
      EXPECT_EQ(f.value, "trailers");
    }
    bytes += f.name.size() + f.value.size() + 32;
  }
  EXPECT_LE(bytes, 65536u);
  EXPECT_LT(fields.size() + 1, 128u) << "fields including :status";
  EXPECT_EQ(agent_header_list_error(fields), "");
}

InboundRequest get_request(Headers headers = {}) {
  return InboundRequest{"GET", "/hooks/1?x=y", std::move(headers), "203.0.113.7", "demo.tunnels.example"};
}

// Builds and, on success, asserts the §4.1 invariants on the result.
inkwire::Expected<std::vector<HeaderField>, EnvelopeError> build(const InboundRequest& r,
                                                                 RouteKind kind = RouteKind::webhook,
                                                                 const EnvelopeLimits& limits = {},
                                                                 std::string_view bridge_id = "") {
  if (bridge_id.empty() && kind != RouteKind::webhook) bridge_id = "bridge-1";
  auto out = build_envelope_headers(r, kind, "req-1", bridge_id, limits);
  if (out) expect_agent_safe(*out);
  return out;
}

std::vector<HeaderField> forwarded(const std::vector<HeaderField>& fields) {
  std::vector<HeaderField> out;
  for (const auto& f : fields)
    if (f.name.starts_with(kInkboxForwardedHeaderPrefix)) out.push_back(f);
  return out;
}

std::vector<std::string> values_of(const std::vector<HeaderField>& fields, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& f : fields)
    if (f.name == name) out.push_back(f.value);
  return out;
}

std::optional<std::string> value_of(const std::vector<HeaderField>& fields, std::string_view name) {
  auto v = values_of(fields, name);
  if (v.empty()) return std::nullopt;
  EXPECT_EQ(v.size(), 1u) << name;
  return v.front();
}

// ---------------------------------------------------------------------------------------------
// Meta headers

TEST(Envelope, WebhookMetaHeadersComeFirstInOrder) {
  auto out = build(get_request({{"Accept", "text/plain"}}));
  ASSERT_TRUE(out);
  const std::vector<HeaderField> expected = {
      {"inkbox-request-id", "req-1"},
      {"inkbox-route-kind", "webhook"},
      {"inkbox-method", "GET"},
      {"inkbox-path", "/hooks/1?x=y"},
      {"inkbox-sni-host", "demo.tunnels.example"},
      {"inkbox-forwarded-for", "203.0.113.7"},
      {"inkbox-h-accept", "text/plain"},
      {"inkbox-h-accept-encoding", "identity"},
  };
  EXPECT_EQ(*out, expected);
}

TEST(Envelope, MethodIsForwardedAsReceived) {
  InboundRequest r = get_request();
  r.method = "PATCH";
  auto out = build(r);
  ASSERT_TRUE(out);
  EXPECT_EQ(value_of(*out, "inkbox-method"), "PATCH");
}

TEST(Envelope, PathIsForwardedRawNotNormalised) {
  InboundRequest r = get_request();
  r.target = "/a/./b/../%7Euser//x?q=%41&r=50%";
  auto out = build(r);
  ASSERT_TRUE(out);
  EXPECT_EQ(value_of(*out, "inkbox-path"), "/a/./b/../%7Euser//x?q=%41&r=50%");
}

TEST(Envelope, WsUpgradeSaysGetCarriesWsIdAndKeepsTheOfferedSubprotocols) {
  InboundRequest r = get_request({
      {"Host", "demo.tunnels.example"},
      {"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Extensions", "permessage-deflate"},
      {"Sec-WebSocket-Protocol", "chat, superchat"},
      {"Origin", "https://example.org"},
  });
  auto out = build(r, RouteKind::ws_upgrade, {}, "ws-42");
  ASSERT_TRUE(out);
  EXPECT_EQ(value_of(*out, "inkbox-route-kind"), "ws-upgrade");
  EXPECT_EQ(value_of(*out, "inkbox-method"), "GET");
  EXPECT_EQ(value_of(*out, "inkbox-ws-id"), "ws-42");
  EXPECT_FALSE(value_of(*out, "inkbox-tcp-id"));
  const std::vector<HeaderField> expected = {
      {"inkbox-h-sec-websocket-protocol", "chat, superchat"},
      {"inkbox-h-origin", "https://example.org"},
      {"inkbox-h-accept-encoding", "identity"},
  };
  EXPECT_EQ(forwarded(*out), expected);
}

TEST(Envelope, WsUpgradeFromHttp2ExtendedConnectStillSaysGet) {
  InboundRequest r = get_request({{":method", "CONNECT"}, {":protocol", "websocket"}, {"sec-websocket-version", "13"}});
  r.method = "CONNECT";
  auto out = build(r, RouteKind::ws_upgrade);
  ASSERT_TRUE(out);
  EXPECT_EQ(value_of(*out, "inkbox-method"), "GET");
}

TEST(Envelope, WsUpgradeRefusesOtherMethods) {
  InboundRequest r = get_request();
  r.method = "POST";
  auto out = build(r, RouteKind::ws_upgrade);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, Code::method_not_allowed);
  EXPECT_EQ(out.error().http_status, 405);
}

TEST(Envelope, TcpStreamCarriesOnlyIdsSniAndPeer) {
  // Passthrough: nothing of the request is parsed, so method, target and headers are ignored even
  // when they would be refused for an HTTP route.
  InboundRequest r{"", "", {{"Bad\r\n", "x\r\n"}}, "198.51.100.2", "raw.tunnels.example"};
  auto out = build(r, RouteKind::tcp_stream, {}, "tcp-7");
  ASSERT_TRUE(out);
  const std::vector<HeaderField> expected = {
      {"inkbox-request-id", "req-1"},
      {"inkbox-route-kind", "tcp-stream"},
      {"inkbox-tcp-id", "tcp-7"},
      {"inkbox-sni-host", "raw.tunnels.example"},
      {"inkbox-forwarded-for", "198.51.100.2"},
  };
  EXPECT_EQ(*out, expected);
}

TEST(Envelope, ForwardedForIsOnePlainAddress) {
  const std::vector<std::pair<std::string, std::optional<std::string>>> cases = {
      {"203.0.113.7", "203.0.113.7"},
      {"2001:DB8::1", "2001:db8::1"},      // IPv6 without brackets, canonical text
      {"[2001:db8::1]", "2001:db8::1"},    // brackets stripped
      {"::1", "::1"},
      {"::ffff:192.0.2.1", "192.0.2.1"},   // dual-stack listener: the IPv4 client
      {"fe80::1%eth0", "fe80::1"},         // zone ids mean nothing to the agent
      {"", std::nullopt},
      {"not-an-ip", std::nullopt},
      {"203.0.113.7:443", std::nullopt},
      {"1.2.3.4\r\nx: y", std::nullopt},
  };
  for (const auto& [in, want] : cases) {
    SCOPED_TRACE(in);
    InboundRequest r = get_request();
    r.client_ip = in;
    auto out = build(r);
    ASSERT_TRUE(out);
    EXPECT_EQ(value_of(*out, "inkbox-forwarded-for"), want);
  }
}

TEST(Envelope, SniHostIsLowercasedOrLeftOut) {
  InboundRequest r = get_request();
  r.sni_host = "Demo.Tunnels.EXAMPLE";
  auto out = build(r);
  ASSERT_TRUE(out);
  EXPECT_EQ(value_of(*out, "inkbox-sni-host"), "demo.tunnels.example");
  for (std::string bad : {std::string(""), std::string("bad host"), std::string("h\xC3\xA9.example"), std::string(300, 'a')}) {
    r.sni_host = bad;
    out = build(r);
    ASSERT_TRUE(out);
    EXPECT_FALSE(value_of(*out, "inkbox-sni-host"));
  }
}

TEST(Envelope, IdsMustBeUrlPathSafe) {
  InboundRequest r = get_request();
  for (std::string_view bad : {"", "a/b", "a b", "..", "a?b", "%41"}) {
    auto out = build_envelope_headers(r, RouteKind::webhook, bad, "", {});
    ASSERT_FALSE(out) << bad;
    EXPECT_EQ(out.error().code, Code::internal);
    EXPECT_EQ(out.error().http_status, 500);
  }
  EXPECT_TRUE(build_envelope_headers(r, RouteKind::webhook, "0b7c1a4e-9d7f-4c1e-8f43-2a6f1f0c9e11", "", {}));
  EXPECT_TRUE(build_envelope_headers(r, RouteKind::webhook, std::string(128, 'a'), "", {}));
  EXPECT_FALSE(build_envelope_headers(r, RouteKind::webhook, std::string(129, 'a'), "", {}));
  // The bridge id is required for ws-upgrade and tcp-stream, unused for webhook.
  EXPECT_FALSE(build_envelope_headers(r, RouteKind::ws_upgrade, "req-1", "", {}));
  EXPECT_FALSE(build_envelope_headers(r, RouteKind::tcp_stream, "req-1", "x/y", {}));
  EXPECT_TRUE(build_envelope_headers(r, RouteKind::webhook, "req-1", "ignored / here", {}));
}

// ---------------------------------------------------------------------------------------------
// Forwarded headers, rules 1–7

TEST(Envelope, NamesAreLowercasedAndRepeatedFieldsStaySeparateInOrder) {
  auto out = build(get_request({
      {"X-Trace", "one"},
      {"Accept", "a/b"},
      {"x-TRACE", "two"},
      {"Via", "1.1 a"},
      {"X-Trace", "three"},
  }));
  ASSERT_TRUE(out);
  const std::vector<HeaderField> expected = {
      {"inkbox-h-x-trace", "one"},   {"inkbox-h-accept", "a/b"},   {"inkbox-h-x-trace", "two"},
      {"inkbox-h-via", "1.1 a"},     {"inkbox-h-x-trace", "three"}, {"inkbox-h-accept-encoding", "identity"},
  };
  EXPECT_EQ(forwarded(*out), expected);
}

TEST(Envelope, CookiesFromSeveralFieldsBecomeOneJoinedField) {
  // HTTP/2 clients send one cookie-pair per field (RFC 9113 §8.2.3).
  auto out = build(get_request({
      {"x-first", "1"},
      {"cookie", "a=1"},
      {"x-between", "2"},
      {"Cookie", "  b=2 "},
      {"cookie", ""},
      {"cookie", "c=3; d=4"},
  }));
  ASSERT_TRUE(out);
  const std::vector<HeaderField> expected = {
      {"inkbox-h-x-first", "1"},
      {"inkbox-h-cookie", "a=1; b=2; c=3; d=4"},  // at the first cookie's place
      {"inkbox-h-x-between", "2"},
      {"inkbox-h-accept-encoding", "identity"},
  };
  EXPECT_EQ(forwarded(*out), expected);
}

TEST(Envelope, NoCookieFieldWithoutCookies) {
  auto out = build(get_request({{"cookie", ""}, {"cookie", "  "}}));
  ASSERT_TRUE(out);
  EXPECT_TRUE(values_of(*out, "inkbox-h-cookie").empty());
}

TEST(Envelope, HostPseudoHeadersAndTheRequestHopByHopSetAreDropped) {
  Headers h = {{":authority", "demo.tunnels.example"}, {":path", "/x"}, {":scheme", "https"}, {"Host", "demo"}};
  for (std::string_view name : kHopByHopRequest) h.emplace_back(std::string(name), "v");
  for (const char* name : {"Proxy-Connection", "HTTP2-Settings", "Expect"}) h.emplace_back(name, "v");
  h.emplace_back("X-Kept", "yes");
  auto out = build(get_request(h));
  ASSERT_TRUE(out);
  const std::vector<HeaderField> expected = {{"inkbox-h-x-kept", "yes"}, {"inkbox-h-accept-encoding", "identity"}};
  EXPECT_EQ(forwarded(*out), expected);
}

TEST(Envelope, ThirdPartyForwardingHeadersAreDropped) {
  auto out = build(get_request({
      {"X-Forwarded-For", "10.0.0.1"},
      {"X-Forwarded-Host", "evil.example"},
      {"X-Forwarded-Proto", "http"},
      {"Forwarded", "for=10.0.0.1"},
      {"X-Kept", "yes"},
  }));
  ASSERT_TRUE(out);
  const std::vector<HeaderField> expected = {{"inkbox-h-x-kept", "yes"}, {"inkbox-h-accept-encoding", "identity"}};
  EXPECT_EQ(forwarded(*out), expected);
  EXPECT_EQ(value_of(*out, "inkbox-forwarded-for"), "203.0.113.7");  // the edge's view, not theirs
}

TEST(Envelope, FieldsNamedByConnectionAreDropped) {
  auto out = build(get_request({{"Connection", "keep-alive, X-Hop"}, {"X-Hop", "1"}, {"X-Kept", "2"}}));
  ASSERT_TRUE(out);
  const std::vector<HeaderField> expected = {{"inkbox-h-x-kept", "2"}, {"inkbox-h-accept-encoding", "identity"}};
  EXPECT_EQ(forwarded(*out), expected);
}

TEST(Envelope, SecWebSocketProtocolIsNotDropped) {
  auto out = build(get_request({{"Sec-WebSocket-Protocol", "chat"}}), RouteKind::ws_upgrade);
  ASSERT_TRUE(out);
  EXPECT_EQ(value_of(*out, "inkbox-h-sec-websocket-protocol"), "chat");
}

TEST(Envelope, ValuesAreTrimmedOfOptionalWhitespace) {
  auto out = build(get_request({{"X-A", " \t padded \t "}, {"X-B", "in  side"}, {"X-Empty", "   "}}));
  ASSERT_TRUE(out);
  EXPECT_EQ(value_of(*out, "inkbox-h-x-a"), "padded");
  EXPECT_EQ(value_of(*out, "inkbox-h-x-b"), "in  side");
  EXPECT_EQ(value_of(*out, "inkbox-h-x-empty"), "");  // an empty value is still a field
}

TEST(Envelope, ControlCharactersAndInvalidUtf8AreRefusedWith400) {
  const std::vector<std::string> bad = {
      "a\rb", "a\nb", std::string("a\0b", 3), "a\r\nX-Injected: 1", "a\x01" "b", "a\x7f" "b",
      "\xff", "caf\xe9",             // Latin-1, not UTF-8
      "\xc0\xaf",                    // overlong '/'
      "\xed\xa0\x80",                // UTF-16 surrogate
      "\xf4\x90\x80\x80",            // above U+10FFFF
      "\xe2\x82",                    // truncated sequence
  };
  for (const std::string& value : bad) {
    SCOPED_TRACE(testing::PrintToString(value));
    auto out = build(get_request({{"X-Ok", "fine"}, {"X-Bad", value}}));
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error().code, Code::bad_header_value);
    EXPECT_EQ(out.error().http_status, 400);
    EXPECT_EQ(out.error().header_name, "x-bad");
  }
}

TEST(Envelope, BadValuesAreRefusedEvenInDroppedFields) {
  auto out = build(get_request({{"Host", "demo\r\nx: y"}}));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().http_status, 400);
}

TEST(Envelope, ValidUtf8AndTabsArePassedOn) {
  auto out = build(get_request({{"X-Name", "caf\xc3\xa9 \xf0\x9f\x8e\x89"}, {"X-Tab", "a\tb"}}));
  ASSERT_TRUE(out);
  EXPECT_EQ(value_of(*out, "inkbox-h-x-name"), "caf\xc3\xa9 \xf0\x9f\x8e\x89");
  EXPECT_EQ(value_of(*out, "inkbox-h-x-tab"), "a\tb");
}

TEST(Envelope, NamesThatAreNotTokensAreRefusedWith400) {
  for (std::string name : {std::string(""), std::string("X Bad"), std::string("x:y"), std::string("caf\xc3\xa9"),
                           std::string("x\r")}) {
    auto out = build(get_request({{name, "v"}}));
    ASSERT_FALSE(out) << name;
    EXPECT_EQ(out.error().code, Code::bad_header_name);
    EXPECT_EQ(out.error().http_status, 400);
  }
}

TEST(Envelope, AcceptEncodingIsReplacedByIdentityInPlace) {
  auto out = build(get_request({{"X-A", "1"}, {"Accept-Encoding", "gzip, br"}, {"X-B", "2"}, {"accept-encoding", "zstd"}}));
  ASSERT_TRUE(out);
  const std::vector<HeaderField> expected = {
      {"inkbox-h-x-a", "1"}, {"inkbox-h-accept-encoding", "identity"}, {"inkbox-h-x-b", "2"}};
  EXPECT_EQ(forwarded(*out), expected);
}

TEST(Envelope, AcceptEncodingIsPassedOnWhenNotForced) {
  EnvelopeLimits limits;
  limits.force_identity_encoding = false;
  auto out = build(get_request({{"Accept-Encoding", "gzip"}, {"accept-encoding", "br"}}), RouteKind::webhook, limits);
  ASSERT_TRUE(out);
  EXPECT_EQ(values_of(*out, "inkbox-h-accept-encoding"), (std::vector<std::string>{"gzip", "br"}));
  out = build(get_request(), RouteKind::webhook, limits);
  ASSERT_TRUE(out);
  EXPECT_TRUE(values_of(*out, "inkbox-h-accept-encoding").empty());
}

// ---------------------------------------------------------------------------------------------
// Limits (rule 7, A14)

Headers numbered_fields(std::size_t n) {
  Headers h;
  for (std::size_t i = 0; i < n; ++i) h.emplace_back("x-h" + std::to_string(i), "v");
  return h;
}

TEST(Envelope, OneHundredFieldsPassAndOneHundredAndOneGet431) {
  auto out = build(get_request(numbered_fields(100)));
  ASSERT_TRUE(out);
  EXPECT_EQ(forwarded(*out).size(), 101u);  // plus the edge's own accept-encoding: identity

  out = build(get_request(numbered_fields(101)));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, Code::too_many_headers);
  EXPECT_EQ(out.error().http_status, 431);
}

TEST(Envelope, TheFieldLimitCountsWhatIsForwarded) {
  Headers h = numbered_fields(99);
  for (int i = 0; i < 50; ++i) h.emplace_back("cookie", "c" + std::to_string(i) + "=1");  // one field
  for (int i = 0; i < 20; ++i) h.emplace_back("x-forwarded-for", "10.0.0.1");           // dropped
  h.emplace_back("accept-encoding", "gzip");  // replaced, and counted as the 101st
  auto out = build(get_request(h));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, Code::too_many_headers);
  h.pop_back();
  EXPECT_TRUE(build(get_request(h)));
}

TEST(Envelope, ExactlyThirtyTwoKibibytesPassAndOneMoreByteGets431) {
  const std::string name = "x-big";
  auto out = build(get_request({{name, std::string(32 * 1024 - name.size(), 'v')}}));
  ASSERT_TRUE(out);

  out = build(get_request({{name, std::string(32 * 1024 - name.size() + 1, 'v')}}));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, Code::headers_too_large);
  EXPECT_EQ(out.error().http_status, 431);
}

TEST(Envelope, TheByteLimitCountsJoinedCookiesWithTheirSeparators) {
  // "cookie" + "a=1" + "; " + value: 6 + 3 + 2 + n bytes.
  const std::size_t n = 32 * 1024 - 11;
  EXPECT_TRUE(build(get_request({{"cookie", "a=1"}, {"cookie", std::string(n, 'v')}})));
  auto out = build(get_request({{"cookie", "a=1"}, {"cookie", std::string(n + 1, 'v')}}));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, Code::headers_too_large);
}

TEST(Envelope, TheLargestAcceptedEnvelopeStillFitsTheAgentRules) {
  // 100 fields sharing 32 KiB, the longest target and SNI: §4.1 must hold with room to spare.
  Headers h;
  const std::size_t per_field = 32 * 1024 / 100;
  for (int i = 0; i < 100; ++i) {
    const std::string name = "x-" + std::to_string(1000 + i);
    h.emplace_back(name, std::string(per_field - name.size(), 'v'));
  }
  InboundRequest r = get_request(h);
  r.target = "/" + std::string(8 * 1024 - 1, 'p');
  r.sni_host = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
               std::string(61, 'd');
  r.client_ip = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  auto out = build(r, RouteKind::ws_upgrade, {}, std::string(128, 'w'));
  ASSERT_TRUE(out);
  EXPECT_EQ(agent_header_list_error(*out, 1, 66), "") << "room for content-length too";
}

TEST(Envelope, RaisedLimitsAreStillCappedByTheAgentRules) {
  EnvelopeLimits limits;
  limits.max_fields = 1000;
  auto out = build(get_request(numbered_fields(130)), RouteKind::webhook, limits);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().http_status, 431);

  limits.max_header_bytes = 1 << 20;
  out = build(get_request({{"x-big", std::string(70000, 'v')}}), RouteKind::webhook, limits);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().http_status, 431);
}

// ---------------------------------------------------------------------------------------------
// Method and path (rules 9, A35)

TEST(Envelope, TraceTrackAndPlainConnectGet405) {
  for (std::string method : {"TRACE", "TRACK", "CONNECT", "trace", "Connect"}) {
    InboundRequest r = get_request();
    r.method = method;
    auto out = build(r);
    ASSERT_FALSE(out) << method;
    EXPECT_EQ(out.error().code, Code::method_not_allowed);
    EXPECT_EQ(out.error().http_status, 405);
  }
}

TEST(Envelope, OrdinaryAndExtensionMethodsPass) {
  for (std::string method : {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND", "X-CUSTOM"}) {
    InboundRequest r = get_request();
    r.method = method;
    EXPECT_TRUE(build(r)) << method;
  }
}

TEST(Envelope, MethodsThatAreNotTokensGet400) {
  for (std::string method : {std::string(""), std::string("GE T"), std::string("GET\r\n"), std::string(65, 'A')}) {
    InboundRequest r = get_request();
    r.method = method;
    auto out = build(r);
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error().code, Code::bad_method);
    EXPECT_EQ(out.error().http_status, 400);
  }
}

TEST(Envelope, MalformedPercentEscapesInThePathGet400) {
  for (std::string target : {"/a%zz", "/a%2", "/a%", "/%G0", "/%FF", "/caf%E9", "/%C3", "/%ED%A0%80",
                             "/%25zz",   // decodes once to "/%zz", which TS decodes again and fails
                             "/100%25",  // likewise "/100%"; Python would accept it, TS would not
                             "/%25FF"}) {
    InboundRequest r = get_request();
    r.target = target;
    auto out = build(r);
    ASSERT_FALSE(out) << target;
    EXPECT_EQ(out.error().code, Code::bad_path) << target;
    EXPECT_EQ(out.error().http_status, 400);
  }
}

TEST(Envelope, WellFormedEscapesAndOddQueriesPass) {
  // The query is neither decoded by the SDKs nor by us; the agent's §6.2 check covers the rest.
  for (std::string target : {"/", "/a%20b", "/caf%C3%A9", "/caf\xC3\xA9", "/%2e%2e/x", "/a%2Fb", "/x?q=50%",
                             "/x?%zz", "/x?a=%FF", "/%2525"}) {
    InboundRequest r = get_request();
    r.target = target;
    EXPECT_TRUE(build(r)) << target;
  }
}

TEST(Envelope, TargetsMustBeOriginFormWithoutControlBytes) {
  for (std::string target : {std::string(""), std::string("*"), std::string("http://x/"), std::string("x/y"),
                             std::string("/a b"), std::string("/a\x01"), std::string("/a\x7f"),
                             std::string("/\xff"), std::string("/a\r\nb")}) {
    InboundRequest r = get_request();
    r.target = target;
    auto out = build(r);
    ASSERT_FALSE(out) << testing::PrintToString(target);
    EXPECT_EQ(out.error().code, Code::bad_path);
  }
}

TEST(Envelope, OverlongTargetsGet414) {
  InboundRequest r = get_request();
  r.target = "/" + std::string(8 * 1024 - 1, 'a');
  EXPECT_TRUE(build(r));
  r.target += "a";
  auto out = build(r);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, Code::uri_too_long);
  EXPECT_EQ(out.error().http_status, 414);
}

TEST(RequestTarget, PercentDecodeStrict) {
  EXPECT_EQ(percent_decode_strict("a%20b%2f"), "a b/");
  EXPECT_EQ(percent_decode_strict("%e2%82%ac"), "\xe2\x82\xac");
  EXPECT_EQ(percent_decode_strict("plain"), "plain");
  EXPECT_FALSE(percent_decode_strict("%"));
  EXPECT_FALSE(percent_decode_strict("%4"));
  EXPECT_FALSE(percent_decode_strict("%4g"));
  EXPECT_FALSE(percent_decode_strict("%80"));  // a lone continuation byte
}

// ---------------------------------------------------------------------------------------------
// Shared header rules

TEST(HeaderRules, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("ascii"));
  EXPECT_TRUE(is_valid_utf8("\xc2\x80"));
  EXPECT_TRUE(is_valid_utf8("\xdf\xbf"));
  EXPECT_TRUE(is_valid_utf8("\xe0\xa0\x80"));
  EXPECT_TRUE(is_valid_utf8("\xed\x9f\xbf"));      // U+D7FF, just below the surrogates
  EXPECT_TRUE(is_valid_utf8("\xee\x80\x80"));      // U+E000, just above
  EXPECT_TRUE(is_valid_utf8("\xf0\x90\x80\x80"));
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\x80"));
  EXPECT_FALSE(is_valid_utf8("\xc1\xbf"));         // overlong
  EXPECT_FALSE(is_valid_utf8("\xe0\x9f\xbf"));     // overlong
  EXPECT_FALSE(is_valid_utf8("\xf0\x8f\xbf\xbf")); // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xbf\xbf"));     // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf5\x80\x80\x80"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));
  EXPECT_FALSE(is_valid_utf8("\xc3("));
  EXPECT_FALSE(is_valid_utf8("\xf0\x9f\x8e"));
}

TEST(HeaderRules, AgentListRules) {
  EXPECT_EQ(agent_header_list_error(std::vector<HeaderField>{{"x-a", "1"}}), "");
  EXPECT_NE(agent_header_list_error(std::vector<HeaderField>{{"X-A", "1"}}), "");
  EXPECT_NE(agent_header_list_error(std::vector<HeaderField>{{"x-a", " 1"}}), "");
  EXPECT_NE(agent_header_list_error(std::vector<HeaderField>{{"x-a", "1\t"}}), "");
  EXPECT_NE(agent_header_list_error(std::vector<HeaderField>{{"x-a", "\xff"}}), "");
  EXPECT_NE(agent_header_list_error(std::vector<HeaderField>{{"connection", "close"}}), "");
  EXPECT_NE(agent_header_list_error(std::vector<HeaderField>{{"te", "gzip"}}), "");
  EXPECT_EQ(agent_header_list_error(std::vector<HeaderField>{{"te", "trailers"}}), "");

  std::vector<HeaderField> many(126, HeaderField{"x", "y"});
  EXPECT_EQ(agent_header_list_error(many), "") << "126 + :status = 127 fields";
  many.push_back({"x", "y"});
  EXPECT_NE(agent_header_list_error(many), "") << "128 fields including :status";

  // :status costs 7 + 3 + 32 = 42 bytes, one field "x" costs 1 + n + 32.
  const std::size_t n = 65536 - 42 - 33;
  EXPECT_EQ(agent_header_list_error(std::vector<HeaderField>{{"x", std::string(n, 'v')}}), "");
  EXPECT_NE(agent_header_list_error(std::vector<HeaderField>{{"x", std::string(n + 1, 'v')}}), "");
}

// ---------------------------------------------------------------------------------------------
// Set-Cookie splitting (§4.7, A15)

TEST(SetCookie, SplitsThePythonMergedForm) {
  EXPECT_EQ(split_set_cookie("s=1; Path=/, t=2; Path=/"), (std::vector<std::string>{"s=1; Path=/", "t=2; Path=/"}));
}

TEST(SetCookie, NeverSplitsInsideAnExpiresDate) {
  EXPECT_EQ(split_set_cookie("a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT, b=2"),
            (std::vector<std::string>{"a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT", "b=2"}));
  EXPECT_EQ(split_set_cookie("a=1; Expires=Wed, 21-Oct-2015 07:28:00 GMT"),
            (std::vector<std::string>{"a=1; Expires=Wed, 21-Oct-2015 07:28:00 GMT"}));
  EXPECT_EQ(split_set_cookie("a=1; expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/, "
                             "b=2; Expires=Fri, 02 Jan 1970 00:00:00 GMT, c=3"),
            (std::vector<std::string>{"a=1; expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/",
                                      "b=2; Expires=Fri, 02 Jan 1970 00:00:00 GMT", "c=3"}));
}

TEST(SetCookie, ATrailingFragmentWithoutEqualsStaysWithItsCookie) {
  // Decision: no "name=" after the comma, so no second cookie; the text stays as sent.
  EXPECT_EQ(split_set_cookie("a=1, b"), (std::vector<std::string>{"a=1, b"}));
  EXPECT_EQ(split_set_cookie("a=1, =2"), (std::vector<std::string>{"a=1, =2"}));
  EXPECT_EQ(split_set_cookie("id=x,y; Path=/"), (std::vector<std::string>{"id=x,y; Path=/"}));
}

TEST(SetCookie, EdgeCases) {
  EXPECT_EQ(split_set_cookie("a=1"), (std::vector<std::string>{"a=1"}));
  EXPECT_EQ(split_set_cookie("a=1,b=2"), (std::vector<std::string>{"a=1", "b=2"}));
  EXPECT_EQ(split_set_cookie("a=1, \t b=2"), (std::vector<std::string>{"a=1", "b=2"}));
  EXPECT_EQ(split_set_cookie("a=,b="), (std::vector<std::string>{"a=", "b="}));
  EXPECT_TRUE(split_set_cookie("").empty());
  EXPECT_TRUE(split_set_cookie("   ").empty());
  EXPECT_EQ(split_set_cookie(",a=1"), (std::vector<std::string>{"a=1"}));
}

// ---------------------------------------------------------------------------------------------
// Response post (§4.7)

std::vector<HeaderField> post_with(std::vector<HeaderField> extra, std::string status = "200") {
  std::vector<HeaderField> h = {
      {"x-tunnel-id", "0b7c1a4e-9d7f-4c1e-8f43-2a6f1f0c9e11"},
      {"x-tunnel-secret", "s3cret"},
      {"inkbox-status", std::move(status)},
      {"inkbox-request-id", "req-1"},
      {"content-length", "5"},
  };
  h.insert(h.end(), extra.begin(), extra.end());
  return h;
}

TEST(ResponsePost, MapsStatusIdAndForwardedHeadersInOrder) {
  auto post = parse_response_post(post_with({
      {"inkbox-h-content-type", "text/plain"},
      {"inkbox-h-x-multi", "1"},
      {"inkbox-h-cache-control", "no-store"},
      {"inkbox-h-x-multi", "2"},
  }, "201"));
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 201);
  EXPECT_EQ(post->request_id, "req-1");
  EXPECT_EQ(post->reason, "");
  const std::vector<HeaderField> expected = {
      {"content-type", "text/plain"}, {"x-multi", "1"}, {"cache-control", "no-store"}, {"x-multi", "2"}};
  EXPECT_EQ(post->headers, expected);
  EXPECT_EQ(post->dropped_invalid, 0u);
}

TEST(ResponsePost, NamesAreMatchedWithoutCaseAndLowercased) {
  auto post = parse_response_post(std::vector<HeaderField>{{"Inkbox-Status", "404"}, {"INKBOX-H-X-Thing", " v "}});
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 404);
  EXPECT_EQ(post->headers, (std::vector<HeaderField>{{"x-thing", "v"}}));
}

TEST(ResponsePost, SetCookieFromTsStaysSeparateAndFromPythonIsSplit) {
  auto ts = parse_response_post(post_with({{"inkbox-h-set-cookie", "s=1; Path=/"}, {"inkbox-h-set-cookie", "t=2; Path=/"}}));
  auto py = parse_response_post(post_with({{"inkbox-h-set-cookie", "s=1; Path=/, t=2; Path=/"}}));
  ASSERT_TRUE(ts);
  ASSERT_TRUE(py);
  const std::vector<HeaderField> expected = {{"set-cookie", "s=1; Path=/"}, {"set-cookie", "t=2; Path=/"}};
  EXPECT_EQ(ts->headers, expected);
  EXPECT_EQ(py->headers, expected);

  auto dated = parse_response_post(post_with({{"inkbox-h-set-cookie", "a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT, b=2"}}));
  ASSERT_TRUE(dated);
  EXPECT_EQ(dated->headers, (std::vector<HeaderField>{{"set-cookie", "a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT"},
                                                      {"set-cookie", "b=2"}}));
}

TEST(ResponsePost, OtherMergedHeadersArePassedOnAsTheyAre) {
  auto post = parse_response_post(post_with({{"inkbox-h-vary", "accept, origin"}}));
  ASSERT_TRUE(post);
  EXPECT_EQ(post->headers, (std::vector<HeaderField>{{"vary", "accept, origin"}}));
}

TEST(ResponsePost, ReasonPrefersTopLevelThenWrapped) {
  auto both = parse_response_post(post_with({{"inkbox-h-inkbox-reason", "wrapped"}, {"inkbox-reason", "top"}}, "502"));
  ASSERT_TRUE(both);
  EXPECT_EQ(both->reason, "top");

  auto wrapped = parse_response_post(post_with({{"inkbox-h-inkbox-reason", "upstream-error"}}, "502"));
  ASSERT_TRUE(wrapped);
  EXPECT_EQ(wrapped->reason, "upstream-error");

  auto empty_top = parse_response_post(post_with({{"inkbox-reason", ""}, {"inkbox-h-inkbox-reason", "invalid-path"}}, "400"));
  ASSERT_TRUE(empty_top);
  EXPECT_EQ(empty_top->reason, "invalid-path");

  auto none = parse_response_post(post_with({}));
  ASSERT_TRUE(none);
  EXPECT_EQ(none->reason, "");
}

TEST(ResponsePost, InkboxHeadersNeverReachTheThirdParty) {
  auto post = parse_response_post(post_with({
      {"inkbox-h-inkbox-reason", "handler-error"},
      {"inkbox-h-inkbox-status", "200"},
      {"inkbox-h-Inkbox-Anything", "x"},
      {"inkbox-h-x-kept", "1"},
      {"inkbox-other-meta", "ignored"},
  }, "502"));
  ASSERT_TRUE(post);
  EXPECT_EQ(post->headers, (std::vector<HeaderField>{{"x-kept", "1"}}));
  EXPECT_EQ(post->reason, "handler-error");
}

TEST(ResponsePost, HopByHopAndFramingHeadersAreStripped) {
  std::vector<HeaderField> extra;
  for (std::string_view name : kHopByHopResponse) extra.push_back({"inkbox-h-" + std::string(name), "x"});
  for (const char* name : {"proxy-connection", "content-length", "Transfer-Encoding"}) {
    extra.push_back({std::string("inkbox-h-") + name, "1"});
  }
  extra.push_back({"inkbox-h-x-kept", "1"});
  auto post = parse_response_post(post_with(extra));
  ASSERT_TRUE(post);
  EXPECT_EQ(post->headers, (std::vector<HeaderField>{{"x-kept", "1"}}));
}

TEST(ResponsePost, UnusableFieldsAreDroppedAndCounted) {
  auto post = parse_response_post(post_with({
      {"inkbox-h-", "empty name"},
      {"inkbox-h-bad name", "x"},
      {"inkbox-h-x-split", "a\r\nx-injected: 1"},
      {"inkbox-h-x-nul", std::string("a\0b", 3)},
      {"inkbox-h-x-latin1", "caf\xe9"},  // obs-text is legal toward the third party
  }));
  ASSERT_TRUE(post);
  EXPECT_EQ(post->headers, (std::vector<HeaderField>{{"x-latin1", "caf\xe9"}}));
  EXPECT_EQ(post->dropped_invalid, 4u);
}

TEST(ResponsePost, BadStatusesAreRefused) {
  for (std::string status : {"abc", "99", "600", "", "200 ", " 200", "2000", "0200", "+20", "1e2", "20", "-200",
                             "2OO", "099"}) {
    auto post = parse_response_post(post_with({}, status));
    ASSERT_FALSE(post) << "'" << status << "'";
    EXPECT_EQ(post.error().code, PostError::Code::bad_status);
    EXPECT_EQ(post.error().post_status, 400);
    EXPECT_EQ(post.error().third_party_status, 502);
  }
}

TEST(ResponsePost, StatusBoundsAreInclusive) {
  for (std::string status : {"100", "101", "200", "204", "304", "418", "599"}) {
    auto post = parse_response_post(post_with({}, status));
    ASSERT_TRUE(post) << status;
    EXPECT_EQ(post->status, std::stoi(status));
  }
}

TEST(ResponsePost, MissingOrRepeatedStatusIsRefused) {
  auto missing = parse_response_post(std::vector<HeaderField>{{"inkbox-request-id", "req-1"}});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, PostError::Code::missing_status);
  EXPECT_EQ(missing.error().post_status, 400);

  auto repeated = parse_response_post(post_with({{"inkbox-status", "200"}}));
  ASSERT_FALSE(repeated);
  EXPECT_EQ(repeated.error().code, PostError::Code::repeated_status);
}

TEST(ResponsePost, RequestIdMayBeAbsent) {
  auto post = parse_response_post(std::vector<HeaderField>{{"inkbox-status", "200"}});
  ASSERT_TRUE(post);
  EXPECT_EQ(post->request_id, "");
}

TEST(ResponsePost, BodyAndContentLengthRules) {
  EXPECT_FALSE(response_has_body("HEAD", 200));
  EXPECT_FALSE(response_has_body("HEAD", 404));
  EXPECT_FALSE(response_has_body("GET", 100));
  EXPECT_FALSE(response_has_body("GET", 101));
  EXPECT_FALSE(response_has_body("GET", 199));
  EXPECT_FALSE(response_has_body("GET", 204));
  EXPECT_FALSE(response_has_body("POST", 304));
  EXPECT_TRUE(response_has_body("GET", 200));
  EXPECT_TRUE(response_has_body("POST", 201));
  EXPECT_TRUE(response_has_body("GET", 404));
  EXPECT_TRUE(response_has_body("GET", 502));
}

// ---------------------------------------------------------------------------------------------
// WebSocket accept (§4.8)

TEST(WsHandshake, Rfc6455AcceptExample) {
  // RFC 6455 §1.3's worked example (also what `openssl dgst -sha1 -binary | base64` gives).
  EXPECT_EQ(websocket_accept_value("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WsHandshake, KeyValidation) {
  EXPECT_TRUE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ="));
  EXPECT_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ"));
  EXPECT_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25j!Q=="));
  EXPECT_FALSE(is_valid_websocket_key(""));
}

TEST(WsHandshake, OfferedSubprotocolsFromEveryField) {
  const Headers h = {{"Sec-WebSocket-Protocol", "chat, superchat"}, {"x", "y"}, {"sec-websocket-protocol", " v2 ,, bad one"}};
  EXPECT_EQ(offered_subprotocols(h), (std::vector<std::string>{"chat", "superchat", "v2"}));
}

TEST(WsHandshake, AcceptDropsHandshakeFieldsAndKeepsTheChosenSubprotocol) {
  const std::vector<std::string> offered = {"chat", "superchat"};
  auto accept = prepare_ws_accept({{"sec-websocket-accept", "bogus"},
                                   {"x-app", "1"},
                                   {"sec-websocket-extensions", "permessage-deflate"},
                                   {"sec-websocket-protocol", "superchat"},
                                   {"sec-websocket-key", "k"},
                                   {"sec-websocket-version", "13"}},
                                  offered, "dGhlIHNhbXBsZSBub25jZQ==");
  ASSERT_TRUE(accept);
  EXPECT_EQ(accept->headers, (std::vector<HeaderField>{{"x-app", "1"}, {"sec-websocket-protocol", "superchat"}}));
  EXPECT_EQ(accept->subprotocol, "superchat");
  EXPECT_EQ(accept->accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WsHandshake, NoSubprotocolAndNoKeyForHttp2) {
  auto accept = prepare_ws_accept({{"x-app", "1"}}, {}, "");
  ASSERT_TRUE(accept);
  EXPECT_EQ(accept->subprotocol, "");
  EXPECT_EQ(accept->accept, "");
  EXPECT_EQ(accept->headers, (std::vector<HeaderField>{{"x-app", "1"}}));
}

TEST(WsHandshake, ASubprotocolThatWasNotOfferedIsRefused) {
  const std::vector<std::string> offered = {"chat"};
  for (std::vector<HeaderField> headers : std::vector<std::vector<HeaderField>>{
           {{"sec-websocket-protocol", "other"}},
           {{"sec-websocket-protocol", "Chat"}},  // names compare exactly
           {{"sec-websocket-protocol", "chat, other"}},
           {{"sec-websocket-protocol", "chat"}, {"sec-websocket-protocol", "other"}},
           {{"sec-websocket-protocol", "ch at"}}}) {
    auto accept = prepare_ws_accept(headers, offered, "dGhlIHNhbXBsZSBub25jZQ==");
    ASSERT_FALSE(accept) << headers.front().value;
    EXPECT_EQ(accept.error().third_party_status, 502);
  }
  EXPECT_FALSE(prepare_ws_accept({{"sec-websocket-protocol", "chat"}}, {}, ""));
}

TEST(WsHandshake, RepeatsOfTheSameChoiceCollapse) {
  const std::vector<std::string> offered = {"chat"};
  auto accept = prepare_ws_accept({{"sec-websocket-protocol", "chat"}, {"sec-websocket-protocol", "chat, chat"}}, offered, "");
  ASSERT_TRUE(accept);
  EXPECT_EQ(accept->headers, (std::vector<HeaderField>{{"sec-websocket-protocol", "chat"}}));
}

TEST(WsHandshake, EndToEndFromEnvelopeToAccept) {
  // The third party offers two subprotocols; the agent picks one and adds an app header.
  const Headers third_party = {{"Upgrade", "websocket"},
                               {"Connection", "Upgrade"},
                               {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                               {"Sec-WebSocket-Version", "13"},
                               {"Sec-WebSocket-Protocol", "chat, superchat"}};
  auto envelope = build(get_request(third_party), RouteKind::ws_upgrade);
  ASSERT_TRUE(envelope);
  auto post = parse_response_post(std::vector<HeaderField>{{"inkbox-status", "200"},
                                                           {"inkbox-request-id", "req-1"},
                                                           {"inkbox-h-sec-websocket-protocol", "chat"},
                                                           {"inkbox-h-x-session", "abc"}});
  ASSERT_TRUE(post);
  auto accept = prepare_ws_accept(post->headers, offered_subprotocols(third_party), "dGhlIHNhbXBsZSBub25jZQ==");
  ASSERT_TRUE(accept);
  EXPECT_EQ(accept->subprotocol, "chat");
  EXPECT_EQ(accept->accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

}  // namespace
