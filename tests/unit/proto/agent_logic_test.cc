// Agent-side decisions that must match the official SDKs exactly: reconnect delays, the path
// check, forward_to rules and the state.json format (PROTOCOL.md §4.10, §6.2, §6.3, §5).
#include "proto/backoff.h"
#include "proto/forward_target.h"
#include "proto/path_check.h"
#include "proto/tunnel_state.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>

namespace {

namespace proto = inkwire::proto;
namespace json = boost::json;

// ---------------------------------------------------------------------------------------- backoff

json::object load_backoff_fixture() {
  std::ifstream in(INKWIRE_TESTDATA_DIR "/backoff_reference.json", std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open the fixture";
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(text.str(), ec);
  EXPECT_FALSE(ec) << ec.message();
  return v.is_object() ? v.as_object() : json::object{};
}

TEST(ReconnectBackoff, ConstantsAgreeWithFixture) {
  const json::object fixture = load_backoff_fixture();
  ASSERT_TRUE(fixture.contains("constants"));
  const json::object& constants = fixture.at("constants").as_object();
  EXPECT_DOUBLE_EQ(constants.at("backoff_cap").to_number<double>(), proto::ReconnectBackoff::kCapSeconds);
  EXPECT_DOUBLE_EQ(constants.at("backoff_jitter").to_number<double>(), proto::ReconnectBackoff::kJitter);
}

// The fixture is one run of consecutive failures: each row's backoff_in is the previous row's
// backoff_out, so one object replays the whole schedule.
TEST(ReconnectBackoff, ReproducesEveryFixtureRow) {
  const json::object fixture = load_backoff_fixture();
  ASSERT_TRUE(fixture.contains("schedule"));
  const json::array& schedule = fixture.at("schedule").as_array();
  ASSERT_EQ(schedule.size(), fixture.at("rng_inputs").as_array().size());
  ASSERT_FALSE(schedule.empty());
  proto::ReconnectBackoff backoff;
  EXPECT_TRUE(backoff.first_attempt());
  for (std::size_t i = 0; i < schedule.size(); ++i) {
    const json::object& row = schedule[i].as_object();
    SCOPED_TRACE("attempt " + std::to_string(row.at("attempt").to_number<int>()));
    EXPECT_EQ(row.at("attempt").to_number<std::size_t>(), i);
    const double r = row.at("rng").to_number<double>();
    EXPECT_NEAR(r, fixture.at("rng_inputs").as_array()[i].to_number<double>(), 0.0);
    const double base_in = backoff.base_seconds();
    EXPECT_NEAR(base_in, row.at("backoff_in").to_number<double>(), 1e-9);
    const double delay = backoff.next_delay(r);
    EXPECT_NEAR(delay - base_in, row.at("jitter").to_number<double>(), 1e-9);
    EXPECT_NEAR(delay, row.at("sleep_for").to_number<double>(), 1e-9);
    EXPECT_NEAR(backoff.base_seconds(), row.at("backoff_out").to_number<double>(), 1e-9);
    EXPECT_FALSE(backoff.first_attempt());
  }
}

TEST(ReconnectBackoff, NormalEndResetsToOneSecond) {
  proto::ReconnectBackoff backoff;
  for (int i = 0; i < 10; ++i) backoff.next_delay(0.5);
  EXPECT_DOUBLE_EQ(backoff.base_seconds(), 30.0);
  backoff.on_normal_end();
  EXPECT_DOUBLE_EQ(backoff.base_seconds(), 1.0);
  // "After a session that ends normally, the next attempt comes 0.75 to 1.25 s later."
  EXPECT_DOUBLE_EQ(backoff.next_delay(0.0), 0.75);
  backoff.on_normal_end();
  EXPECT_NEAR(backoff.next_delay(0.999999), 1.25, 1e-5);
}

TEST(ReconnectBackoff, DelayStaysWithinBounds) {
  proto::ReconnectBackoff backoff;
  for (int i = 0; i < 50; ++i) {
    const double d = backoff.next_delay((i % 10) / 10.0);
    EXPECT_GE(d, proto::ReconnectBackoff::kMinimumSleepSeconds);
    EXPECT_LE(d, 37.5);
  }
  // Out-of-range or NaN input from a broken generator is clamped, never negative or huge.
  proto::ReconnectBackoff clamped;
  EXPECT_DOUBLE_EQ(clamped.next_delay(-5.0), 0.75);
  clamped.on_normal_end();
  EXPECT_DOUBLE_EQ(clamped.next_delay(7.0), 1.25);
  clamped.on_normal_end();
  EXPECT_DOUBLE_EQ(clamped.next_delay(std::numeric_limits<double>::quiet_NaN()), 1.0);
}

// ------------------------------------------------------------------------------------- path check

bool allowed(std::string_view path) { return !proto::invalid_path_reason(path).has_value(); }

TEST(PathCheck, AllowsOrdinaryPaths) {
  EXPECT_TRUE(allowed("/"));
  EXPECT_TRUE(allowed(""));
  EXPECT_TRUE(allowed("/a/b"));
  EXPECT_TRUE(allowed("/a/b/"));
  EXPECT_TRUE(allowed("/hooks/github?x=1"));
  EXPECT_TRUE(allowed("/a%20b"));                  // one layer of encoding
  EXPECT_TRUE(allowed("/caf%C3%A9"));              // escaped UTF-8
  EXPECT_TRUE(allowed("/caf\xC3\xA9"));            // raw UTF-8
  EXPECT_TRUE(allowed("/..a/b..c/.d/..."));        // dots inside names are fine
  EXPECT_TRUE(allowed("/a?../../etc/passwd"));     // only the part before '?' is checked
  EXPECT_TRUE(allowed("/a?%2f%5c%zz\\"));          // anything goes in the query
}

TEST(PathCheck, RejectsAnyEncodingThatSurvivesOneDecode) {
  // A first decode that leaves a '%' behind either changes again on the second decode or fails it,
  // so every double-encoded path is refused, harmless or not.
  EXPECT_FALSE(allowed("/a%2520b"));  // -> "/a%20b" -> "/a b"
  EXPECT_FALSE(allowed("/a%2541"));   // -> "/a%41" -> "/aA"
  EXPECT_FALSE(allowed("/a%25b"));    // -> "/a%b": malformed on the second decode
  EXPECT_TRUE(allowed("/a%20b%41"));  // -> "/a bA": a second decode changes nothing
}

TEST(PathCheck, RejectsTraversal) {
  EXPECT_FALSE(allowed("/a/../b"));
  EXPECT_FALSE(allowed("/.."));
  EXPECT_FALSE(allowed("/./a"));
  EXPECT_FALSE(allowed(".."));
  EXPECT_FALSE(allowed("/a/.."));
  EXPECT_FALSE(allowed("/a/..?q=1"));
  EXPECT_FALSE(allowed("/%2e%2e/x"));
  EXPECT_FALSE(allowed("/%2E%2E/x"));
  EXPECT_FALSE(allowed("/.%2e/x"));
  EXPECT_FALSE(allowed("/%252e%252e/x"));  // after two decodes "..": the second decode changed it
  EXPECT_FALSE(allowed("/%25252e/x"));     // three layers
}

TEST(PathCheck, RejectsEncodedSeparators) {
  EXPECT_FALSE(allowed("/a%2fb"));
  EXPECT_FALSE(allowed("/a%2Fb"));
  EXPECT_FALSE(allowed("/a%5Cb"));
  EXPECT_FALSE(allowed("/a%5cb"));
}

TEST(PathCheck, RejectsMalformedEscapesLikeTypeScript) {
  EXPECT_FALSE(allowed("/%zz"));
  EXPECT_FALSE(allowed("/%"));
  EXPECT_FALSE(allowed("/a%2"));
  EXPECT_FALSE(allowed("/%ff"));        // not UTF-8: decodeURIComponent throws
  EXPECT_FALSE(allowed("/%C3"));        // truncated sequence
  EXPECT_FALSE(allowed("/%C0%AF"));     // overlong '/'
  EXPECT_FALSE(allowed("/%ED%A0%80"));  // surrogate
  EXPECT_FALSE(allowed("/%25"));        // "%" after the first decode is malformed
}

TEST(PathCheck, RejectsBackslashAndControlCharacters) {
  EXPECT_FALSE(allowed("/a\\b"));
  EXPECT_FALSE(allowed("/a%00b"));
  EXPECT_FALSE(allowed("/a%0ab"));
  EXPECT_FALSE(allowed("/a%7Fb"));
  EXPECT_FALSE(allowed(std::string_view("/a\0b", 4)));
  EXPECT_FALSE(allowed("/a\tb"));
  EXPECT_FALSE(allowed("/a\x7f"));
  EXPECT_FALSE(allowed("/a%1fb"));
}

TEST(PathCheck, ReasonIsGiven) {
  const auto reason = proto::invalid_path_reason("/a/../b");
  ASSERT_TRUE(reason.has_value());
  EXPECT_FALSE(reason->empty());
}

// ---------------------------------------------------------------------------------- forward_to

TEST(ForwardTarget, AllowsLoopbackTargets) {
  for (const std::string_view url :
       {"http://127.0.0.1:3000", "http://127.1.2.3", "http://localhost:8080/base/", "http://[::1]:9000",
        "https://localhost", "http://127.255.255.255/", "HTTP://LocalHost:1"}) {
    SCOPED_TRACE(url);
    EXPECT_TRUE(proto::parse_forward_target(url, false).has_value());
  }
}

TEST(ForwardTarget, ParsesParts) {
  auto t = proto::parse_forward_target("http://localhost:8080/base/", false);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->scheme, "http");
  EXPECT_EQ(t->host, "localhost");
  EXPECT_EQ(t->port_text, "8080");
  EXPECT_EQ(t->base_path, "/base/");
  EXPECT_EQ(proto::host_header(*t), "localhost:8080");

  t = proto::parse_forward_target("http://[::1]:9000", false);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->host, "::1");
  EXPECT_EQ(t->base_path, "");
  EXPECT_EQ(proto::host_header(*t), "[::1]:9000");

  // Default ports are dropped and case is folded, as the SDKs' URL parsers do.
  t = proto::parse_forward_target("HTTPS://LOCALHOST:443", false);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->scheme, "https");
  EXPECT_EQ(proto::host_header(*t), "localhost");
  t = proto::parse_forward_target("http://127.0.0.1:80/", false);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(proto::host_header(*t), "127.0.0.1");
  t = proto::parse_forward_target("http://127.0.0.1:08080", false);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->port_text, "8080");
}

TEST(ForwardTarget, RefusesRemoteAndMalformedTargets) {
  for (const std::string_view url :
       {"http://10.0.0.1", "http://localhost.evil.com", "http://127.0.0.1.nip.io", "ftp://127.0.0.1",
        "http://user@127.0.0.1", "http://user:pw@localhost", "http://127.0.0.1:99999", "http://127.0.0.1:0",
        "http://127.0.0.1:", "http://127.0.0.1:80a", "http://0x7f.1", "http://127.1", "http://0177.0.0.1",
        "http://127.0.0.01", "http://127.0.0.256", "http://[::2]", "http://[::1", "http://[::1]x",
        "http://127.0.0.1/#frag", "http://127.0.0.1/?q=1", "http://", "127.0.0.1:3000", "localhost",
        "http://local host", "http://127.0.0.1/a b", "http://2130706433", "http://[::ffff:127.0.0.1]",
        "http:/127.0.0.1", "ws://localhost"}) {
    SCOPED_TRACE(url);
    const auto t = proto::parse_forward_target(url, false);
    ASSERT_FALSE(t.has_value());
    EXPECT_FALSE(t.error().empty());
  }
}

TEST(ForwardTarget, AllowRemoteLiftsOnlyTheHostRule) {
  EXPECT_TRUE(proto::parse_forward_target("http://10.0.0.1", true).has_value());
  EXPECT_TRUE(proto::parse_forward_target("https://api.example.com:8443/x", true).has_value());
  EXPECT_TRUE(proto::parse_forward_target("http://[2001:db8::1]:8080", true).has_value());
  EXPECT_FALSE(proto::parse_forward_target("ftp://10.0.0.1", true).has_value());
  EXPECT_FALSE(proto::parse_forward_target("http://user@10.0.0.1", true).has_value());
  EXPECT_FALSE(proto::parse_forward_target("http://10.0.0.1:99999", true).has_value());
  EXPECT_FALSE(proto::parse_forward_target("http://10.0.0.1/#x", true).has_value());
}

std::string join(std::string_view url, std::string_view path) {
  const auto t = proto::parse_forward_target(url, true);
  EXPECT_TRUE(t.has_value()) << url;
  return t.has_value() ? proto::join_forward_url(*t, path) : std::string();
}

TEST(ForwardTarget, JoinsUrls) {
  EXPECT_EQ(join("http://localhost:8080/api/", "/x?y=1"), "http://localhost:8080/api/x?y=1");
  EXPECT_EQ(join("http://localhost:8080/api", "/x?y=1"), "http://localhost:8080/api/x?y=1");
  EXPECT_EQ(join("http://127.0.0.1:3000", "x"), "http://127.0.0.1:3000/x");
  EXPECT_EQ(join("http://127.0.0.1:3000/", "/"), "http://127.0.0.1:3000/");
  EXPECT_EQ(join("http://127.0.0.1:3000", ""), "http://127.0.0.1:3000/");
  EXPECT_EQ(join("http://127.0.0.1:3000", "?a=1"), "http://127.0.0.1:3000/?a=1");
  EXPECT_EQ(join("http://[::1]:9000/b//", "/c"), "http://[::1]:9000/b//c");  // only one '/' removed
  EXPECT_EQ(join("https://localhost:443/", "/a%20b?q=%2f"), "https://localhost/a%20b?q=%2f");  // undecoded
}

TEST(ForwardTarget, JoinWithEmptyBaseAddsLeadingSlash) {
  const proto::ForwardTarget target{"http", "localhost", "", ""};
  EXPECT_EQ(proto::join_forward_url(target, "x"), "http://localhost/x");
  const proto::ForwardTarget api{"http", "localhost", "", "/api/"};
  EXPECT_EQ(proto::join_forward_url(api, "/x?y=1"), "http://localhost/api/x?y=1");
}

// --------------------------------------------------------------------------------- state.json

proto::TunnelState full_state() {
  proto::TunnelState s;
  s.tunnel_id = "t-1";
  s.name = "my-agent";
  s.secret = "s\"e\\c";
  s.mode = "edge";
  s.zone = "z.example";
  s.public_host = "my-agent.z.example";
  return s;
}

TEST(TunnelState, SerializesLikePythonJsonDump) {
  // Produced by json.dump(state, f, indent=2, sort_keys=True) with Python 3.
  EXPECT_EQ(proto::serialize_state_json(full_state()),
            "{\n  \"mode\": \"edge\",\n  \"name\": \"my-agent\",\n  \"public_host\": \"my-agent.z.example\",\n"
            "  \"secret\": \"s\\\"e\\\\c\",\n  \"tunnel_id\": \"t-1\",\n  \"zone\": \"z.example\"\n}");
  EXPECT_EQ(proto::serialize_state_json({}), "{}");
  proto::TunnelState partial;
  partial.name = "caf\xC3\xA9 \xF0\x9F\x98\x80\x7f\n";
  EXPECT_EQ(proto::serialize_state_json(partial), "{\n  \"name\": \"caf\\u00e9 \\ud83d\\ude00\\u007f\\n\"\n}");
}

TEST(TunnelState, RoundTrips) {
  const proto::TunnelState s = full_state();
  EXPECT_EQ(proto::parse_state_json(proto::serialize_state_json(s)), s);
  proto::TunnelState partial;
  partial.tunnel_id = "id";
  partial.secret = "caf\xC3\xA9\x01";
  EXPECT_EQ(proto::parse_state_json(proto::serialize_state_json(partial)), partial);
  EXPECT_EQ(proto::parse_state_json(proto::serialize_state_json({})), proto::TunnelState{});
}

TEST(TunnelState, ParsesTypeScriptOrderUnknownAndMissingKeys) {
  // TS writes insertion order and may add keys we do not know; a trailing newline is fine too.
  const auto s = proto::parse_state_json(
      "{\n  \"tunnel_id\": \"t-9\",\n  \"name\": \"n\",\n  \"secret\": \"sec\",\n  \"mode\": \"passthrough\",\n"
      "  \"future_key\": {\"a\": [1, 2]},\n  \"zone\": null\n}\n");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->tunnel_id, "t-9");
  EXPECT_EQ(s->name, "n");
  EXPECT_EQ(s->secret, "sec");
  EXPECT_EQ(s->mode, "passthrough");
  EXPECT_FALSE(s->zone.has_value());
  EXPECT_FALSE(s->public_host.has_value());
}

TEST(TunnelState, WrongTypedValuesAreAbsent) {
  const auto s = proto::parse_state_json(R"({"tunnel_id": 5, "name": ["x"], "secret": "kept", "mode": true})");
  ASSERT_TRUE(s.has_value());
  EXPECT_FALSE(s->tunnel_id.has_value());
  EXPECT_FALSE(s->name.has_value());
  EXPECT_EQ(s->secret, "kept");
  EXPECT_FALSE(s->mode.has_value());
}

TEST(TunnelState, CorruptInputIsNoState) {
  for (const std::string_view text : {"", "   ", "{", "{\"name\": \"x\",}", "[]", "\"x\"", "null", "42",
                                      "{\"name\": \"x\"} trailing", "\xEF\xBB\xBF{}"}) {
    SCOPED_TRACE(text);
    EXPECT_FALSE(proto::parse_state_json(text).has_value());
  }
  EXPECT_TRUE(proto::parse_state_json("{}").has_value());
}

}  // namespace
