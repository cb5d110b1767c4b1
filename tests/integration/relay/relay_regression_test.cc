// Regressions found in review: credit lost when a third party leaves mid-response, and an
// organisation being disabled while its agents are connected.
#include "tests/integration/relay/relay_test_helpers.h"

namespace inkwire::testing {
namespace {

class RelaySmallWindowTest : public RelayTest {
 protected:
  void adjust(Config& c) override {
    c.relay.stream_window_bytes = 65535;
    c.relay.connection_window_bytes = 65535;
  }
};

TEST_F(RelaySmallWindowTest, ThirdPartyLeavingMidResponseDoesNotShrinkTheConnectionWindow) {
  auto session = relay().connect_and_park(tunnel(), 1);
  // Request 1: the edge reads the head, then goes away while the agent still sends the body. With
  // one 64 KiB connection window, any credit lost here would stall every later post.
  auto exchange = relay().dispatch(tunnel().id, proto::RouteKind::webhook);
  auto envelope = wait_envelope(*session.agent, session.intakes[0], 5s);
  ASSERT_TRUE(envelope);
  const auto id = *envelope->header("inkbox-request-id");
  const std::string big(300 * 1024, 'x');
  auto post = session.agent->post_response(tunnel().id, tunnel().secret, id, 200, {}, big);
  ASSERT_GT(post, 0);
  auto status = relay().run([&]() -> boost::asio::awaitable<int> {
    auto head = co_await exchange->response();
    co_return head ? head->status : -1;
  });
  EXPECT_EQ(status, 200);
  relay().run([&]() -> boost::asio::awaitable<bool> {
    exchange->cancel();
    co_return true;
  });
  auto closed = session.agent->wait_closed_stream(post, 5s);
  ASSERT_TRUE(closed) << "the relay resets a post whose third party left";
  // Request 2 through a new intake: a body several windows long must still get through.
  const int32_t intake = session.agent->open_intake(tunnel().id, session.owner_token, 0);
  auto result = relay().call(tunnel().id, "GET", "/second");
  auto second = wait_envelope(*session.agent, intake, 5s);
  ASSERT_TRUE(second);
  auto post2 = session.agent->post_response(tunnel().id, tunnel().secret, *second->header("inkbox-request-id"), 200,
                                            {}, big);
  ASSERT_EQ(result.wait_for(10s), std::future_status::ready) << "the connection window leaked";
  auto r = result.get();
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body_complete);
  EXPECT_EQ(r.body.size(), big.size());
  (void)post2;
}

class RelayOrganisationTest : public RelayTest {};

TEST_F(RelayOrganisationTest, DisablingTheOrganisationClosesItsSessionsAtOnce) {
  auto session = relay().connect_and_park(tunnel(), 1);
  ASSERT_TRUE(wait_for([&] { return tunnel_json(tunnel().id).as_object().at("currently_connected") == true; }, 5s));
  auto& access = cp().control_plane().access_repository();
  ASSERT_TRUE(access.update_organization(*Uuid::parse(cp().org_id()), true, std::nullopt));
  EXPECT_TRUE(session.agent->wait_disconnected(3s)) << "a disabled organisation's sessions are closed";
  EXPECT_TRUE(wait_for([&] { return tunnel_json(tunnel().id).is_object(); }, 1s));
  // A new hello is refused with 403 (terminal for the SDK) while the organisation stays disabled.
  auto agent = relay().connect_agent();
  auto hello = agent->hello(tunnel().id, tunnel().secret);
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->status, 403);
  ASSERT_TRUE(access.update_organization(*Uuid::parse(cp().org_id()), false, std::nullopt));
  EXPECT_TRUE(wait_for(
      [&] {
        auto again = relay().connect_agent();
        auto h = again->hello(tunnel().id, tunnel().secret);
        return h && h->status == 200;
      },
      5s));
}

}  // namespace
}  // namespace inkwire::testing
