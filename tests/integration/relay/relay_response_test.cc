// The response post (PROTOCOL.md §4.7, §8 A7-A9): bodies both ways, Set-Cookie splitting, what is
// stripped toward the third party, the post's error replies (404/409/410/400/401), the deadline,
// session loss, resets and the body cap, and flow control on the post stream.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include "tests/integration/relay/relay_test_helpers.h"

namespace inkwire::testing {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

constexpr std::uint32_t kCancel = 0x8;  // RST_STREAM(CANCEL)

// Deterministic bytes covering every octet value, different per seed.
std::string pattern(std::size_t n, unsigned seed) {
  std::string out(n, '\0');
  std::uint32_t x = 0x9E3779B9u * (seed + 1);
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

// The headers of a response post as §4.2 lists them, for posts the shorthand cannot build.
proto::H2Headers post_headers(const CreatedTunnel& t, std::string_view request_id, std::string status,
                              std::size_t content_length) {
  return {{"x-tunnel-id", t.id},
          {"x-tunnel-secret", t.secret},
          {"inkbox-status", std::move(status)},
          {"inkbox-request-id", std::string(request_id)},
          {"content-length", std::to_string(content_length)}};
}

std::string post_path(std::string_view request_id) { return "/_system/response/" + std::string(request_id); }

// The edge's view of one webhook exchange: the whole head (with the logged reason) and body.
struct EdgeHead {
  int status = 0;
  std::vector<proto::HeaderField> headers;
  std::string reason;
  std::string failure;
};
asio::awaitable<EdgeHead> await_head(std::shared_ptr<relay::Exchange> exchange) {
  EdgeHead out;
  auto head = co_await exchange->response();
  if (!head) {
    out.status = head.error().status;
    out.failure = head.error().reason;
    co_return out;
  }
  out.status = head->status;
  out.headers = head->headers;
  out.reason = head->reason;
  co_return out;
}

bool has_header(const std::vector<proto::HeaderField>& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (h.name == name) return true;
  }
  return false;
}

class RelayResponseTest : public RelayTest {
 protected:
  // The request id of the envelope delivered on `intake` ("" and a test failure when none came).
  std::string request_id_from(TestAgent& agent, int32_t intake) {
    auto envelope = wait_envelope(agent, intake, 10s);
    EXPECT_TRUE(envelope) << "no envelope on intake " << intake;
    if (!envelope) return {};
    auto id = envelope->header("inkbox-request-id");
    EXPECT_TRUE(id);
    return id.value_or("");
  }
  // The relay's reply status to a post (0 on timeout).
  static int reply_status(TestAgent& agent, int32_t post) {
    auto state = agent.wait_end(post, 10s);
    return state ? state->status : 0;
  }
  static std::optional<EdgeResult> result_of(std::future<EdgeResult>& future, std::chrono::milliseconds bound = 10s) {
    if (future.wait_for(bound) != std::future_status::ready) return std::nullopt;
    return future.get();
  }
};

TEST_F(RelayResponseTest, RoundTripCarriesMultiWindowRequestBodyAndOneMebibyteResponseIntact) {
  auto session = relay().connect_and_park(tunnel(), 1);
  const std::string request_body = pattern(200 * 1024, 1);  // more than one 64 KiB window
  const std::string response_body = pattern(1024 * 1024, 2);
  auto result = relay().call(tunnel().id, "POST", "/upload", {{"content-type", "application/octet-stream"}},
                             request_body);
  auto envelope = wait_envelope(*session.agent, session.intakes[0], 10s);
  ASSERT_TRUE(envelope);
  ASSERT_EQ(envelope->body.size(), request_body.size());
  EXPECT_TRUE(envelope->body == request_body) << "request body bytes differ";
  const auto request_id = envelope->header("inkbox-request-id");
  ASSERT_TRUE(request_id);

  auto post = session.agent->post_response(tunnel().id, tunnel().secret, *request_id, 200,
                                           {{"content-type", "application/octet-stream"}}, response_body);
  EXPECT_EQ(reply_status(*session.agent, post), 200);
  auto r = result_of(result);
  ASSERT_TRUE(r) << "the third party got no answer";
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-type"), "application/octet-stream");
  EXPECT_TRUE(r->body_complete);
  ASSERT_EQ(r->body.size(), response_body.size());
  EXPECT_TRUE(r->body == response_body) << "response body bytes differ";
}

TEST_F(RelayResponseTest, TwoSetCookiesReachTheThirdPartySeparatelyInBothSdkStyles) {
  auto session = relay().connect_and_park(tunnel(), 2);
  // TS: one inkbox-h-set-cookie field per cookie.
  auto ts = relay().call(tunnel().id, "GET", "/ts");
  const std::string ts_id = request_id_from(*session.agent, session.intakes[0]);
  auto ts_post = session.agent->post_response(tunnel().id, tunnel().secret, ts_id, 200,
                                              {{"set-cookie", "a=1; Path=/"}, {"set-cookie", "b=2; HttpOnly"}}, "ts");
  EXPECT_EQ(reply_status(*session.agent, ts_post), 200);
  auto ts_result = result_of(ts);
  ASSERT_TRUE(ts_result);
  EXPECT_EQ(ts_result->header_values("set-cookie"), (std::vector<std::string>{"a=1; Path=/", "b=2; HttpOnly"}));

  // Python URL mode: one field, cookies joined by ", "; the comma inside Expires is not a boundary.
  auto py = relay().call(tunnel().id, "GET", "/py");
  const std::string py_id = request_id_from(*session.agent, session.intakes[1]);
  auto py_post = session.agent->post_response(
      tunnel().id, tunnel().secret, py_id, 200,
      {{"set-cookie", "s=1; Path=/, t=2; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT"}}, "py");
  EXPECT_EQ(reply_status(*session.agent, py_post), 200);
  auto py_result = result_of(py);
  ASSERT_TRUE(py_result);
  EXPECT_EQ(py_result->header_values("set-cookie"),
            (std::vector<std::string>{"s=1; Path=/", "t=2; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT"}));
}

TEST_F(RelayResponseTest, InkboxAndHopByHopHeadersAreStrippedAndTheReasonIsKeptForTheLog) {
  auto session = relay().connect_and_park(tunnel(), 2);
  // TS style: the reason both wrapped and top-level; the top-level one wins.
  auto ts = relay().dispatch(tunnel().id, proto::RouteKind::webhook);
  const std::string ts_id = request_id_from(*session.agent, session.intakes[0]);
  auto ts_post = session.agent->post_response(
      tunnel().id, tunnel().secret, ts_id, 502,
      {{"inkbox-reason", "wrapped-reason"},
       {"inkbox-foo", "meta"},
       {"x-use-inkbox-foo", "kept"},
       {"x-custom", "yes"},
       {"connection", "close"},
       {"keep-alive", "timeout=5"},
       {"transfer-encoding", "chunked"},
       {"upgrade", "h2c"},
       {"te", "trailers"},
       {"trailer", "x-sum"},
       {"proxy-authenticate", "Basic"},
       {"proxy-authorization", "Basic Zm9v"},
       {"proxy-connection", "keep-alive"},
       {"content-length", "999"}},
      "upstream failed", {{"inkbox-reason", "upstream-unreachable"}});
  EXPECT_EQ(reply_status(*session.agent, ts_post), 200);
  const EdgeHead head = relay().run([ts] { return await_head(ts); }, 10s);
  EXPECT_EQ(head.status, 502);
  EXPECT_EQ(head.reason, "upstream-unreachable");
  std::vector<std::string> names;
  for (const auto& h : head.headers) names.push_back(h.name);
  EXPECT_EQ(names, (std::vector<std::string>{"x-use-inkbox-foo", "x-custom"}));
  for (std::string_view gone : {"inkbox-reason", "inkbox-foo", "connection", "keep-alive", "transfer-encoding",
                                "upgrade", "te", "trailer", "proxy-authenticate", "proxy-authorization",
                                "proxy-connection", "content-length"}) {
    EXPECT_FALSE(has_header(head.headers, gone)) << gone;
  }

  // Python style: only the wrapped reason, which is then the one logged.
  auto py = relay().dispatch(tunnel().id, proto::RouteKind::webhook);
  const std::string py_id = request_id_from(*session.agent, session.intakes[1]);
  auto py_post = session.agent->post_response(tunnel().id, tunnel().secret, py_id, 400,
                                              {{"inkbox-reason", "invalid-path"}}, "invalid path");
  EXPECT_EQ(reply_status(*session.agent, py_post), 200);
  const EdgeHead py_head = relay().run([py] { return await_head(py); }, 10s);
  EXPECT_EQ(py_head.status, 400);
  EXPECT_EQ(py_head.reason, "invalid-path");
  EXPECT_TRUE(py_head.headers.empty());
}

TEST_F(RelayResponseTest, PostForUnknownRequestIdGets404) {
  auto session = relay().connect_and_park(tunnel(), 1);
  const std::string unknown = "3f1c2b9e-8d7a-4c6b-9e5f-0a1b2c3d4e5f";
  auto post = session.agent->post_response(tunnel().id, tunnel().secret, unknown, 200, {}, "x");
  EXPECT_EQ(reply_status(*session.agent, post), 404);
  // Not an id the relay could ever have minted, either.
  auto odd = session.agent->request("POST", post_path("not%20an%20id"), post_headers(tunnel(), "not%20an%20id", "200", 0),
                                    std::nullopt);
  EXPECT_EQ(reply_status(*session.agent, odd), 404);
}

TEST_F(RelayResponseTest, SecondPostForTheSameRequestGets409AndDoesNotChangeTheAnswer) {
  auto session = relay().connect_and_park(tunnel(), 1);
  auto result = relay().call(tunnel().id, "GET", "/once");
  const std::string id = request_id_from(*session.agent, session.intakes[0]);
  auto first = session.agent->post_response(tunnel().id, tunnel().secret, id, 201, {}, "first");
  EXPECT_EQ(reply_status(*session.agent, first), 200);
  auto second = session.agent->post_response(tunnel().id, tunnel().secret, id, 500, {}, "second");
  EXPECT_EQ(reply_status(*session.agent, second), 409);
  auto r = result_of(result);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "first");
}

TEST_F(RelayResponseTest, MalformedPostGets400AndTheThirdPartyGets502) {
  auto session = relay().connect_and_park(tunnel(), 3);
  // inkbox-status "abc": not an integer at all.
  auto abc = relay().call(tunnel().id, "GET", "/abc");
  const std::string abc_id = request_id_from(*session.agent, session.intakes[0]);
  auto abc_post = session.agent->request("POST", post_path(abc_id), post_headers(tunnel(), abc_id, "abc", 2),
                                         std::string("no"));
  EXPECT_EQ(reply_status(*session.agent, abc_post), 400);
  auto abc_result = result_of(abc);
  ASSERT_TRUE(abc_result);
  EXPECT_EQ(abc_result->status, 502);

  // inkbox-status 600: an integer, out of range.
  auto six = relay().call(tunnel().id, "GET", "/600");
  const std::string six_id = request_id_from(*session.agent, session.intakes[1]);
  auto six_post = session.agent->post_response(tunnel().id, tunnel().secret, six_id, 600, {}, "no");
  EXPECT_EQ(reply_status(*session.agent, six_post), 400);
  auto six_result = result_of(six);
  ASSERT_TRUE(six_result);
  EXPECT_EQ(six_result->status, 502);

  // inkbox-request-id differs from the id in the path.
  auto mismatch = relay().call(tunnel().id, "GET", "/mismatch");
  const std::string id = request_id_from(*session.agent, session.intakes[2]);
  auto post = session.agent->request("POST", post_path(id),
                                     post_headers(tunnel(), "3f1c2b9e-8d7a-4c6b-9e5f-0a1b2c3d4e5f", "200", 0),
                                     std::nullopt);
  EXPECT_EQ(reply_status(*session.agent, post), 400);
  auto r = result_of(mismatch);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
}

TEST_F(RelayResponseTest, PostWithWrongSecretOrTunnelIdGets401AndLeavesTheRequestOpen) {
  auto session = relay().connect_and_park(tunnel(), 1);
  auto result = relay().call(tunnel().id, "GET", "/auth");
  const std::string id = request_id_from(*session.agent, session.intakes[0]);
  auto bad_secret = session.agent->post_response(tunnel().id, "not-the-secret", id, 200, {}, "x");
  EXPECT_EQ(reply_status(*session.agent, bad_secret), 401);
  auto other = relay().create_tunnel("beta");
  auto bad_tunnel = session.agent->post_response(other.id, tunnel().secret, id, 200, {}, "x");
  EXPECT_EQ(reply_status(*session.agent, bad_tunnel), 401);
  EXPECT_EQ(result.wait_for(0s), std::future_status::timeout) << "a refused post must not answer the request";

  auto good = session.agent->post_response(tunnel().id, tunnel().secret, id, 200, {}, "right");
  EXPECT_EQ(reply_status(*session.agent, good), 200);
  auto r = result_of(result);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "right");
}

TEST_F(RelayResponseTest, AgentDisconnectWithRequestOutstandingGives502AtOnce) {
  auto session = relay().connect_and_park(tunnel(), 1);
  auto result = relay().call(tunnel().id, "GET", "/lost");
  (void)request_id_from(*session.agent, session.intakes[0]);
  const auto start = Clock::now();
  session.agent->close_abruptly();
  // The deadline is 30 s; session loss must not wait for it.
  auto r = result_of(result, 5s);
  ASSERT_TRUE(r) << "no answer within 5 s of the disconnect";
  EXPECT_EQ(r->status, 502);
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST_F(RelayResponseTest, PostResetMidBodyAbortsTheThirdPartyBody) {
  auto session = relay().connect_and_park(tunnel(), 1);
  auto result = relay().call(tunnel().id, "GET", "/partial");
  const std::string id = request_id_from(*session.agent, session.intakes[0]);
  const std::string part = pattern(50'000, 3);
  auto post = session.agent->request("POST", post_path(id), post_headers(tunnel(), id, "200", 200'000), part,
                                     std::nullopt, /*end_stream=*/false);
  ASSERT_GT(post, 0);
  ASSERT_TRUE(session.agent->send_data(post, pattern(10'000, 4), false, 10s));
  session.agent->reset(post, kCancel);
  auto r = result_of(result);
  ASSERT_TRUE(r);
  // The head went out when the post's headers arrived; the body then ends in an abort, never as
  // a complete (truncated) body.
  EXPECT_TRUE(r->status == 200 || r->status == 502) << r->status;
  EXPECT_FALSE(r->body_complete);
  EXPECT_LT(r->body.size(), 200'000u);
}

// ---- Deadline (A7) ------------------------------------------------------------------------------

class RelayResponseDeadlineTest : public RelayResponseTest {
 protected:
  void adjust(Config& c) override {
    c.relay.response_deadline_seconds = 1;
    c.relay.response_grace_seconds = 0;
  }
};

TEST_F(RelayResponseDeadlineTest, StalledAgentGives504WithinDeadlinePlusGraceAndALatePostGets410) {
  auto session = relay().connect_and_park(tunnel(), 1);
  const auto start = Clock::now();
  auto result = relay().call(tunnel().id, "GET", "/stall");
  const std::string id = request_id_from(*session.agent, session.intakes[0]);
  auto r = result_of(result, 5s);
  ASSERT_TRUE(r) << "no 504 within 5 s";
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(r->status, 504);
  EXPECT_GE(elapsed, 900ms) << "answered before the deadline";
  EXPECT_LT(elapsed, 3s) << "deadline 1 s + grace 0 s + 2 s slack";

  auto post = session.agent->post_response(tunnel().id, tunnel().secret, id, 200, {}, "too late");
  EXPECT_EQ(reply_status(*session.agent, post), 410);
}

// ---- Body cap ------------------------------------------------------------------------------------

class RelayResponseCapTest : public RelayResponseTest {
 protected:
  void adjust(Config& c) override { c.relay.max_response_body_bytes = 100'000; }
};

TEST_F(RelayResponseCapTest, BodyAnnouncedOverTheCapIsRefusedAndTheThirdPartyGets502) {
  auto session = relay().connect_and_park(tunnel(), 1);
  auto result = relay().call(tunnel().id, "GET", "/big");
  const std::string id = request_id_from(*session.agent, session.intakes[0]);
  // The SDKs always send content-length (§4.7), so the relay refuses before the head goes out:
  // the third party gets a clean 502, never a truncated body.
  auto post = session.agent->post_response(tunnel().id, tunnel().secret, id, 200, {}, pattern(200'000, 5));
  auto state = session.agent->wait_end(post, 10s);
  ASSERT_TRUE(state);
  EXPECT_EQ(state->status, 413);
  auto r = result_of(result);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
  EXPECT_EQ(r->failure_reason, "response-too-large");

  // A body at the cap still passes.
  auto again = relay().call(tunnel().id, "GET", "/fits");
  auto intake = session.agent->open_intake(tunnel().id, session.owner_token, 1);
  const std::string id2 = request_id_from(*session.agent, intake);
  const std::string fits = pattern(100'000, 6);
  auto post2 = session.agent->post_response(tunnel().id, tunnel().secret, id2, 200, {}, fits);
  EXPECT_EQ(reply_status(*session.agent, post2), 200);
  auto r2 = result_of(again);
  ASSERT_TRUE(r2);
  EXPECT_TRUE(r2->body_complete);
  EXPECT_TRUE(r2->body == fits);
}

// ---- Flow control --------------------------------------------------------------------------------

class RelayResponseSmallWindowTest : public RelayResponseTest {
 protected:
  void adjust(Config& c) override { c.relay.stream_window_bytes = 65535; }
};

TEST_F(RelayResponseSmallWindowTest, OneMebibyteResponseGetsThroughTheMinimumStreamWindow) {
  auto session = relay().connect_and_park(tunnel(), 1);
  ASSERT_TRUE(session.agent->wait_settings(5s));
  EXPECT_EQ(session.agent->server_settings()->initial_window_size, 65535u);
  auto result = relay().call(tunnel().id, "GET", "/window");
  const std::string id = request_id_from(*session.agent, session.intakes[0]);
  const std::string body = pattern(1024 * 1024, 7);
  auto post = session.agent->post_response(tunnel().id, tunnel().secret, id, 200, {}, body);
  EXPECT_EQ(reply_status(*session.agent, post), 200) << "the relay must reopen the window as the edge reads";
  auto r = result_of(result);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body_complete);
  ASSERT_EQ(r->body.size(), body.size());
  EXPECT_TRUE(r->body == body);
}

}  // namespace
}  // namespace inkwire::testing
