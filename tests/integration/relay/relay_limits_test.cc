// Limits of issue 3 that protect the relay from a greedy or hostile agent: sessions in total and
// per organisation, streams per session, the advertised header list size (oversized blocks are
// covered by the H2Session unit tests: a conforming client, TestAgent included, refuses to send
// them), and the misbehaviour budget.
#include "tests/integration/relay/relay_test_helpers.h"

namespace inkwire::testing {
namespace {

class RelayLimitsTest : public RelayTest {
 protected:
  void adjust(Config& c) override {
    c.relay.max_sessions = 2;
    c.relay.max_sessions_per_organization = 1;
    c.relay.max_streams_per_session = 300;
    c.relay.max_header_list_bytes = 16384;
    c.relay.max_resets_per_minute = 50;
  }
};

TEST_F(RelayLimitsTest, StreamsPerSessionIsAdvertised) {
  auto agent = relay().connect_agent();
  ASSERT_TRUE(agent->wait_settings(5s));
  EXPECT_EQ(agent->server_settings()->max_concurrent_streams, 300u);
  EXPECT_EQ(agent->server_settings()->max_header_list_size, 16384u);
}

TEST_F(RelayLimitsTest, SessionsBeyondTheRelayLimitAreClosedAtAccept) {
  auto a = relay().connect_agent();
  auto b = relay().connect_agent();
  ASSERT_TRUE(wait_for([&] { return relay().metric("inkwire_relay_sessions") == 2; }, 5s));
  // The third TCP connection is accepted and closed at once: the TLS handshake cannot complete.
  AgentOptions options = relay().agent_options();
  options.timeout = 3s;
  auto c = TestAgent::connect(options);
  EXPECT_FALSE(c) << "a third session must be refused";
  EXPECT_GE(relay().metric("inkwire_relay_rejected_total", {{"reason", "max_sessions"}}), 1);
}

TEST_F(RelayLimitsTest, HellosBeyondTheOrganisationLimitGet503) {
  auto other = relay().create_tunnel("beta");
  auto first = relay().connect_and_park(tunnel(), 1);
  auto agent = relay().connect_agent();
  auto hello = agent->hello(other.id, other.secret);
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->status, 503) << "transient: the agent retries with backoff";
  EXPECT_GE(relay().metric("inkwire_relay_rejected_total", {{"reason", "sessions_per_organization"}}), 1);
  // Once the first session is gone, the organisation has room again.
  first.agent->close_abruptly();
  ASSERT_TRUE(wait_for([&] { return relay().metric("inkwire_relay_owning_sessions") == 0; }, 5s));
  auto retry = agent->hello(other.id, other.secret);
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->status, 200);
}

TEST_F(RelayLimitsTest, RapidResetsBeyondTheBudgetGetEnhanceYourCalm) {
  auto agent = relay().connect_agent();
  ASSERT_TRUE(agent->wait_settings(5s));
  // Open-and-reset in a burst (the Rapid Reset pattern): each costs the relay work and nothing
  // else; the budget is 50 per minute in this test.
  for (int i = 0; i < 200 && agent->connected(); ++i) {
    const int32_t stream = agent->request("POST", "/_system/intake", {{"content-length", "0"}}, std::string(), std::nullopt,
                                          false);
    if (stream > 0) agent->reset(stream, proto::kH2Cancel);
  }
  ASSERT_TRUE(agent->wait_goaway(5s));
  EXPECT_EQ(agent->goaway_received()->error_code, proto::kH2EnhanceYourCalm);
  EXPECT_TRUE(agent->wait_disconnected(5s));
  EXPECT_GE(relay().metric("inkwire_relay_rejected_total", {{"reason", "too_many_resets"}}), 1);
}

TEST_F(RelayLimitsTest, AWellBehavedSessionStaysWithinTheBudget) {
  auto session = relay().connect_and_park(tunnel(), 2);
  for (int i = 0; i < 60; ++i) {
    auto result = relay().call(tunnel().id, "GET", "/n/" + std::to_string(i));
    const int32_t intake = session.intakes[static_cast<std::size_t>(i % 2)];
    auto envelope = wait_envelope(*session.agent, intake, 5s);
    ASSERT_TRUE(envelope);
    auto post = session.agent->post_response(tunnel().id, tunnel().secret, *envelope->header("inkbox-request-id"), 200,
                                             {}, "ok");
    ASSERT_TRUE(session.agent->wait_end(post, 5s));
    ASSERT_EQ(result.wait_for(5s), std::future_status::ready);
    session.intakes[static_cast<std::size_t>(i % 2)] = session.agent->open_intake(tunnel().id, session.owner_token, i % 2);
  }
  EXPECT_TRUE(session.agent->connected());
  EXPECT_FALSE(session.agent->goaway_received());
}

}  // namespace
}  // namespace inkwire::testing
