// The relay end to end in its simplest form: an agent says hello, parks an intake, receives one
// webhook envelope and answers it.
#include "tests/integration/relay/relay_test_helpers.h"

namespace inkwire::testing {
namespace {

class RelaySmokeTest : public RelayTest {};

TEST_F(RelaySmokeTest, WebhookRoundTrip) {
  auto session = relay().connect_and_park(tunnel(), 1);
  auto result = relay().call(tunnel().id, "POST", "/echo?x=1", {{"Content-Type", "text/plain"}}, std::string("ping"));
  auto envelope = wait_envelope(*session.agent, session.intakes[0], 5s);
  ASSERT_TRUE(envelope);
  EXPECT_EQ(envelope->status, 200);
  EXPECT_EQ(envelope->header("inkbox-method"), "POST");
  EXPECT_EQ(envelope->header("inkbox-path"), "/echo?x=1");
  EXPECT_EQ(envelope->header("inkbox-route-kind"), "webhook");
  EXPECT_EQ(envelope->header("inkbox-h-content-type"), "text/plain");
  EXPECT_EQ(envelope->body, "ping");
  const auto request_id = envelope->header("inkbox-request-id");
  ASSERT_TRUE(request_id);
  auto post = session.agent->post_response(tunnel().id, tunnel().secret, *request_id, 201, {{"x-answer", "42"}}, "pong");
  auto post_state = session.agent->wait_end(post, 5s);
  ASSERT_TRUE(post_state);
  EXPECT_EQ(post_state->status, 200);
  ASSERT_EQ(result.wait_for(5s), std::future_status::ready);
  auto r = result.get();
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.header("x-answer"), "42");
  EXPECT_EQ(r.body, "pong");
  EXPECT_TRUE(r.body_complete);
}

}  // namespace
}  // namespace inkwire::testing
