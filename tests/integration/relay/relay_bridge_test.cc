// The ws and tcp bridges (PROTOCOL.md §4.8, §4.9, §8 A10): the accept sequence, framing both ways,
// flow control and bounded memory, how a bridge ends (close message, CLOSE frame, END_STREAM,
// RST_STREAM), PING, the CONNECT refusals and the bridge-open timeout.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <limits>

#include "tests/integration/relay/relay_test_helpers.h"

namespace inkwire::testing {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using relay::PipeEnd;

constexpr std::uint32_t kCancel = 0x8;
constexpr std::size_t kUntilEnd = std::numeric_limits<std::size_t>::max();

std::string pattern(std::size_t n, unsigned seed) {
  std::string out(n, '\0');
  std::uint32_t x = 0x9E3779B9u * (seed + 1);
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

std::span<const std::uint8_t> as_span(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string text_message(std::string_view text) {
  std::string out;
  proto::encode_bridge_text(out, text);
  return out;
}
std::string binary_message(std::string_view bytes) {
  std::string out;
  proto::encode_bridge_binary(out, as_span(bytes));
  return out;
}
std::string close_message(int code, std::string_view reason) {
  std::string out;
  proto::encode_bridge_close(out, code, reason);
  return out;
}
std::string close_frame(std::uint16_t code, std::string_view reason) {
  return agent_frame(proto::WsOpcode::close, proto::encode_close_payload(code, reason));
}
// `bytes` cut into masked BINARY frames of at most `frame` payload bytes each.
std::string agent_binary_frames(std::string_view bytes, std::size_t frame) {
  std::string out;
  for (std::size_t off = 0; off < bytes.size(); off += frame) {
    out += agent_frame(proto::WsOpcode::binary, bytes.substr(off, frame));
  }
  return out;
}

// ---- The edge, on the relay's executor (parameters by value: the coroutine frame owns them) ----

struct EdgeRead {
  std::string bytes;
  PipeEnd end = PipeEnd::open;
  bool timed_out = false;
};

// Reads from_agent until `want` bytes arrived, the pipe ended, or `bound` passed (polling, so a
// silent relay cannot hang the executor's caller).
asio::awaitable<EdgeRead> edge_read(std::shared_ptr<relay::Exchange> exchange, std::size_t want,
                                    std::chrono::milliseconds bound) {
  EdgeRead out;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto deadline = Clock::now() + bound;
  relay::BytePipe& pipe = exchange->from_agent();
  while (out.bytes.size() < want) {
    if (pipe.size() > 0) {
      auto chunk = co_await pipe.read(std::min<std::size_t>(want - out.bytes.size(), 256 * 1024));
      out.bytes += chunk.bytes;
      continue;
    }
    if (pipe.end() != PipeEnd::open) {
      out.end = pipe.end();
      break;
    }
    if (Clock::now() >= deadline) {
      out.timed_out = true;
      break;
    }
    timer.expires_after(std::chrono::milliseconds(2));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return out;
}

// Writes `data` into to_agent as room appears (bounded); then finishes the pipe if asked.
// Returns how many bytes went in.
asio::awaitable<std::size_t> edge_write(std::shared_ptr<relay::Exchange> exchange, std::string data, bool finish,
                                        std::chrono::milliseconds bound) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto deadline = Clock::now() + bound;
  relay::BytePipe& pipe = exchange->to_agent();
  std::size_t off = 0;
  while (off < data.size()) {
    const std::size_t n = pipe.write_some(std::string_view(data).substr(off));
    off += n;
    if (n > 0) continue;
    if (pipe.end() != PipeEnd::open || pipe.reader_closed() || Clock::now() >= deadline) break;
    timer.expires_after(std::chrono::milliseconds(2));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (finish && off == data.size()) pipe.finish();
  co_return off;
}

template <typename F>
auto sync_call(F f) -> asio::awaitable<decltype(f())> {
  co_return f();
}

// Exchange::response() and bridge() as default-constructible results (co_spawn + use_future).
struct Head {
  bool ok = false;
  int status = 0;  // the head's status, or the failure's
  std::vector<proto::HeaderField> headers;
  std::string failure;
  std::optional<std::string> header(std::string_view name) const {
    for (const auto& h : headers) {
      if (h.name == name) return h.value;
    }
    return std::nullopt;
  }
};
asio::awaitable<Head> edge_head(std::shared_ptr<relay::Exchange> exchange) {
  Head out;
  auto head = co_await exchange->response();
  if (head) {
    out.ok = true;
    out.status = head->status;
    out.headers = head->headers;
  } else {
    out.status = head.error().status;
    out.failure = head.error().reason;
  }
  co_return out;
}
struct Attach {
  bool ok = false;
  int status = 0;
  std::string failure;
};
asio::awaitable<Attach> edge_bridge(std::shared_ptr<relay::Exchange> exchange) {
  Attach out;
  auto attached = co_await exchange->bridge();
  out.ok = attached.has_value();
  if (!attached) {
    out.status = attached.error().status;
    out.failure = attached.error().reason;
  }
  co_return out;
}

// ---- The agent's side of a bridge: server frames as they arrive --------------------------------

struct AgentFrames {
  proto::WsFrameDecoder decoder{proto::WsFrameLimits{1 << 24, proto::WsMaskPolicy::require_unmasked, false}};
  std::vector<proto::WsFrame> frames;
  std::string data;  // payloads of the data frames, joined
  bool failed = false;

  void feed(const std::string& bytes) {
    std::span<const std::uint8_t> in = as_span(bytes);
    while (!in.empty() && !failed) {
      in = in.subspan(decoder.feed(in));
      for (;;) {
        auto next = decoder.next();
        if (!next) {
          failed = true;
          break;
        }
        if (!*next) break;
        const proto::WsOpcode op = (*next)->opcode;
        if (op == proto::WsOpcode::binary || op == proto::WsOpcode::text || op == proto::WsOpcode::continuation) {
          data.append((*next)->payload.begin(), (*next)->payload.end());
        }
        frames.push_back(std::move(**next));
      }
    }
  }
  // The close code of the first CLOSE frame, if one came.
  std::optional<std::uint16_t> close_code() const {
    for (const auto& f : frames) {
      if (f.opcode != proto::WsOpcode::close) continue;
      auto close = proto::decode_close_payload(f.payload);
      return close ? std::optional<std::uint16_t>(close->code) : std::nullopt;
    }
    return std::nullopt;
  }
};

// Reads the bridge stream until `data_bytes` of data payload arrived, or it ended, or the bound.
// until_end: keep reading until END_STREAM or the stream closed.
void agent_read(TestAgent& agent, int32_t stream, AgentFrames& into, std::size_t data_bytes,
                std::chrono::milliseconds bound = 10s, bool until_end = false) {
  const auto deadline = Clock::now() + bound;
  while (until_end || into.data.size() < data_bytes) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= 0ms) break;
    auto chunk = agent.read_data(stream, 1, left);
    if (!chunk) break;
    into.feed(*chunk);
    const StreamState st = agent.state(stream);
    if ((st.ended || st.closed) && st.body.empty() && chunk->empty()) break;
  }
}

struct Bridge {
  TestRelay::Session session;
  std::shared_ptr<relay::Exchange> exchange;
  std::string request_id;
  std::string bridge_id;
  int32_t stream = -1;
  TestAgent& agent() { return *session.agent; }
};

class RelayBridgeTest : public RelayTest {
 protected:
  template <typename F>
  auto on_relay(F f) {
    return relay().run([f] { return sync_call(f); }, 10s);
  }
  Head head_of(Bridge& b) { return relay().run([ex = b.exchange] { return edge_head(ex); }, 10s); }
  Attach bridge_of(Bridge& b) { return relay().run([ex = b.exchange] { return edge_bridge(ex); }, 10s); }
  double bridges_open() { return relay().metric("inkwire_relay_bridges_open"); }

  // dispatch ws-upgrade -> envelope -> the agent posts `status` (with `posted` headers, `body`).
  void deliver_ws(Bridge& b, int status = 200, proto::H2Headers posted = {}, std::string body = {},
                  std::function<void(AgentOptions&)> agent_adjust = {}) {
    b.session = relay().connect_and_park(tunnel(), 1, std::move(agent_adjust));
    b.exchange = relay().dispatch(tunnel().id, proto::RouteKind::ws_upgrade,
                                  {{"sec-websocket-protocol", "chat, superchat"},
                                   {"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                   {"sec-websocket-version", "13"}},
                                  "/chat?room=1");
    auto envelope = wait_envelope(b.agent(), b.session.intakes[0], 10s);
    ASSERT_TRUE(envelope) << "no ws-upgrade envelope";
    EXPECT_EQ(envelope->status, 200);
    EXPECT_EQ(envelope->header("inkbox-route-kind"), "ws-upgrade");
    EXPECT_EQ(envelope->header("inkbox-method"), "GET");
    EXPECT_EQ(envelope->header("inkbox-path"), "/chat?room=1");
    EXPECT_EQ(envelope->header("inkbox-h-sec-websocket-protocol"), "chat, superchat");
    EXPECT_FALSE(envelope->header("inkbox-h-sec-websocket-key"));
    EXPECT_TRUE(envelope->body.empty());
    ASSERT_TRUE(envelope->header("inkbox-request-id"));
    ASSERT_TRUE(envelope->header("inkbox-ws-id"));
    b.request_id = *envelope->header("inkbox-request-id");
    b.bridge_id = *envelope->header("inkbox-ws-id");
    EXPECT_EQ(b.bridge_id, on_relay([ex = b.exchange] { return ex->bridge_id(); }));
    auto post = b.agent().post_response(tunnel().id, tunnel().secret, b.request_id, status, posted, std::move(body));
    auto reply = b.agent().wait_end(post, 10s);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->status, 200) << "the relay's reply to the accepting post";
  }

  // The agent's CONNECT, exchange->bridge(), accept_bridge(), and the CONNECT's 200.
  void attach(Bridge& b, bool ws) {
    b.stream = b.agent().open_bridge(ws, tunnel().id, tunnel().secret, b.bridge_id);
    ASSERT_GT(b.stream, 0) << b.agent().last_error();
    auto attached = bridge_of(b);
    ASSERT_TRUE(attached.ok) << "bridge() failed: " << attached.status << " " << attached.failure;
    // The relay answers the CONNECT only once the edge has told the third party (101).
    EXPECT_FALSE(b.agent().state(b.stream).headers_received) << "CONNECT answered before accept_bridge()";
    on_relay([ex = b.exchange] { ex->accept_bridge(); });
    auto st = b.agent().wait_headers(b.stream, 10s);
    ASSERT_TRUE(st);
    ASSERT_EQ(st->status, 200);
    EXPECT_FALSE(st->ended) << "the CONNECT's 200 must not carry END_STREAM";
    EXPECT_FALSE(st->closed);
  }

  void open_ws(Bridge& b, std::function<void(AgentOptions&)> agent_adjust = {}) {
    ASSERT_NO_FATAL_FAILURE(deliver_ws(b, 200, {{"sec-websocket-protocol", "chat"}}, {}, std::move(agent_adjust)));
    auto head = head_of(b);
    ASSERT_TRUE(head.ok) << head.status << " " << head.failure;
    ASSERT_EQ(head.status, 200);
    ASSERT_NO_FATAL_FAILURE(attach(b, true));
  }

  void open_tcp(Bridge& b, const CreatedTunnel& t) {
    b.session = relay().connect_and_park(t, 1);
    b.exchange = relay().dispatch(t.id, proto::RouteKind::tcp_stream);
    auto envelope = wait_envelope(b.agent(), b.session.intakes[0], 10s);
    ASSERT_TRUE(envelope) << "no tcp-stream envelope";
    EXPECT_EQ(envelope->header("inkbox-route-kind"), "tcp-stream");
    EXPECT_EQ(envelope->header("inkbox-sni-host"), "x.example");
    ASSERT_TRUE(envelope->header("inkbox-tcp-id"));
    ASSERT_TRUE(envelope->header("inkbox-request-id"));
    EXPECT_TRUE(envelope->body.empty());
    b.request_id = *envelope->header("inkbox-request-id");
    b.bridge_id = *envelope->header("inkbox-tcp-id");
    b.stream = b.agent().open_bridge(false, t.id, t.secret, b.bridge_id);
    ASSERT_GT(b.stream, 0);
    auto attached = bridge_of(b);
    ASSERT_TRUE(attached.ok) << attached.status << " " << attached.failure;
    on_relay([ex = b.exchange] { ex->accept_bridge(); });
    auto st = b.agent().wait_headers(b.stream, 10s);
    ASSERT_TRUE(st);
    ASSERT_EQ(st->status, 200);
    EXPECT_FALSE(st->ended);
  }

  EdgeRead read_edge(Bridge& b, std::size_t want, std::chrono::milliseconds bound = 10s) {
    return relay().run([ex = b.exchange, want, bound] { return edge_read(ex, want, bound); }, bound + 5s);
  }
  std::size_t write_edge(Bridge& b, std::string data, bool finish = false) {
    return relay().run([ex = b.exchange, d = std::move(data), finish] { return edge_write(ex, d, finish, 10s); }, 15s);
  }
  template <typename T>
  std::future<T> spawn(asio::awaitable<T> task) {
    return asio::co_spawn(relay().relay().executor(), std::move(task), asio::use_future);
  }
};

// ---- WebSocket ----------------------------------------------------------------------------------

TEST_F(RelayBridgeTest, WsAcceptedBridgeCarriesMessagesBothWaysAndIgnoresContinuations) {
  Bridge b;
  ASSERT_NO_FATAL_FAILURE(deliver_ws(b, 200, {{"sec-websocket-protocol", "chat"}, {"x-extra", "1"}}));
  auto head = head_of(b);
  ASSERT_TRUE(head.ok) << head.status << " " << head.failure;
  EXPECT_EQ(head.status, 200);
  std::optional<std::string> subprotocol;
  for (const auto& h : head.headers) {
    if (h.name == "sec-websocket-protocol") subprotocol = h.value;
  }
  EXPECT_EQ(subprotocol, "chat");
  ASSERT_NO_FATAL_FAILURE(attach(b, true));
  EXPECT_EQ(bridges_open(), 1);

  // Edge -> agent: one text message becomes one unmasked BINARY frame, FIN = 1.
  const std::string text = text_message("hello, agent");
  ASSERT_EQ(write_edge(b, text), text.size());
  AgentFrames in;
  agent_read(b.agent(), b.stream, in, text.size());
  ASSERT_FALSE(in.failed) << "server frames must be unmasked and well formed";
  ASSERT_EQ(in.frames.size(), 1u);
  EXPECT_EQ(in.frames[0].opcode, proto::WsOpcode::binary);
  EXPECT_TRUE(in.frames[0].fin);
  EXPECT_EQ(in.data, text);
  ASSERT_GT(in.data.size(), 4u);
  EXPECT_EQ(in.data.substr(4), R"({"type":"text","data":"hello, agent"})");

  // Agent -> edge: a binary message split over two masked frames arrives as the message bytes.
  const std::string message = binary_message(pattern(3000, 1));
  const std::string half = message.substr(0, 1000);
  ASSERT_TRUE(b.agent().send_data(b.stream, agent_frame(proto::WsOpcode::binary, half) +
                                                agent_frame(proto::WsOpcode::binary, message.substr(1000)),
                                  false));
  EdgeRead got = read_edge(b, message.size());
  EXPECT_FALSE(got.timed_out);
  EXPECT_TRUE(got.bytes == message) << "got " << got.bytes.size() << " of " << message.size() << " bytes";

  // Continuation frames are ignored on the ws bridge (§4.8.1): their bytes never reach the edge.
  const std::string kept = text_message("kept");
  ASSERT_TRUE(b.agent().send_data(b.stream,
                                  agent_frame(proto::WsOpcode::continuation, "lost") +
                                      agent_frame(proto::WsOpcode::binary, kept),
                                  false));
  EXPECT_EQ(read_edge(b, kept.size()).bytes, kept);
}

TEST_F(RelayBridgeTest, WsEdgeToAgentMebibyteFlowsWhenTheAgentCreditsOnlyAsItReads) {
  Bridge b;
  ASSERT_NO_FATAL_FAILURE(open_ws(b, [](AgentOptions& o) { o.manual_credit_bridges = true; }));
  std::string messages;
  for (unsigned i = 0; messages.size() < 1024 * 1024; ++i) messages += binary_message(pattern(48 * 1024, i));
  auto writer = spawn(edge_write(b.exchange, messages, false, 10s));
  AgentFrames in;
  agent_read(b.agent(), b.stream, in, messages.size(), 10s);
  ASSERT_EQ(writer.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(writer.get(), messages.size()) << "the edge could not write everything";
  EXPECT_FALSE(in.failed);
  ASSERT_EQ(in.data.size(), messages.size()) << "stalled after " << in.data.size() << " bytes";
  EXPECT_TRUE(in.data == messages);
  for (const auto& f : in.frames) {
    EXPECT_EQ(f.opcode, proto::WsOpcode::binary);
    EXPECT_TRUE(f.fin);
    EXPECT_LE(f.payload.size(), 64u * 1024);
  }
}

TEST_F(RelayBridgeTest, WsAgentToEdgeMebibyteFlowsAtDefaultWindows) {
  Bridge b;
  ASSERT_NO_FATAL_FAILURE(open_ws(b));
  std::string messages;
  for (unsigned i = 0; messages.size() < 1024 * 1024; ++i) messages += binary_message(pattern(30'000, i));
  auto reader = spawn(edge_read(b.exchange, messages.size(), 10s));
  EXPECT_TRUE(b.agent().send_data(b.stream, agent_binary_frames(messages, 16 * 1024), false, 10s));
  ASSERT_EQ(reader.wait_for(12s), std::future_status::ready);
  EdgeRead got = reader.get();
  EXPECT_FALSE(got.timed_out);
  ASSERT_EQ(got.bytes.size(), messages.size());
  EXPECT_TRUE(got.bytes == messages);
}

TEST_F(RelayBridgeTest, SlowEdgeReaderHoldsBackTheAgentWithBoundedMemory) {
  Bridge b;
  ASSERT_NO_FATAL_FAILURE(open_ws(b));
  const std::size_t total = 4 * 1024 * 1024;
  const std::string payload = pattern(total, 9);
  // Nobody reads from_agent: the agent must run out of window long before 4 MiB.
  EXPECT_FALSE(b.agent().send_data(b.stream, agent_binary_frames(payload, 64 * 1024), false, 1s))
      << "the relay took 4 MiB nobody read";
  const std::size_t held = on_relay([ex = b.exchange] { return ex->from_agent().size(); });
  const auto& cfg = relay().config().relay;
  EXPECT_GT(held, 0u);
  EXPECT_LE(held, cfg.stream_window_bytes + cfg.pipe_buffer_bytes) << "relay memory not bounded by its window";
  const StreamState blocked = b.agent().state(b.stream);
  EXPECT_FALSE(blocked.closed);

  // Now the edge reads: everything arrives, in order.
  auto reader = spawn(edge_read(b.exchange, total, 10s));
  EXPECT_TRUE(b.agent().send_data(b.stream, "", false, 10s)) << "the agent stayed blocked while the edge read";
  ASSERT_EQ(reader.wait_for(12s), std::future_status::ready);
  EdgeRead got = reader.get();
  ASSERT_EQ(got.bytes.size(), total);
  EXPECT_TRUE(got.bytes == payload) << "bytes out of order or corrupted";
}

TEST_F(RelayBridgeTest, AgentCloseMessageCloseFrameAndEndStreamEndTheBridge) {
  Bridge b;
  ASSERT_NO_FATAL_FAILURE(open_ws(b));
  const std::string bye = close_message(1000, "bye");
  ASSERT_TRUE(b.agent().send_data(b.stream, agent_frame(proto::WsOpcode::binary, bye) + close_frame(1000, "bye"), true));
  EdgeRead got = read_edge(b, kUntilEnd);
  EXPECT_EQ(got.bytes, bye);
  EXPECT_EQ(got.end, PipeEnd::finished);
  EXPECT_EQ(on_relay([ex = b.exchange] { return ex->agent_close_code(); }), std::optional<std::uint16_t>(1000));

  // The edge closes its side too: CLOSE(1000), END_STREAM, and the bridge is gone.
  ASSERT_EQ(write_edge(b, {}, true), 0u);
  auto st = b.agent().wait_closed_stream(b.stream, 10s);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->error_code, 0u);
  EXPECT_TRUE(wait_for([&] { return bridges_open() == 0; }, 5s)) << bridges_open();
}

TEST_F(RelayBridgeTest, AgentEmptyDataWithEndStreamFinishesTheEdgeSideCleanly) {
  Bridge b;
  ASSERT_NO_FATAL_FAILURE(open_ws(b));
  const std::string bye = close_message(1001, "going");
  ASSERT_TRUE(b.agent().send_data(b.stream, agent_frame(proto::WsOpcode::binary, bye), false));
  ASSERT_TRUE(b.agent().send_data(b.stream, "", true));
  EdgeRead got = read_edge(b, kUntilEnd);
  EXPECT_EQ(got.bytes, bye);
  EXPECT_EQ(got.end, PipeEnd::finished);
  EXPECT_EQ(on_relay([ex = b.exchange] { return ex->agent_close_code(); }), std::nullopt);
}

TEST_F(RelayBridgeTest, EdgeFinishSendsCloseFrame1000AndEndStream) {
  Bridge b;
  ASSERT_NO_FATAL_FAILURE(open_ws(b));
  const std::string bye = close_message(1000, "");
  ASSERT_EQ(write_edge(b, bye, true), bye.size());
  AgentFrames in;
  agent_read(b.agent(), b.stream, in, 0, 10s, /*until_end=*/true);
  EXPECT_FALSE(in.failed);
  EXPECT_TRUE(b.agent().state(b.stream).ended) << "no END_STREAM after the CLOSE frame";
  ASSERT_GE(in.frames.size(), 2u);
  EXPECT_EQ(in.data, bye);
  EXPECT_EQ(in.frames.back().opcode, proto::WsOpcode::close);
  EXPECT_EQ(in.close_code(), std::optional<std::uint16_t>(1000));

  // The agent answers in kind; the stream then closes cleanly and the gauge drops.
  ASSERT_TRUE(b.agent().send_data(b.stream, close_frame(1000, ""), true));
  EXPECT_EQ(read_edge(b, kUntilEnd).end, PipeEnd::finished);
  auto st = b.agent().wait_closed_stream(b.stream, 10s);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->error_code, 0u);
  EXPECT_TRUE(wait_for([&] { return bridges_open() == 0; }, 5s)) << bridges_open();
}

TEST_F(RelayBridgeTest, AgentResetAbortsTheEdgeSide) {
  Bridge b;
  ASSERT_NO_FATAL_FAILURE(open_ws(b));
  b.agent().reset(b.stream, kCancel);
  EdgeRead got = read_edge(b, kUntilEnd);
  EXPECT_EQ(got.end, PipeEnd::aborted);
  EXPECT_TRUE(wait_for([&] { return bridges_open() == 0; }, 5s)) << bridges_open();
}

TEST_F(RelayBridgeTest, AgentDisconnectAbortsAnOpenBridge) {
  Bridge b;
  ASSERT_NO_FATAL_FAILURE(open_ws(b));
  EXPECT_EQ(bridges_open(), 1);
  b.agent().close_abruptly();
  EdgeRead got = read_edge(b, kUntilEnd, 5s);
  EXPECT_FALSE(got.timed_out);
  EXPECT_EQ(got.end, PipeEnd::aborted);
  EXPECT_TRUE(wait_for([&] { return bridges_open() == 0; }, 5s)) << bridges_open();
}

TEST_F(RelayBridgeTest, AgentPingIsAnsweredWithPongCarryingTheSamePayload) {
  Bridge b;
  ASSERT_NO_FATAL_FAILURE(open_ws(b));
  ASSERT_TRUE(b.agent().send_data(b.stream, agent_frame(proto::WsOpcode::ping, "are-you-there"), false));
  AgentFrames in;
  const auto deadline = Clock::now() + 10s;
  while (in.frames.empty() && Clock::now() < deadline) {
    auto chunk = b.agent().read_data(b.stream, 1, 1s);
    if (chunk) in.feed(*chunk);
  }
  ASSERT_EQ(in.frames.size(), 1u);
  EXPECT_EQ(in.frames[0].opcode, proto::WsOpcode::pong);
  EXPECT_EQ(std::string(in.frames[0].payload.begin(), in.frames[0].payload.end()), "are-you-there");
  // Nothing of the PING reaches the edge.
  EXPECT_TRUE(read_edge(b, 1, 200ms).bytes.empty());
}

TEST_F(RelayBridgeTest, ConnectBeforeTheAcceptingPostGets404ThenWorksAfterIt) {
  Bridge b;
  b.session = relay().connect_and_park(tunnel(), 1);
  b.exchange = relay().dispatch(tunnel().id, proto::RouteKind::ws_upgrade);
  auto envelope = wait_envelope(b.agent(), b.session.intakes[0], 10s);
  ASSERT_TRUE(envelope);
  b.bridge_id = envelope->header("inkbox-ws-id").value_or("");
  b.request_id = envelope->header("inkbox-request-id").value_or("");
  auto early = b.agent().open_bridge(true, tunnel().id, tunnel().secret, b.bridge_id);
  auto early_st = b.agent().wait_end(early, 10s);
  ASSERT_TRUE(early_st);
  EXPECT_EQ(early_st->status, 404);

  auto post = b.agent().post_response(tunnel().id, tunnel().secret, b.request_id, 200, {}, {});
  auto reply = b.agent().wait_end(post, 10s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  ASSERT_NO_FATAL_FAILURE(attach(b, true));
}

TEST_F(RelayBridgeTest, ConnectWithUnknownIdWrongSecretOrWrongProtocolIsRefused) {
  Bridge b;
  ASSERT_NO_FATAL_FAILURE(deliver_ws(b));
  TestAgent& agent = b.agent();
  const auto status_of = [&](int32_t stream) {
    auto st = agent.wait_end(stream, 10s);
    return st ? st->status : 0;
  };
  EXPECT_EQ(status_of(agent.open_bridge(true, tunnel().id, tunnel().secret, "3f1c2b9e-8d7a-4c6b-9e5f-0a1b2c3d4e5f")),
            404);
  EXPECT_EQ(status_of(agent.open_bridge(true, tunnel().id, "not-the-secret", b.bridge_id)), 401);
  // A ws id on the tcp path, and the tcp :protocol on the ws path.
  EXPECT_EQ(status_of(agent.open_bridge(false, tunnel().id, tunnel().secret, b.bridge_id)), 404);
  const proto::H2Headers headers = {{"sec-websocket-version", "13"},
                                    {"x-tunnel-id", tunnel().id},
                                    {"x-tunnel-secret", tunnel().secret},
                                    {"inkbox-ws-id", b.bridge_id}};
  EXPECT_EQ(status_of(agent.request("CONNECT", "/_system/ws/" + b.bridge_id, headers, std::nullopt,
                                    std::string("websocket"), false)),
            404);
  EXPECT_EQ(status_of(agent.request("CONNECT", "/_system/ws/" + b.bridge_id, headers, std::nullopt,
                                    std::string("inkbox-tunnel-tcp"), false)),
            404);
  // None of these used up the id.
  ASSERT_NO_FATAL_FAILURE(attach(b, true));
}

TEST_F(RelayBridgeTest, RefusedWsUpgradeGivesTheHeadAndBodyAndNoBridge) {
  Bridge b;
  ASSERT_NO_FATAL_FAILURE(deliver_ws(b, 403, {{"x-why", "nope"}}, "handler rejected upgrade"));
  auto head = head_of(b);
  ASSERT_TRUE(head.ok) << head.status << " " << head.failure;
  EXPECT_EQ(head.status, 403);
  ASSERT_EQ(head.headers.size(), 1u);
  EXPECT_EQ(head.headers[0].name, "x-why");
  auto body = relay().run(
      [ex = b.exchange]() {
        return [](std::shared_ptr<relay::Exchange> e) -> asio::awaitable<std::pair<std::string, PipeEnd>> {
          std::string all;
          for (;;) {
            auto chunk = co_await e->response_body().read();
            all += chunk.bytes;
            if (chunk.bytes.empty() && chunk.end != PipeEnd::open) co_return std::pair(all, chunk.end);
          }
        }(ex);
      },
      10s);
  EXPECT_EQ(body.first, "handler rejected upgrade");
  EXPECT_EQ(body.second, PipeEnd::finished);
  EXPECT_TRUE(on_relay([ex = b.exchange] { return ex->is_done(); }));
  auto late = b.agent().open_bridge(true, tunnel().id, tunnel().secret, b.bridge_id);
  auto st = b.agent().wait_end(late, 10s);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, 404);
  EXPECT_EQ(bridges_open(), 0);
}

// ---- Bridge-open timeout (A10) -------------------------------------------------------------------

class RelayBridgeTimeoutTest : public RelayBridgeTest {
 protected:
  void adjust(Config& c) override { c.relay.bridge_open_timeout_seconds = 1; }
};

TEST_F(RelayBridgeTimeoutTest, NoConnectWithinTheBridgeOpenTimeoutFailsWith502) {
  Bridge b;
  ASSERT_NO_FATAL_FAILURE(deliver_ws(b));
  auto head = head_of(b);
  ASSERT_TRUE(head.ok) << head.status << " " << head.failure;
  ASSERT_EQ(head.status, 200);
  const auto start = Clock::now();
  auto attached = bridge_of(b);
  const auto elapsed = Clock::now() - start;
  ASSERT_FALSE(attached.ok);
  EXPECT_EQ(attached.status, 502);
  EXPECT_LT(elapsed, 4s);
  // A CONNECT after the timeout finds nothing.
  auto late = b.agent().open_bridge(true, tunnel().id, tunnel().secret, b.bridge_id);
  auto st = b.agent().wait_end(late, 10s);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, 404);
}

TEST_F(RelayBridgeTimeoutTest, BridgeWaitOnARefusedWsExchangeFailsInsteadOfSpinning) {
  Bridge b;
  ASSERT_NO_FATAL_FAILURE(deliver_ws(b, 403, {}, "no"));
  const Head head = head_of(b);
  ASSERT_EQ(head.status, 403);
  // Misuse (bridge() after a refusing head), but it must end: at once, or after the 1 s timeout.
  const Attach attached = bridge_of(b);
  EXPECT_FALSE(attached.ok);
}

// ---- TCP (§4.9) ----------------------------------------------------------------------------------

TEST_F(RelayBridgeTest, TcpBridgeCarriesRawBytesBothWaysAndClosesCleanly) {
  const CreatedTunnel passthrough = relay().create_tunnel("gamma", "passthrough");
  Bridge b;
  ASSERT_NO_FATAL_FAILURE(open_tcp(b, passthrough));
  EXPECT_EQ(bridges_open(), 1);
  // No response post exists for a tcp-stream request.
  auto post = b.agent().post_response(passthrough.id, passthrough.secret, b.request_id, 200, {}, "x");
  auto post_st = b.agent().wait_end(post, 10s);
  ASSERT_TRUE(post_st);
  EXPECT_EQ(post_st->status, 404);

  // Edge -> agent: raw bytes in unmasked BINARY frames of at most 64 KiB, FIN = 1.
  const std::string hello = pattern(100 * 1024, 11);
  ASSERT_EQ(write_edge(b, hello), hello.size());
  AgentFrames in;
  agent_read(b.agent(), b.stream, in, hello.size());
  EXPECT_FALSE(in.failed);
  ASSERT_EQ(in.data.size(), hello.size());
  EXPECT_TRUE(in.data == hello);
  EXPECT_GE(in.frames.size(), 2u);
  for (const auto& f : in.frames) {
    EXPECT_EQ(f.opcode, proto::WsOpcode::binary);
    EXPECT_TRUE(f.fin);
    EXPECT_LE(f.payload.size(), 64u * 1024);
  }

  // Agent -> edge: a BINARY frame, then a message fragmented as BINARY FIN=0 + CONTINUATION FIN=1.
  const std::string a = pattern(5000, 12), c1 = pattern(3000, 13), c2 = pattern(7000, 14);
  ASSERT_TRUE(b.agent().send_data(b.stream,
                                  agent_frame(proto::WsOpcode::binary, a) +
                                      agent_frame(proto::WsOpcode::binary, c1, /*fin=*/false) +
                                      agent_frame(proto::WsOpcode::continuation, c2, /*fin=*/true),
                                  false));
  EdgeRead got = read_edge(b, a.size() + c1.size() + c2.size());
  EXPECT_TRUE(got.bytes == a + c1 + c2) << "got " << got.bytes.size() << " bytes";

  // The third party finished: CLOSE(1000) + END_STREAM to the agent.
  ASSERT_EQ(write_edge(b, {}, true), 0u);
  AgentFrames tail;
  agent_read(b.agent(), b.stream, tail, 0, 10s, /*until_end=*/true);
  EXPECT_TRUE(b.agent().state(b.stream).ended);
  ASSERT_FALSE(tail.frames.empty());
  EXPECT_EQ(tail.frames.back().opcode, proto::WsOpcode::close);
  EXPECT_EQ(tail.close_code(), std::optional<std::uint16_t>(1000));

  // The agent finishes: CLOSE + END_STREAM -> from_agent finished, the stream closes cleanly.
  ASSERT_TRUE(b.agent().send_data(b.stream, close_frame(1000, "clean-eof"), true));
  EXPECT_EQ(read_edge(b, kUntilEnd).end, PipeEnd::finished);
  auto st = b.agent().wait_closed_stream(b.stream, 10s);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->error_code, 0u);
  EXPECT_TRUE(wait_for([&] { return bridges_open() == 0; }, 5s)) << bridges_open();
}

}  // namespace
}  // namespace inkwire::testing
