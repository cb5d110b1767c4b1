// The intake pool and the request queue (PROTOCOL.md §4.5, §4.6, §8 A6, A11, A12): who may park,
// when a parked intake is answered without a request, which intake a request goes to, what the
// envelope carries, and what the third party gets when no agent can take its request.
#include <boost/asio/awaitable.hpp>

#include <regex>

#include "proto/protocol_constants.h"
#include "tests/integration/relay/relay_test_helpers.h"

namespace inkwire::testing {
namespace {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

// The agent answers `envelope` with `status`; the relay must accept the post (200).
void answer(TestAgent& agent, const CreatedTunnel& t, const Envelope& envelope, int status, std::string body) {
  auto post = agent.post_response(t.id, t.secret, envelope.header("inkbox-request-id").value_or(""), status, {},
                                  std::move(body));
  auto st = agent.wait_end(post, 5s);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, 200);
}

std::string lowercase(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class RelayIntakeTest : public RelayTest {};

TEST_F(RelayIntakeTest, IntakeWithForeignOwnerTokenIs401OwnerTokenRejected) {
  // §4.4: only a token minted by a hello on this same connection is accepted; anything else is
  // 401, which makes the SDK reconnect and say hello again (§4.5 step 3).
  auto other = relay().create_tunnel("bravo");
  auto mine = relay().connect_agent();
  auto hello = mine->hello(tunnel().id, tunnel().secret);
  ASSERT_TRUE(hello && hello->status == 200);
  auto theirs = relay().connect_agent();
  auto their_hello = theirs->hello(other.id, other.secret);
  ASSERT_TRUE(their_hello && their_hello->status == 200);

  const std::vector<std::pair<std::string, std::string>> attempts = {
      {"made-up token", "bogus"},
      {"empty token", ""},
      {"another connection's token", their_hello->owner_token},
  };
  for (const auto& [what, token] : attempts) {
    SCOPED_TRACE(what);
    auto intake = mine->open_intake(tunnel().id, token, 0);
    auto st = mine->wait_end(intake, 5s);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->status, 401);
    EXPECT_EQ(st->header("inkbox-reason"), "owner-token-rejected");
  }
  // Before any hello on the connection there is no token at all.
  auto fresh = relay().connect_agent();
  auto early = fresh->open_intake(tunnel().id, hello->owner_token, 0);
  auto st = fresh->wait_end(early, 5s);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, 401);
  EXPECT_EQ(st->header("inkbox-reason"), "owner-token-rejected");
}

class RelayIntakeIdleTest : public RelayTest {
 protected:
  void adjust(Config& c) override { c.relay.intake_idle_seconds = 1; }
};

TEST_F(RelayIntakeIdleTest, IdleIntakeIsAnswered204WithNoBodyAfterIntakeIdleSeconds) {
  auto agent = relay().connect_agent();
  auto hello = agent->hello(tunnel().id, tunnel().secret);
  ASSERT_TRUE(hello && hello->status == 200);
  EXPECT_EQ(hello->json.as_object().at("intake_idle_seconds"), 1) << "the hello tells the agent the idle time";
  const auto opened = SteadyClock::now();
  auto intake = agent->open_intake(tunnel().id, hello->owner_token, 0);
  // A6: never an immediate non-200, or the SDK would re-park in a hot loop.
  EXPECT_FALSE(agent->wait_headers(intake, 500ms)) << "an idle intake was answered early";
  auto st = agent->wait_end(intake, 3s);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, 204);
  EXPECT_TRUE(st->ended);
  EXPECT_EQ(st->received_total, 0u) << "204 carries no body";
  EXPECT_GE(SteadyClock::now() - opened, 900ms);
  // The SDK parks again at once (§4.5 step 4); that intake is served like any other.
  auto again = agent->open_intake(tunnel().id, hello->owner_token, 0);
  auto result = relay().call(tunnel().id, "GET", "/after-204");
  auto envelope = wait_envelope(*agent, again, 5s);
  ASSERT_TRUE(envelope);
  EXPECT_EQ(envelope->status, 200);
  EXPECT_EQ(envelope->header("inkbox-path"), "/after-204");
}

TEST_F(RelayIntakeTest, SecondIntakeOnASlotReplacesTheOlderWith204) {
  auto session = relay().connect_and_park(tunnel(), 1);
  auto newer = session.agent->open_intake(tunnel().id, session.owner_token, 0);
  // The idle time is 300 s, so a quick 204 can only be the replacement (§4.5).
  auto older = session.agent->wait_end(session.intakes[0], 2s);
  ASSERT_TRUE(older);
  EXPECT_EQ(older->status, 204);
  EXPECT_EQ(older->received_total, 0u);
  EXPECT_FALSE(session.agent->wait_headers(newer, 300ms)) << "the newer intake stays parked";
  EXPECT_EQ(relay().metric("inkwire_relay_parked_intakes"), 1);

  auto result = relay().call(tunnel().id, "GET", "/to-newer");
  auto envelope = wait_envelope(*session.agent, newer, 5s);
  ASSERT_TRUE(envelope);
  EXPECT_EQ(envelope->header("inkbox-path"), "/to-newer");
}

TEST_F(RelayIntakeTest, RequestsGoToTheOldestParkedIntakeFirst) {
  auto session = relay().connect_and_park(tunnel(), 3);
  ASSERT_EQ(relay().metric("inkwire_relay_parked_intakes"), 3);
  const auto& in = session.intakes;

  // One request at a time, so the order seen is the relay's choice and not a race.
  auto r1 = relay().call(tunnel().id, "GET", "/1");
  auto e1 = wait_envelope(*session.agent, in[0], 5s);
  ASSERT_TRUE(e1);
  EXPECT_EQ(e1->header("inkbox-path"), "/1");
  // The SDK re-parks slot 0 at once; that intake is now the newest and must wait its turn.
  auto reparked = session.agent->open_intake(tunnel().id, session.owner_token, 0);
  ASSERT_TRUE(wait_for([&] { return relay().metric("inkwire_relay_parked_intakes") == 3; }, 5s));

  auto r2 = relay().call(tunnel().id, "GET", "/2");
  auto e2 = wait_envelope(*session.agent, in[1], 5s);
  ASSERT_TRUE(e2);
  EXPECT_EQ(e2->header("inkbox-path"), "/2");
  auto r3 = relay().call(tunnel().id, "GET", "/3");
  auto e3 = wait_envelope(*session.agent, in[2], 5s);
  ASSERT_TRUE(e3);
  EXPECT_EQ(e3->header("inkbox-path"), "/3");
  auto r4 = relay().call(tunnel().id, "GET", "/4");
  auto e4 = wait_envelope(*session.agent, reparked, 5s);
  ASSERT_TRUE(e4);
  EXPECT_EQ(e4->header("inkbox-path"), "/4");

  answer(*session.agent, tunnel(), *e1, 200, "1");
  answer(*session.agent, tunnel(), *e2, 200, "2");
  answer(*session.agent, tunnel(), *e3, 200, "3");
  answer(*session.agent, tunnel(), *e4, 200, "4");
  for (auto* r : {&r1, &r2, &r3, &r4}) {
    ASSERT_EQ(r->wait_for(5s), std::future_status::ready);
    EXPECT_EQ(r->get().status, 200);
  }
}

TEST_F(RelayIntakeTest, EnvelopeCarriesMetaHeadersAndFilteredForwardedHeaders) {
  auto session = relay().connect_and_park(tunnel(), 1);
  auto result = relay().call(tunnel().id, "PATCH", "/a//b/../c%2Fd?q=1&r=%20&q=2",
                             {
                                 {"Host", "x.example"},
                                 {"Connection", "keep-alive"},
                                 {"Keep-Alive", "timeout=5"},
                                 {"TE", "trailers"},
                                 {"Upgrade", "h2c"},
                                 {"Proxy-Connection", "keep-alive"},
                                 {"Expect", "100-continue"},
                                 {"X-Forwarded-For", "198.51.100.1"},
                                 {"Forwarded", "for=198.51.100.1"},
                                 {"X-Custom-Thing", "A"},
                                 {"Cookie", "a=1"},
                                 {"Accept", "text/html"},
                                 {"cookie", "b=2"},
                                 {"Accept", "application/json"},
                                 {"Accept-Encoding", "gzip, br"},
                             },
                             std::string("body"));
  auto envelope = wait_envelope(*session.agent, session.intakes[0], 5s);
  ASSERT_TRUE(envelope);
  EXPECT_EQ(envelope->status, 200);
  const auto id = envelope->header("inkbox-request-id").value_or("");
  EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")))
      << "request id must be a URL-path-safe UUID: " << id;
  EXPECT_EQ(envelope->header("inkbox-route-kind"), "webhook");
  EXPECT_EQ(envelope->header("inkbox-method"), "PATCH");
  EXPECT_EQ(envelope->header("inkbox-path"), "/a//b/../c%2Fd?q=1&r=%20&q=2") << "raw, never normalised";
  EXPECT_EQ(envelope->header("inkbox-forwarded-for"), "203.0.113.7");
  EXPECT_EQ(envelope->body, "body");

  std::vector<std::pair<std::string, std::string>> forwarded;
  for (const auto& h : envelope->headers) {
    EXPECT_EQ(h.name, lowercase(h.name)) << "§4.1: names on the wire are lowercase";
    if (h.name.starts_with("inkbox-h-")) forwarded.emplace_back(h.name.substr(9), h.value);
  }
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"x-custom-thing", "A"},
      {"cookie", "a=1; b=2"},  // rule 2: one field, at the first cookie's place
      {"accept", "text/html"},
      {"accept", "application/json"},  // other repeated headers stay separate, in order
      {"accept-encoding", "identity"},  // A16
  };
  EXPECT_EQ(forwarded, expected);
  for (const char* banned : {"host", "connection", "keep-alive", "te", "upgrade", "proxy-connection", "expect",
                             "x-forwarded-for", "forwarded", "transfer-encoding"}) {
    EXPECT_FALSE(envelope->header(banned)) << banned << " must not reach the agent as a header";
  }
  answer(*session.agent, tunnel(), *envelope, 204, "");
  ASSERT_EQ(result.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(result.get().status, 204);
}

class RelayQueueTest : public RelayTest {
 protected:
  void adjust(Config& c) override { c.relay.queue_wait_seconds = 1; }
};

TEST_F(RelayQueueTest, RequestWithNoSessionGets503AfterQueueWait) {
  auto result = relay().call(tunnel().id, "GET", "/");
  EXPECT_EQ(result.wait_for(500ms), std::future_status::timeout) << "A12: the request waits for an agent first";
  ASSERT_EQ(result.wait_for(3s), std::future_status::ready);
  auto r = result.get();
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.failure_reason, "no-session");
  EXPECT_EQ(relay().metric("inkwire_relay_queued_requests"), 0);
}

TEST_F(RelayQueueTest, RequestWithSessionButNoParkedIntakeGets504) {
  auto agent = relay().connect_agent();
  auto hello = agent->hello(tunnel().id, tunnel().secret);
  ASSERT_TRUE(hello && hello->status == 200);
  auto result = relay().call(tunnel().id, "GET", "/");
  EXPECT_EQ(result.wait_for(500ms), std::future_status::timeout);
  ASSERT_EQ(result.wait_for(3s), std::future_status::ready);
  auto r = result.get();
  EXPECT_EQ(r.status, 504);
  EXPECT_EQ(r.failure_reason, "queue-timeout");
}

class RelayQueueLimitTest : public RelayTest {
 protected:
  void adjust(Config& c) override {
    c.relay.queue_max_requests = 2;
    c.relay.queue_wait_seconds = 3;
  }
};

TEST_F(RelayQueueLimitTest, RequestBeyondQueueMaxGets503AtOnce) {
  auto first = relay().call(tunnel().id, "GET", "/1");
  auto second = relay().call(tunnel().id, "GET", "/2");
  auto third = relay().call(tunnel().id, "GET", "/3");
  ASSERT_EQ(third.wait_for(1s), std::future_status::ready) << "a full queue refuses at once, not after the wait";
  auto r = third.get();
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.failure_reason, "queue-full");
  EXPECT_EQ(first.wait_for(0ms), std::future_status::timeout) << "queued requests keep waiting";
  // The two queued ones are still deliverable. (Not connect_and_park: it waits for the intakes to
  // stay parked, and these are taken at once.)
  auto agent = relay().connect_agent();
  auto hello = agent->hello(tunnel().id, tunnel().secret);
  ASSERT_TRUE(hello && hello->status == 200);
  auto i1 = agent->open_intake(tunnel().id, hello->owner_token, 0);
  auto i2 = agent->open_intake(tunnel().id, hello->owner_token, 1);
  auto e1 = wait_envelope(*agent, i1, 2s);
  auto e2 = wait_envelope(*agent, i2, 2s);
  ASSERT_TRUE(e1 && e2);
  EXPECT_EQ(e1->header("inkbox-path"), "/1");
  EXPECT_EQ(e2->header("inkbox-path"), "/2");
}

TEST_F(RelayIntakeTest, RequestQueuedBeforeTheIntakeParksIsDeliveredWhenItParks) {
  // Queued while no agent exists at all (the reconnect after a drain, §4.10 step 4) ...
  auto early = relay().call(tunnel().id, "GET", "/before-hello");
  ASSERT_TRUE(wait_for([&] { return relay().metric("inkwire_relay_queued_requests") == 1; }, 2s));
  auto agent = relay().connect_agent();
  auto hello = agent->hello(tunnel().id, tunnel().secret);
  ASSERT_TRUE(hello && hello->status == 200);
  // ... and while the session exists but every slot sits in its re-park gap.
  auto late = relay().call(tunnel().id, "GET", "/before-intake");
  ASSERT_TRUE(wait_for([&] { return relay().metric("inkwire_relay_queued_requests") == 2; }, 2s));
  auto i1 = agent->open_intake(tunnel().id, hello->owner_token, 0);
  auto e1 = wait_envelope(*agent, i1, 5s);
  ASSERT_TRUE(e1);
  EXPECT_EQ(e1->header("inkbox-path"), "/before-hello") << "the queue is FIFO";
  auto i2 = agent->open_intake(tunnel().id, hello->owner_token, 0);
  auto e2 = wait_envelope(*agent, i2, 5s);
  ASSERT_TRUE(e2);
  EXPECT_EQ(e2->header("inkbox-path"), "/before-intake");
  answer(*agent, tunnel(), *e1, 200, "early");
  answer(*agent, tunnel(), *e2, 200, "late");
  ASSERT_EQ(early.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(early.get().body, "early");
  ASSERT_EQ(late.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(late.get().body, "late");
}

TEST_F(RelayIntakeTest, AgentLostWithRequestDeliveredGives502AtOnce) {
  auto session = relay().connect_and_park(tunnel(), 1);
  auto result = relay().call(tunnel().id, "GET", "/lost");
  auto envelope = wait_envelope(*session.agent, session.intakes[0], 5s);
  ASSERT_TRUE(envelope);
  const auto lost_at = SteadyClock::now();
  session.agent->close_abruptly();
  // §4.7: the third party learns at once; the 30 s response deadline is not what ends it.
  ASSERT_EQ(result.wait_for(2s), std::future_status::ready);
  EXPECT_LT(SteadyClock::now() - lost_at, 2s);
  auto r = result.get();
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(r.failure_reason, "session-lost");
}

// A webhook whose body the edge has not written yet: the relay sends the envelope's HEADERS and
// then waits for the body, which leaves a window in which the intake is not yet delivered (A11).
std::shared_ptr<relay::Exchange> dispatch_with_open_body(TestRelay& relay, const CreatedTunnel& t) {
  relay::InboundCall call;
  call.tunnel_id = *Uuid::parse(t.id);
  call.kind = proto::RouteKind::webhook;
  call.request.method = "POST";
  call.request.target = "/a11";
  call.request.client_ip = "203.0.113.7";
  call.has_body = true;
  return relay.run([&]() -> asio::awaitable<std::shared_ptr<relay::Exchange>> {
    auto dispatched = relay.relay().registry().dispatch(std::move(call));
    if (!dispatched) throw std::runtime_error("dispatch refused");
    co_return *dispatched;
  });
}

TEST_F(RelayIntakeTest, IntakeResetBeforeEnvelopeEndIsRedeliveredToTheNextIntake) {
  auto session = relay().connect_and_park(tunnel(), 1);
  auto exchange = dispatch_with_open_body(relay(), tunnel());
  auto first = session.agent->wait_headers(session.intakes[0], 5s);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200);
  ASSERT_FALSE(first->ended);
  const auto id = first->header("inkbox-request-id");
  ASSERT_TRUE(id);

  // A11: reset before END_STREAM, so the request never counted as delivered; it goes back to the
  // front of the queue and the next parked intake carries it.
  session.agent->reset(session.intakes[0], proto::kH2Cancel);
  ASSERT_TRUE(wait_for([&] { return relay().metric("inkwire_relay_redelivered_total") >= 1; }, 5s));
  auto second = session.agent->open_intake(tunnel().id, session.owner_token, 0);
  auto headers = session.agent->wait_headers(second, 5s);
  ASSERT_TRUE(headers);
  EXPECT_EQ(headers->status, 200);
  EXPECT_EQ(headers->header("inkbox-request-id"), id) << "the same request, not a new one";

  relay().run([&]() -> asio::awaitable<void> {
    co_await exchange->request_body().write("late body");
    exchange->request_body().finish();
  });
  auto envelope = wait_envelope(*session.agent, second, 5s);
  ASSERT_TRUE(envelope);
  EXPECT_EQ(envelope->body, "late body");
  answer(*session.agent, tunnel(), *envelope, 202, "");
  const int status = relay().run([&]() -> asio::awaitable<int> {
    auto head = co_await exchange->response();
    co_return head ? head->status : -head.error().status;
  });
  EXPECT_EQ(status, 202);
}

}  // namespace
}  // namespace inkwire::testing
