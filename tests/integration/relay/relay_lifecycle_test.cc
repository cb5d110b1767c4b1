// Sessions over their whole life (PROTOCOL.md §4.10, §4.11, §8 A2, A18, A34): takeover by a newer
// hello, tunnel deletion, drain, liveness PINGs, a database outage, a relay restart, and the
// gauges returning to zero once everything is gone.
#include <pqxx/pqxx>

#include <boost/asio/awaitable.hpp>

#include <thread>

#include "proto/protocol_constants.h"
#include "tests/integration/relay/relay_test_helpers.h"
#include "tests/support/test_database.h"

namespace inkwire::testing {
namespace {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

// Posts the agent's answer to `envelope` and returns the relay's reply status (0 on a timeout).
int post_answer(TestAgent& agent, const CreatedTunnel& t, const Envelope& envelope, std::string body) {
  auto post = agent.post_response(t.id, t.secret, envelope.header("inkbox-request-id").value_or(""), 200, {},
                                  std::move(body));
  auto st = agent.wait_end(post, 5s);
  return st ? st->status : 0;
}

// Waits for the third party's result; status 0 when it did not come in time.
EdgeResult edge_result(std::future<EdgeResult>& f, std::chrono::milliseconds timeout = 5s) {
  if (f.wait_for(timeout) != std::future_status::ready) return {};
  return f.get();
}

class RelayLifecycleTest : public RelayTest {
 protected:
  bool currently_connected_becomes(bool value, std::chrono::milliseconds timeout = 5s) {
    return wait_for(
        [&] {
          auto t = tunnel_json(tunnel().id);
          return t.is_object() && t.as_object().at("currently_connected") == value;
        },
        timeout);
  }
  // The expected GOAWAY of a displaced session (§4.11).
  void expect_superseded_goaway(TestAgent& agent) {
    ASSERT_TRUE(agent.wait_goaway(3s)) << "the displaced session gets a GOAWAY";
    auto goaway = agent.goaway_received();
    ASSERT_TRUE(goaway);
    EXPECT_EQ(goaway->error_code, proto::kH2Superseded);
    EXPECT_EQ(goaway->debug_data, R"({"reason":"superseded"})");
    EXPECT_TRUE(agent.wait_disconnected(3s)) << "A18: the connection is closed soon after the GOAWAY";
  }
};

TEST_F(RelayLifecycleTest, NewerHelloSupersedesTheIdleOlderSession) {
  auto a = relay().connect_and_park(tunnel(), 2);
  auto b = relay().connect_agent();
  auto hello = b->hello(tunnel().id, tunnel().secret);
  ASSERT_TRUE(hello && hello->status == 200) << "A2: the newest hello wins";

  for (int32_t intake : a.intakes) {
    auto st = a.agent->wait_end(intake, 3s);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->status, 401);
    EXPECT_EQ(st->header("inkbox-reason"), "intake-superseded");
  }
  expect_superseded_goaway(*a.agent);

  auto intake = b->open_intake(tunnel().id, hello->owner_token, 0);
  auto result = relay().call(tunnel().id, "GET", "/to-b");
  auto envelope = wait_envelope(*b, intake, 5s);
  ASSERT_TRUE(envelope);
  EXPECT_EQ(envelope->header("inkbox-path"), "/to-b");
  EXPECT_EQ(post_answer(*b, tunnel(), *envelope, "b"), 200);
  EXPECT_EQ(edge_result(result).body, "b");
  // A34: the displaced session leaving does not clear the flag B holds.
  EXPECT_TRUE(currently_connected_becomes(true));
  std::this_thread::sleep_for(200ms);  // give a wrong "disconnected" write the time to land
  EXPECT_EQ(tunnel_json(tunnel().id).as_object().at("currently_connected"), true);
}

TEST_F(RelayLifecycleTest, SupersededSessionFinishesItsInFlightRequestThenCloses) {
  auto a = relay().connect_and_park(tunnel(), 2);
  auto result = relay().call(tunnel().id, "GET", "/in-flight");
  auto envelope = wait_envelope(*a.agent, a.intakes[0], 5s);
  ASSERT_TRUE(envelope);

  auto b = relay().connect_agent();
  auto hello = b->hello(tunnel().id, tunnel().secret);
  ASSERT_TRUE(hello && hello->status == 200);
  auto parked = a.agent->wait_end(a.intakes[1], 3s);
  ASSERT_TRUE(parked);
  EXPECT_EQ(parked->status, 401);
  EXPECT_EQ(parked->header("inkbox-reason"), "intake-superseded");
  // Intakes A parks after the takeover are refused too, but A stays up for its post.
  auto late = a.agent->open_intake(tunnel().id, a.owner_token, 0);
  ASSERT_GT(late, 0) << a.agent->last_error();
  auto late_state = a.agent->wait_end(late, 3s);
  ASSERT_TRUE(late_state);
  EXPECT_EQ(late_state->status, 401);
  EXPECT_EQ(late_state->header("inkbox-reason"), "intake-superseded");
  EXPECT_FALSE(a.agent->goaway_received()) << "no GOAWAY while a request is in flight";

  EXPECT_EQ(post_answer(*a.agent, tunnel(), *envelope, "from-a"), 200);
  auto r = edge_result(result);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "from-a");
  expect_superseded_goaway(*a.agent);
}

TEST_F(RelayLifecycleTest, ResponsePostedOverTheNewSessionAnswersARequestOfTheOldOne) {
  // Make-before-break: the request went out on A, A's successor B answers it (correlation is per
  // tunnel, not per connection).
  auto a = relay().connect_and_park(tunnel(), 1);
  auto result = relay().call(tunnel().id, "GET", "/handoff");
  auto envelope = wait_envelope(*a.agent, a.intakes[0], 5s);
  ASSERT_TRUE(envelope);
  auto b = relay().connect_agent();
  auto hello = b->hello(tunnel().id, tunnel().secret);
  ASSERT_TRUE(hello && hello->status == 200);

  EXPECT_EQ(post_answer(*b, tunnel(), *envelope, "from-b"), 200);
  auto r = edge_result(result);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "from-b");
  // The same request cannot be answered twice, whichever session tries (§4.7: 409).
  auto again = a.agent->post_response(tunnel().id, tunnel().secret, *envelope->header("inkbox-request-id"), 200, {}, "");
  auto again_state = a.agent->wait_end(again, 5s);
  ASSERT_TRUE(again_state);
  EXPECT_EQ(again_state->status, 409);
}

TEST_F(RelayLifecycleTest, SupersededSessionClosesOnceItsRequestIsAnsweredOverTheNewSession) {
  // A's only work is the request delivered through it; once B answers it, A must be closed. The
  // relay re-checks a displaced session only on its own stream events or timer: maybe_finish_displaced()
  // asks for a re-check in 100 ms via reschedule_timer(), but from inside housekeeping() that is lost
  // (the timer is not armed at that point and housekeeping() then sets timer_at_ to the next PING).
  auto a = relay().connect_and_park(tunnel(), 1);
  auto result = relay().call(tunnel().id, "GET", "/handoff");
  auto envelope = wait_envelope(*a.agent, a.intakes[0], 5s);
  ASSERT_TRUE(envelope);
  auto b = relay().connect_agent();
  auto hello = b->hello(tunnel().id, tunnel().secret);
  ASSERT_TRUE(hello && hello->status == 200);
  EXPECT_FALSE(a.agent->wait_goaway(300ms)) << "A still has a request in flight";
  EXPECT_EQ(post_answer(*b, tunnel(), *envelope, "from-b"), 200);
  EXPECT_EQ(edge_result(result).status, 200);
  // A's last piece of work is done (by B), so A is closed as superseded, promptly (§4.11).
  expect_superseded_goaway(*a.agent);
}

TEST_F(RelayLifecycleTest, DeletingTheTunnelClosesItsSessionAndFailsQueuedRequests) {
  auto agent = relay().connect_agent();
  auto hello = agent->hello(tunnel().id, tunnel().secret);
  ASSERT_TRUE(hello && hello->status == 200);
  // A session but no parked intake: the request waits in the tunnel's queue.
  auto queued = relay().call(tunnel().id, "GET", "/queued");
  ASSERT_TRUE(wait_for([&] { return relay().metric("inkwire_relay_queued_requests") == 1; }, 2s));

  ASSERT_EQ(cp().client().del("/api/v1/tunnels/" + tunnel().id, cp().admin_key()).status, 200);
  const auto deleted_at = SteadyClock::now();
  ASSERT_TRUE(agent->wait_disconnected(3s));
  const auto took = SteadyClock::now() - deleted_at;
  const auto took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
  RecordProperty("closed_after_delete_ms", static_cast<int>(took_ms));
  EXPECT_LT(took, 2s) << "closed " << took_ms << " ms after the DELETE (target: within 1 s)";
  if (auto goaway = agent->goaway_received()) {
    EXPECT_EQ(goaway->error_code, proto::kH2NoError);
  }
  auto r = edge_result(queued, 2s);
  EXPECT_EQ(r.status, 503) << "the queued request fails instead of waiting out the queue";
  EXPECT_EQ(r.failure_reason, "tunnel-removed");
}

TEST_F(RelayLifecycleTest, DrainClosesIdleSessionsAtOnceAndBusyOnesAfterTheirPost) {
  auto bravo = relay().create_tunnel("bravo");
  auto idle = relay().connect_and_park(tunnel(), 1);
  auto busy = relay().connect_and_park(bravo, 1);
  auto result = relay().call(bravo.id, "GET", "/in-flight");
  auto envelope = wait_envelope(*busy.agent, busy.intakes[0], 5s);
  ASSERT_TRUE(envelope);

  relay().run([&]() -> asio::awaitable<void> {
    relay().relay().begin_drain();
    co_return;
  });
  ASSERT_TRUE(idle.agent->wait_goaway(2s)) << "A18: an idle session gets its GOAWAY at once";
  EXPECT_EQ(idle.agent->goaway_received()->error_code, proto::kH2NoError);
  EXPECT_TRUE(idle.agent->wait_disconnected(2s)) << "A18: and is closed within about 1 s";
  EXPECT_FALSE(TestAgent::connect(relay().agent_options())) << "a draining relay takes no new connections";

  // The busy session keeps its connection until the post has been answered.
  EXPECT_FALSE(busy.agent->wait_goaway(500ms));
  EXPECT_TRUE(busy.agent->connected());
  EXPECT_EQ(post_answer(*busy.agent, bravo, *envelope, "done"), 200);
  EXPECT_EQ(edge_result(result).body, "done");
  ASSERT_TRUE(busy.agent->wait_goaway(3s));
  EXPECT_EQ(busy.agent->goaway_received()->error_code, proto::kH2NoError);
  EXPECT_TRUE(busy.agent->wait_disconnected(3s));
}

class RelayPingTest : public RelayTest {
 protected:
  void adjust(Config& c) override {
    c.relay.ping_interval_seconds = 1;
    c.relay.ping_timeout_seconds = 1;  // a lost ACK would drop the session within the test
  }
};

TEST_F(RelayPingTest, AnsweredRelayPingsKeepTheSessionAlive) {
  auto session = relay().connect_and_park(tunnel(), 1);
  EXPECT_FALSE(session.agent->wait_disconnected(2500ms)) << "the agent ACKs every PING; nothing may drop it";
  EXPECT_EQ(relay().metric("inkwire_relay_ping_timeouts_total"), 0);
  auto result = relay().call(tunnel().id, "GET", "/alive");
  auto envelope = wait_envelope(*session.agent, session.intakes[0], 5s);
  ASSERT_TRUE(envelope);
  EXPECT_EQ(post_answer(*session.agent, tunnel(), *envelope, "alive"), 200);
  EXPECT_EQ(edge_result(result).body, "alive");
}

TEST_F(RelayLifecycleTest, AgentPingIsAcknowledged) {
  auto session = relay().connect_and_park(tunnel(), 1);
  session.agent->ping(0x1122334455667788ULL);
  EXPECT_TRUE(session.agent->wait_ping_ack(0x1122334455667788ULL, 2s)) << "§4.1: PINGs are answered promptly";
  // Before hello too: the SDK's PING timer is not tied to the hello.
  auto fresh = relay().connect_agent();
  fresh->ping(7);
  EXPECT_TRUE(fresh->wait_ping_ack(7, 2s));
}

// The relay's database made unreachable: connections to this test's database are refused and the
// open ones terminated, through a separate admin connection to the cluster.
class RelayDatabaseOutageTest : public RelayTest {
 protected:
  // Short, so that the outage test reaches the "cache expired, database down" path.
  void adjust(Config& c) override { c.relay.directory_cache_seconds = 1; }

  std::string database_name() const {
    const std::string& url = control_plane_->database_url();
    std::string name = url.substr(url.rfind('/') + 1);
    return name.substr(0, name.find('?'));
  }
  void set_allow_connections(bool allow) {
    pqxx::connection c(test_cluster_admin_url());
    pqxx::nontransaction tx(c);
    const std::string name = database_name();
    tx.exec("ALTER DATABASE " + tx.quote_name(name) + " ALLOW_CONNECTIONS " + (allow ? "true" : "false"));
    if (!allow) {
      tx.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = " + tx.quote(name) +
              " AND pid <> pg_backend_pid()");
    }
    down_ = !allow;
  }
  void TearDown() override {
    if (down_) set_allow_connections(true);
    RelayTest::TearDown();
  }
  bool down_ = false;
};

TEST_F(RelayDatabaseOutageTest, KnownTunnelsKeepRoutingWhileTheDatabaseIsDown) {
  auto never_seen = relay().create_tunnel("bravo");
  {
    // The relay learns the tunnel's state through one successful hello.
    auto first = relay().connect_agent();
    auto hello = first->hello(tunnel().id, tunnel().secret);
    ASSERT_TRUE(hello && hello->status == 200);
  }
  set_allow_connections(false);
  std::this_thread::sleep_for(1200ms);  // let the 1 s cache entry expire: the database must be asked

  auto agent = relay().connect_agent();
  auto hello = agent->hello(tunnel().id, tunnel().secret);
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->status, 200) << "a known tunnel is served from the stale cache: " << hello->body;
  EXPECT_GE(relay().metric("inkwire_relay_directory_lookups_total", {{"result", "stale_during_outage"}}), 1);
  if (hello->status == 200) {
    auto intake = agent->open_intake(tunnel().id, hello->owner_token, 0);
    auto result = relay().call(tunnel().id, "GET", "/during-outage");
    auto envelope = wait_envelope(*agent, intake, 5s);
    ASSERT_TRUE(envelope);
    EXPECT_EQ(post_answer(*agent, tunnel(), *envelope, "still here"), 200);
    EXPECT_EQ(edge_result(result).body, "still here");
  }
  // A tunnel the relay has never seen cannot be checked: a transient 503, never the terminal 401.
  auto other = relay().connect_agent();
  auto refused = other->hello(never_seen.id, never_seen.secret);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;

  set_allow_connections(true);
}

TEST_F(RelayLifecycleTest, AgentsComeBackAfterARelayRestart) {
  auto before = relay().connect_and_park(tunnel(), 1);
  ASSERT_TRUE(currently_connected_becomes(true));
  relay_.reset();  // drain + close, as at shutdown
  EXPECT_TRUE(before.agent->wait_disconnected(3s));
  EXPECT_TRUE(currently_connected_becomes(false)) << "A34: no session, so not connected";

  relay_ = std::make_unique<TestRelay>(*control_plane_, [this](Config& c) { adjust(c); });
  auto after = relay().connect_and_park(tunnel(), 1);
  auto result = relay().call(tunnel().id, "GET", "/after-restart");
  auto envelope = wait_envelope(*after.agent, after.intakes[0], 5s);
  ASSERT_TRUE(envelope);
  EXPECT_EQ(post_answer(*after.agent, tunnel(), *envelope, "back"), 200);
  EXPECT_EQ(edge_result(result).body, "back");
  EXPECT_TRUE(currently_connected_becomes(true));
}

TEST_F(RelayLifecycleTest, GaugesReturnToZeroOnceEverySessionIsGone) {
  auto bravo = relay().create_tunnel("bravo");
  auto a = relay().connect_and_park(tunnel(), 3);
  auto in_flight = relay().call(tunnel().id, "GET", "/in-flight");
  auto envelope = wait_envelope(*a.agent, a.intakes[0], 5s);
  ASSERT_TRUE(envelope);
  auto queued = relay().call(bravo.id, "GET", "/queued");  // no session for bravo yet
  ASSERT_TRUE(wait_for([&] { return relay().metric("inkwire_relay_queued_requests") == 1; }, 2s));
  EXPECT_EQ(relay().metric("inkwire_relay_sessions"), 1);
  EXPECT_EQ(relay().metric("inkwire_relay_parked_intakes"), 2);
  EXPECT_EQ(relay().metric("inkwire_relay_outstanding_requests"), 1);

  // A is displaced (its parked intakes answered 401), finishes its request and is closed.
  auto b = relay().connect_agent();
  auto hello_b = b->hello(tunnel().id, tunnel().secret);
  ASSERT_TRUE(hello_b && hello_b->status == 200);
  EXPECT_EQ(post_answer(*a.agent, tunnel(), *envelope, "a"), 200);
  EXPECT_EQ(edge_result(in_flight).status, 200);
  b->open_intake(tunnel().id, hello_b->owner_token, 0);
  b->open_intake(tunnel().id, hello_b->owner_token, 1);

  // The queued bravo request goes to C, which answers it and leaves politely.
  auto c = relay().connect_agent();
  auto hello_c = c->hello(bravo.id, bravo.secret);
  ASSERT_TRUE(hello_c && hello_c->status == 200);
  auto c_intake = c->open_intake(bravo.id, hello_c->owner_token, 0);
  auto c_envelope = wait_envelope(*c, c_intake, 5s);
  ASSERT_TRUE(c_envelope);
  EXPECT_EQ(post_answer(*c, bravo, *c_envelope, "c"), 200);
  EXPECT_EQ(edge_result(queued).body, "c");
  ASSERT_TRUE(wait_for([&] { return relay().metric("inkwire_relay_parked_intakes") == 2; }, 2s));

  c->close_tls();
  b->close_abruptly();
  EXPECT_TRUE(a.agent->wait_disconnected(3s));
  for (const char* gauge : {"inkwire_relay_sessions", "inkwire_relay_owning_sessions", "inkwire_relay_parked_intakes",
                            "inkwire_relay_queued_requests", "inkwire_relay_outstanding_requests",
                            "inkwire_relay_bridges_open"}) {
    EXPECT_TRUE(wait_for([&] { return relay().metric(gauge) == 0; }, 5s)) << gauge << " = " << relay().metric(gauge);
  }
}

}  // namespace
}  // namespace inkwire::testing

namespace inkwire::testing {
namespace {

class RelayStalledDatabaseTest : public RelayTest {
 protected:
  void adjust(Config& c) override { c.relay.hello_timeout_seconds = 1; }
};

TEST_F(RelayStalledDatabaseTest, HelloIsAnsweredEvenWhenTheDatabaseHangs) {
  // §4.3: the SDKs wait for a hello's answer forever. A lock on the tunnels table makes the
  // relay's lookup hang (until the statement timeout, 10 s); the hello must still be answered, with
  // a transient 503, within hello_timeout_seconds.
  pqxx::connection locker(cp().database_url());
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE tunnels IN ACCESS EXCLUSIVE MODE");
  auto agent = relay().connect_agent();
  const auto started = std::chrono::steady_clock::now();
  auto hello = agent->hello(tunnel().id, tunnel().secret, std::nullopt, 5s);
  const auto waited = std::chrono::steady_clock::now() - started;
  lock.abort();
  ASSERT_TRUE(hello) << "no answer to the hello";
  EXPECT_EQ(hello->status, 503);
  EXPECT_LT(waited, 4s);
  // With the lock gone the same connection may say hello again and is let in.
  auto retry = agent->hello(tunnel().id, tunnel().secret, std::nullopt, 10s);
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->status, 200);
}

}  // namespace
}  // namespace inkwire::testing
