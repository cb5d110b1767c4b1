// The edge end to end in its simplest forms: a third party's GET over HTTP/1.1 and HTTP/2 reaches
// the agent as an envelope and the agent's answer comes back.
#include "tests/integration/edge/edge_test_helpers.h"

#include <gmock/gmock.h>

namespace inkwire::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class EdgeSmokeTest : public EdgeTest {};

void answer_one(TestRelay::Session& session, const CreatedTunnel& tunnel, int status, std::string body,
                proto::H2Headers headers = {}, Envelope* seen = nullptr) {
  auto envelope = wait_envelope(*session.agent, session.intakes[0], 10s);
  ASSERT_TRUE(envelope);
  if (seen) *seen = *envelope;
  const auto request_id = envelope->header("inkbox-request-id");
  ASSERT_TRUE(request_id);
  auto post = session.agent->post_response(tunnel.id, tunnel.secret, *request_id, status, headers, std::move(body));
  auto state = session.agent->wait_end(post, 10s);
  ASSERT_TRUE(state);
  EXPECT_EQ(state->status, 200);
}

TEST_F(EdgeSmokeTest, Http1GetReachesTheAgentAndComesBack) {
  auto session = relay().connect_and_park(web(), 1);
  auto client = run_command_async(curl("web", "/hello?x=1", "--http1.1 -H 'X-Forwarded-For: 6.6.6.6' -H 'Cookie: a=1'"));
  Envelope seen;
  answer_one(session, web(), 201, "pong", {{"x-answer", "42"}, {"set-cookie", "s=1"}, {"set-cookie", "t=2"}}, &seen);
  auto result = client.get();
  EXPECT_EQ(seen.header("inkbox-method"), "GET");
  EXPECT_EQ(seen.header("inkbox-path"), "/hello?x=1");
  EXPECT_EQ(seen.header("inkbox-forwarded-for"), "127.0.0.1");
  EXPECT_EQ(seen.header("inkbox-sni-host"), "web." + zone());
  EXPECT_EQ(seen.header("inkbox-h-accept-encoding"), "identity");
  EXPECT_EQ(seen.header("inkbox-h-cookie"), "a=1");
  EXPECT_FALSE(seen.header("inkbox-h-x-forwarded-for"));
  EXPECT_THAT(result.output, HasSubstr("HTTP/1.1 201"));
  EXPECT_THAT(result.output, HasSubstr("x-answer: 42"));
  EXPECT_THAT(result.output, HasSubstr("set-cookie: s=1"));
  EXPECT_THAT(result.output, HasSubstr("set-cookie: t=2"));
  EXPECT_THAT(result.output, HasSubstr("content-length: 4"));
  EXPECT_THAT(result.output, HasSubstr("pong"));
}

TEST_F(EdgeSmokeTest, Http2PostWithBody) {
  auto session = relay().connect_and_park(web(), 1);
  auto client = run_command_async(curl("web", "/upload", "--http2 --data-binary 'hello body'"));
  Envelope seen;
  answer_one(session, web(), 200, "ok", {}, &seen);
  auto result = client.get();
  EXPECT_EQ(seen.header("inkbox-method"), "POST");
  EXPECT_EQ(seen.body, "hello body");
  EXPECT_THAT(result.output, HasSubstr("HTTP/2 200"));
  EXPECT_THAT(result.output, HasSubstr("ok"));
}

TEST_F(EdgeSmokeTest, UnknownTunnelNoAgentAndMisdirected) {
  auto unknown = run_command(curl("nope", "/", "-H 'Accept: application/json'"));
  EXPECT_THAT(unknown.output, HasSubstr("404"));
  EXPECT_THAT(unknown.output, HasSubstr("x-inkwire-error: unknown-tunnel"));
  EXPECT_THAT(unknown.output, HasSubstr("\"error\":\"unknown-tunnel\""));
  auto no_agent = run_command(curl("web", "/"));
  EXPECT_THAT(no_agent.output, HasSubstr("503"));
  EXPECT_THAT(no_agent.output, HasSubstr("x-inkwire-error: no-agent-connected"));
  auto misdirected = run_command(curl("web", "/", "--http1.1 -H 'Host: other." + zone() + "'"));
  EXPECT_THAT(misdirected.output, HasSubstr("421"));
  EXPECT_THAT(misdirected.output, HasSubstr("misdirected-request"));
}

TEST_F(EdgeSmokeTest, PlainHttpRedirects) {
  const std::string command = "timeout 10 curl -sS -i http://127.0.0.1:" + std::to_string(relay().http_port()) +
                              "/a/b?c=d -H 'Host: web." + zone() + "' 2>&1";
  auto result = run_command(command);
  EXPECT_THAT(result.output, HasSubstr("HTTP/1.1 308"));
  EXPECT_THAT(result.output, HasSubstr("location: https://web." + zone() + "/a/b?c=d"));
}

TEST_F(EdgeSmokeTest, OutsideTheZoneGetsUnrecognizedName) {
  const std::string command = "echo | timeout 10 openssl s_client -connect 127.0.0.1:" +
                              std::to_string(relay().https_port()) + " -servername example.com 2>&1";
  auto result = run_command(command);
  EXPECT_THAT(result.output, HasSubstr("unrecognized name"));
}

}  // namespace
}  // namespace inkwire::testing
