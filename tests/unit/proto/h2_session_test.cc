// H2Session tested the Envoy way: a client session wired to a server session through buffers, no
// sockets. pump() shuttles produce() output into the other side's receive() until both are idle.
#include "proto/h2_session.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace inkwire::proto {
namespace {

using Role = H2Session::Role;

std::unique_ptr<H2Session> make(Role role, const H2Settings& settings = {}) {
  auto s = H2Session::create(role, settings);
  EXPECT_TRUE(s.has_value());
  return std::move(s).value();
}

std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Moves bytes both ways until neither side has anything to write (or writing makes no progress).
void pump(H2Session& a, H2Session& b) {
  for (int round = 0; round < 100000; ++round) {
    bool progress = false;
    for (auto [from, to] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
      if (!from->want_write()) continue;
      std::string buf;
      auto n = from->produce(buf);
      ASSERT_TRUE(n.has_value()) << n.error().detail;
      if (buf.empty()) continue;
      progress = true;
      if (to->want_read()) {
        auto r = to->receive(bytes_of(buf));
        ASSERT_TRUE(r.has_value()) << r.error().detail;
      }
    }
    if (!progress) return;
  }
  FAIL() << "pump did not settle";
}

std::vector<H2Event> drain(H2Session& s) {
  std::vector<H2Event> out;
  while (auto ev = s.next_event()) out.push_back(std::move(*ev));
  return out;
}

template <typename T>
std::vector<T> only(const std::vector<H2Event>& events) {
  std::vector<T> out;
  for (const H2Event& ev : events) {
    if (const T* t = std::get_if<T>(&ev)) out.push_back(*t);
  }
  return out;
}

// Events that are about streams (drops SETTINGS and friends) so order checks stay readable.
std::vector<H2Event> stream_events(const std::vector<H2Event>& events) {
  std::vector<H2Event> out;
  for (const H2Event& ev : events) {
    if (std::holds_alternative<H2SettingsReceived>(ev)) continue;
    out.push_back(ev);
  }
  return out;
}

std::string header(const H2Headers& headers, std::string_view name) {
  for (const H2Header& h : headers) {
    if (h.name == name) return h.value;
  }
  return {};
}

struct Frame {
  uint8_t type;
  uint8_t flags;
  uint32_t stream_id;
  std::string payload;
};

// Splits serialized frames (no client preface) so tests can look at what went on the wire.
std::vector<Frame> parse_frames(std::string_view wire) {
  std::vector<Frame> frames;
  size_t i = 0;
  while (i + 9 <= wire.size()) {
    const auto u = [&](size_t k) { return static_cast<uint8_t>(wire[i + k]); };
    const size_t len = (size_t{u(0)} << 16) | (size_t{u(1)} << 8) | u(2);
    Frame f{u(3), u(4),
            ((uint32_t{u(5)} << 24) | (uint32_t{u(6)} << 16) | (uint32_t{u(7)} << 8) | u(8)) &
                0x7fffffffu,
            std::string(wire.substr(i + 9, len))};
    frames.push_back(std::move(f));
    i += 9 + len;
  }
  return frames;
}

std::vector<uint8_t> pattern(size_t n, unsigned seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 7 + seed) % 251);
  return v;
}

class H2SessionTest : public ::testing::Test {
 protected:
  void connect(const H2Settings& server_settings = {}, const H2Settings& client_settings = {}) {
    server_ = make(Role::server, server_settings);
    client_ = make(Role::client, client_settings);
    pump(*client_, *server_);
    server_events_ = drain(*server_);
    client_events_ = drain(*client_);
  }
  // Gauges return to zero: every stream either side tracked has closed.
  void expect_all_closed() {
    EXPECT_EQ(client_->tracked_streams(), 0u);
    EXPECT_EQ(server_->tracked_streams(), 0u);
    EXPECT_EQ(client_->stats().streams_opened, client_->stats().streams_closed);
    EXPECT_EQ(server_->stats().streams_opened, server_->stats().streams_closed);
  }

  std::unique_ptr<H2Session> server_;
  std::unique_ptr<H2Session> client_;
  std::vector<H2Event> server_events_;
  std::vector<H2Event> client_events_;
};

TEST_F(H2SessionTest, PrefaceAndSettingsExchange) {
  connect();
  auto client_saw = only<H2SettingsReceived>(client_events_);
  ASSERT_EQ(client_saw.size(), 1u);
  EXPECT_TRUE(client_saw[0].enable_connect_protocol);
  EXPECT_EQ(client_saw[0].max_concurrent_streams, 256u);
  EXPECT_EQ(client_saw[0].initial_window_size, 65535u);
  EXPECT_EQ(client_saw[0].max_frame_size, 16384u);
  EXPECT_EQ(client_saw[0].max_header_list_size, 65536u);

  auto server_saw = only<H2SettingsReceived>(server_events_);
  ASSERT_EQ(server_saw.size(), 1u);
  EXPECT_FALSE(server_saw[0].enable_connect_protocol);  // only the server's value matters

  for (H2Session* s : {client_.get(), server_.get()}) {
    EXPECT_TRUE(s->want_read());
    EXPECT_FALSE(s->want_write());
    EXPECT_FALSE(s->should_close());
    EXPECT_GE(s->stats().frames_in, 2u);  // SETTINGS and its ACK
    EXPECT_GT(s->stats().bytes_out, 0u);
  }
}

TEST_F(H2SessionTest, LargeWindowsAreAdvertised) {
  H2Settings big;
  big.initial_window_size = 1 << 20;
  big.connection_window = 15u << 20;
  connect(big);
  auto client_saw = only<H2SettingsReceived>(client_events_);
  ASSERT_EQ(client_saw.size(), 1u);
  EXPECT_EQ(client_saw[0].initial_window_size, 1u << 20);
  EXPECT_EQ(client_->connection_remote_window(), 65535 + (15 << 20));
}

TEST_F(H2SessionTest, SettingsAreValidated) {
  H2Settings s;
  s.initial_window_size = 32u << 20;
  auto r = H2Session::create(Role::server, s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, H2ErrorKind::invalid_argument);
  s = {};
  s.max_frame_size = 1000;
  EXPECT_FALSE(H2Session::create(Role::client, s).has_value());
}

TEST_F(H2SessionTest, HelloRequestAndJsonResponse) {
  connect();
  const H2Headers hello = {{"x-tunnel-id", "6f1c3e2a-0000-4000-8000-000000000001"},
                           {"x-tunnel-secret", "s3cret"},
                           {"content-length", "0"},
                           {"x-pool-size", "4"}};
  auto id =
      client_->submit_request("POST", "https", "tunnels.example", "/_system/hello", hello, true);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(*id, 1);
  pump(*client_, *server_);

  auto requests = only<H2RequestHeaders>(drain(*server_));
  ASSERT_EQ(requests.size(), 1u);
  const H2RequestHeaders& req = requests[0];
  EXPECT_EQ(req.stream_id, 1);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.scheme, "https");
  EXPECT_EQ(req.authority, "tunnels.example");
  EXPECT_EQ(req.path, "/_system/hello");
  EXPECT_TRUE(req.protocol.empty());
  EXPECT_TRUE(req.end_stream);
  EXPECT_EQ(header(req.headers, "x-tunnel-secret"), "s3cret");
  EXPECT_EQ(header(req.headers, "x-pool-size"), "4");
  EXPECT_EQ(req.headers.size(), 4u);

  const std::string body = R"({"owner_token":"t","default_pool_size":4})";
  ASSERT_TRUE(
      server_->submit_response(1, 200, H2Headers{{"content-type", "application/json"}}, false));
  auto accepted = server_->write_data(1, body);
  ASSERT_TRUE(accepted.has_value());
  EXPECT_EQ(*accepted, body.size());
  ASSERT_TRUE(server_->end_stream(1));
  pump(*client_, *server_);

  auto events = stream_events(drain(*client_));
  ASSERT_EQ(events.size(), 3u);
  const auto& resp = std::get<H2ResponseHeaders>(events[0]);
  EXPECT_EQ(resp.status, 200);
  EXPECT_FALSE(resp.end_stream);
  EXPECT_EQ(header(resp.headers, "content-type"), "application/json");
  const auto& data = std::get<H2Data>(events[1]);
  EXPECT_EQ(std::string(data.bytes.begin(), data.bytes.end()), body);
  EXPECT_TRUE(data.end_stream);
  ASSERT_TRUE(client_->consume(1, data.bytes.size()));
  const auto& closed = std::get<H2StreamClosed>(events[2]);
  EXPECT_EQ(closed.stream_id, 1);
  EXPECT_EQ(closed.error_code, kH2NoError);

  auto server_closed = only<H2StreamClosed>(drain(*server_));
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].error_code, kH2NoError);
  expect_all_closed();
}

TEST_F(H2SessionTest, ExtendedConnectCarriesDataBothWays) {
  connect();
  auto id =
      client_->submit_request("CONNECT", "https", "tunnels.example", "/_system/ws/abc",
                              H2Headers{{"sec-websocket-version", "13"}, {"inkbox-ws-id", "abc"}},
                              false, "inkbox-tunnel-ws");
  ASSERT_TRUE(id.has_value()) << id.error().detail;
  pump(*client_, *server_);
  auto requests = only<H2RequestHeaders>(drain(*server_));
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "CONNECT");
  EXPECT_EQ(requests[0].protocol, "inkbox-tunnel-ws");
  EXPECT_EQ(requests[0].path, "/_system/ws/abc");
  EXPECT_FALSE(requests[0].end_stream);

  ASSERT_TRUE(server_->submit_response(*id, 200, {}, false));
  pump(*client_, *server_);
  auto responses = only<H2ResponseHeaders>(drain(*client_));
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].status, 200);
  EXPECT_FALSE(responses[0].end_stream);

  ASSERT_EQ(*client_->write_data(*id, "from agent"), 10u);
  ASSERT_EQ(*server_->write_data(*id, "from relay!"), 11u);
  pump(*client_, *server_);
  auto to_server = only<H2Data>(drain(*server_));
  ASSERT_EQ(to_server.size(), 1u);
  EXPECT_EQ(std::string(to_server[0].bytes.begin(), to_server[0].bytes.end()), "from agent");
  EXPECT_FALSE(to_server[0].end_stream);
  ASSERT_TRUE(server_->consume(*id, 10));
  auto to_client = only<H2Data>(drain(*client_));
  ASSERT_EQ(to_client.size(), 1u);
  EXPECT_EQ(std::string(to_client[0].bytes.begin(), to_client[0].bytes.end()), "from relay!");
  ASSERT_TRUE(client_->consume(*id, 11));

  // Half-close from the agent: the bridge stays open the other way.
  ASSERT_TRUE(client_->end_stream(*id));
  pump(*client_, *server_);
  auto server_side = drain(*server_);
  ASSERT_EQ(server_side.size(), 1u);
  EXPECT_TRUE(std::get<H2Data>(server_side[0]).end_stream);
  EXPECT_FALSE(client_->write_data(*id, "late").has_value());
  ASSERT_EQ(*server_->write_data(*id, "bye"), 3u);
  ASSERT_TRUE(server_->end_stream(*id));
  pump(*client_, *server_);

  auto tail = drain(*client_);
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_TRUE(std::get<H2Data>(tail[0]).end_stream);
  EXPECT_EQ(std::get<H2StreamClosed>(tail[1]).error_code, kH2NoError);
  auto server_closed = only<H2StreamClosed>(drain(*server_));
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].error_code, kH2NoError);
  expect_all_closed();
}

// Receives on `receiver`, consuming at most `chunk` bytes per call of step() (a slow reader).
struct SlowReader {
  H2Session& session;
  std::map<int32_t, std::vector<uint8_t>> received;
  std::map<int32_t, bool> ended;
  std::map<int32_t, size_t> unconsumed;
  size_t writable_events = 0;

  void collect() {
    while (auto ev = session.next_event()) {
      if (auto* d = std::get_if<H2Data>(&*ev)) {
        auto& r = received[d->stream_id];
        r.insert(r.end(), d->bytes.begin(), d->bytes.end());
        unconsumed[d->stream_id] += d->bytes.size();
        if (d->end_stream) ended[d->stream_id] = true;
      } else if (std::holds_alternative<H2StreamWritable>(*ev)) {
        ++writable_events;
      }
    }
  }
  size_t total() const {
    size_t n = 0;
    for (const auto& [id, v] : received) n += v.size();
    return n;
  }
  void consume(size_t chunk) {
    for (auto& [id, n] : unconsumed) {
      const size_t take = std::min(n, chunk);
      ASSERT_TRUE(session.consume(id, take));
      n -= take;
    }
  }
};

// Writes as much of `data` as the session accepts; returns bytes accepted this call.
size_t offer(H2Session& s, int32_t id, const std::vector<uint8_t>& data, size_t& offset) {
  auto n = s.write_data(id, std::span<const uint8_t>(data).subspan(offset));
  EXPECT_TRUE(n.has_value());
  offset += *n;
  return *n;
}

TEST_F(H2SessionTest, StreamWindowHoldsBackASlowServer) {
  connect();
  auto id = client_->submit_request("POST", "https", "tunnels.example", "/_system/response/r1", {},
                                    false);
  ASSERT_TRUE(id.has_value());
  const auto data = pattern(1 << 20, 3);
  size_t offset = 0;
  SlowReader reader{*server_};
  // The server does not consume: the client stops at the 65,535-byte initial window.
  for (int i = 0; i < 10; ++i) {
    offer(*client_, *id, data, offset);
    pump(*client_, *server_);
    reader.collect();
    EXPECT_LE(client_->outbound_buffered(*id), H2Settings{}.outbound_buffer_limit);
  }
  EXPECT_EQ(reader.total(), 65535u);
  EXPECT_EQ(client_->remote_window(*id), 0);
  EXPECT_EQ(client_->outbound_buffered(*id), H2Settings{}.outbound_buffer_limit);
  EXPECT_EQ(offset, 65535u + H2Settings{}.outbound_buffer_limit);
  EXPECT_EQ(offer(*client_, *id, data, offset), 0u);  // the buffer is full: backpressure

  // Now the server drains in 16 KiB steps and everything arrives, in order.
  bool ended_sent = false;
  for (int i = 0; i < 10000 && !reader.ended[*id]; ++i) {
    reader.consume(16 * 1024);
    if (offset < data.size()) offer(*client_, *id, data, offset);
    if (offset == data.size() && !ended_sent) {
      ASSERT_TRUE(client_->end_stream(*id));
      ended_sent = true;
    }
    pump(*client_, *server_);
    reader.collect();
  }
  ASSERT_TRUE(reader.ended[*id]);
  EXPECT_EQ(reader.received[*id], data);
}

TEST_F(H2SessionTest, ConnectionWindowIsSharedByStreams) {
  H2Settings server_settings;
  server_settings.initial_window_size = 1 << 20;  // streams may take 1 MiB, the connection 65,535
  connect(server_settings);
  auto a = client_->submit_request("POST", "https", "t.example", "/a", {}, false);
  auto b = client_->submit_request("POST", "https", "t.example", "/b", {}, false);
  ASSERT_TRUE(a.has_value() && b.has_value());
  const auto data_a = pattern(200 * 1024, 1);
  const auto data_b = pattern(200 * 1024, 2);
  size_t off_a = 0;
  size_t off_b = 0;
  offer(*client_, *a, data_a, off_a);
  offer(*client_, *b, data_b, off_b);
  ASSERT_TRUE(client_->end_stream(*a));
  ASSERT_TRUE(client_->end_stream(*b));
  SlowReader reader{*server_};
  pump(*client_, *server_);
  reader.collect();
  EXPECT_EQ(reader.total(), 65535u);
  EXPECT_EQ(client_->connection_remote_window(), 0);
  EXPECT_GT(client_->remote_window(*a), 0);
  EXPECT_GT(client_->remote_window(*b), 0);

  for (int i = 0; i < 10000 && !(reader.ended[*a] && reader.ended[*b]); ++i) {
    reader.consume(8 * 1024);
    pump(*client_, *server_);
    reader.collect();
  }
  EXPECT_EQ(reader.received[*a], data_a);
  EXPECT_EQ(reader.received[*b], data_b);
}

TEST_F(H2SessionTest, ServerWriteDataRefusesBeyondTheCapAndResumes) {
  connect();
  auto id = client_->submit_request("GET", "https", "t.example", "/big", {}, true);
  ASSERT_TRUE(id.has_value());
  pump(*client_, *server_);
  drain(*server_);
  ASSERT_TRUE(server_->submit_response(
      *id, 200, H2Headers{{"content-type", "application/octet-stream"}}, false));

  const size_t cap = H2Settings{}.outbound_buffer_limit;
  const auto data = pattern(1 << 20, 9);
  size_t offset = 0;
  EXPECT_EQ(offer(*server_, *id, data, offset), cap);  // partial acceptance
  SlowReader reader{*client_};
  pump(*client_, *server_);
  reader.collect();
  EXPECT_EQ(reader.total(), 65535u);
  EXPECT_EQ(offer(*server_, *id, data, offset), 65535u);  // only the room the window freed
  pump(*client_, *server_);
  EXPECT_EQ(offer(*server_, *id, data, offset), 0u);

  SlowReader server_side{*server_};
  bool ended_sent = false;
  for (int i = 0; i < 10000 && !reader.ended[*id]; ++i) {
    reader.consume(32 * 1024);
    pump(*client_, *server_);
    reader.collect();
    server_side.collect();
    if (offset < data.size()) offer(*server_, *id, data, offset);
    if (offset == data.size() && !ended_sent) {
      ASSERT_TRUE(server_->end_stream(*id));
      ended_sent = true;
    }
  }
  EXPECT_EQ(reader.received[*id], data);
  EXPECT_GE(server_side.writable_events, 1u);
}

TEST_F(H2SessionTest, ResetStreamBothWays) {
  connect();
  // Client resets a bridge.
  auto id = client_->submit_request("CONNECT", "https", "t.example", "/_system/tcp/x", {}, false,
                                    "inkbox-tunnel-tcp");
  ASSERT_TRUE(id.has_value());
  pump(*client_, *server_);
  drain(*server_);
  ASSERT_TRUE(server_->submit_response(*id, 200, {}, false));
  pump(*client_, *server_);
  drain(*client_);
  ASSERT_TRUE(client_->reset_stream(*id, kH2Cancel));
  pump(*client_, *server_);
  auto server_closed = only<H2StreamClosed>(drain(*server_));
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].error_code, kH2Cancel);
  EXPECT_TRUE(server_closed[0].reset_by_peer);
  auto client_closed = only<H2StreamClosed>(drain(*client_));
  ASSERT_EQ(client_closed.size(), 1u);
  EXPECT_EQ(client_closed[0].error_code, kH2Cancel);
  EXPECT_FALSE(client_closed[0].reset_by_peer);
  auto late = server_->write_data(*id, "x");
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().kind, H2ErrorKind::unknown_stream);

  // Server resets a request it will not serve.
  auto id2 = client_->submit_request("POST", "https", "t.example", "/_system/intake", {}, true);
  ASSERT_TRUE(id2.has_value());
  pump(*client_, *server_);
  drain(*server_);
  ASSERT_TRUE(server_->reset_stream(*id2, kH2RefusedStream));
  pump(*client_, *server_);
  client_closed = only<H2StreamClosed>(drain(*client_));
  ASSERT_EQ(client_closed.size(), 1u);
  EXPECT_EQ(client_closed[0].stream_id, *id2);
  EXPECT_EQ(client_closed[0].error_code, kH2RefusedStream);
  EXPECT_TRUE(client_closed[0].reset_by_peer);

  EXPECT_EQ(client_->stats().resets_sent, 1u);
  EXPECT_EQ(client_->stats().resets_received, 1u);
  EXPECT_EQ(server_->stats().resets_sent, 1u);
  EXPECT_EQ(server_->stats().resets_received, 1u);
  expect_all_closed();
}

TEST_F(H2SessionTest, SupersededGoAwayCarriesDebugData) {
  connect();
  auto id = client_->submit_request("POST", "https", "t.example", "/_system/hello", {}, true);
  ASSERT_TRUE(id.has_value());
  pump(*client_, *server_);
  drain(*server_);
  ASSERT_TRUE(server_->submit_response(*id, 200, {}, true));
  pump(*client_, *server_);
  drain(*client_);

  const std::string debug = R"({"reason":"superseded"})";
  ASSERT_TRUE(server_->goaway(kH2Superseded, debug));
  pump(*client_, *server_);
  auto goaways = only<H2GoAwayReceived>(drain(*client_));
  ASSERT_EQ(goaways.size(), 1u);
  EXPECT_EQ(goaways[0].error_code, 0x1201u);
  EXPECT_EQ(goaways[0].debug_data, debug);
  EXPECT_EQ(goaways[0].last_stream_id, *id);
  // No stream left on either side: both may close the transport now.
  EXPECT_TRUE(client_->should_close());
  EXPECT_TRUE(server_->should_close());
  auto refused = client_->submit_request("POST", "https", "t.example", "/_system/intake", {}, true);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().kind, H2ErrorKind::session_closed);
  EXPECT_EQ(server_->stats().goaways_sent, 1u);
  EXPECT_EQ(server_->stats().flood_errors, 0u);
}

TEST_F(H2SessionTest, GracefulGoAwayLetsOpenBridgesFinish) {
  connect();
  auto id = client_->submit_request("CONNECT", "https", "t.example", "/_system/ws/1", {}, false,
                                    "inkbox-tunnel-ws");
  ASSERT_TRUE(id.has_value());
  pump(*client_, *server_);
  ASSERT_TRUE(server_->submit_response(*id, 200, {}, false));
  ASSERT_TRUE(server_->goaway(kH2NoError));
  pump(*client_, *server_);
  drain(*server_);
  auto client_events = drain(*client_);
  ASSERT_EQ(only<H2GoAwayReceived>(client_events).size(), 1u);
  EXPECT_FALSE(server_->should_close());
  EXPECT_FALSE(client_->should_close());

  ASSERT_EQ(*client_->write_data(*id, "still here"), 10u);
  ASSERT_TRUE(client_->end_stream(*id));
  ASSERT_TRUE(server_->end_stream(*id));
  pump(*client_, *server_);
  auto data = only<H2Data>(drain(*server_));
  ASSERT_FALSE(data.empty());
  EXPECT_EQ(std::string(data[0].bytes.begin(), data[0].bytes.end()), "still here");
  EXPECT_TRUE(server_->should_close());
  EXPECT_TRUE(client_->should_close());
  expect_all_closed();
}

TEST_F(H2SessionTest, GarbageInsteadOfPrefaceFailsWithGoAway) {
  server_ = make(Role::server);
  auto r = server_->receive(bytes_of("GET / HTTP/1.1\r\nHost: example\r\n\r\n"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, H2ErrorKind::bad_preface);
  EXPECT_FALSE(server_->want_read());
  ASSERT_TRUE(server_->want_write());
  std::string out;
  ASSERT_TRUE(server_->produce(out).has_value());
  bool saw_goaway = false;
  for (const Frame& f : parse_frames(out)) {
    if (f.type == 0x7) {
      saw_goaway = true;
      ASSERT_GE(f.payload.size(), 8u);
      EXPECT_EQ(static_cast<uint8_t>(f.payload[7]), kH2ProtocolError);
    }
  }
  EXPECT_TRUE(saw_goaway);
  EXPECT_TRUE(server_->should_close());
  auto again = server_->receive(bytes_of("more"));
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().kind, H2ErrorKind::session_closed);
}

TEST_F(H2SessionTest, BadFieldsAreRefusedBeforeAnythingIsSent) {
  connect();
  auto id = client_->submit_request("POST", "https", "t.example", "/_system/intake", {}, true);
  ASSERT_TRUE(id.has_value());
  pump(*client_, *server_);
  drain(*server_);
  ASSERT_FALSE(server_->want_write());

  const std::vector<H2Headers> bad = {
      {{"X-Upper", "1"}},         {{"connection", "close"}},
      {{"keep-alive", "5"}},      {{"transfer-encoding", "chunked"}},
      {{"upgrade", "websocket"}}, {{"proxy-connection", "x"}},
      {{"te", "gzip"}},           {{"x-space", " leading"}},
      {{"x-crlf", "a\r\nb"}},     {{"x-latin1", std::string("caf\xe9")}},
      {{"", "empty name"}},
  };
  for (const H2Headers& h : bad) {
    auto r = server_->submit_response(*id, 200, h, true);
    ASSERT_FALSE(r.has_value()) << h[0].name;
    EXPECT_EQ(r.error().kind, H2ErrorKind::invalid_header) << h[0].name;
  }
  H2Headers too_many;
  for (int i = 0; i < 127; ++i) too_many.push_back({"x-h" + std::to_string(i), "v"});
  EXPECT_FALSE(server_->submit_response(*id, 200, too_many, true).has_value());
  EXPECT_FALSE(server_->submit_response(*id, 101, {}, true).has_value());
  EXPECT_FALSE(server_->want_write());  // nothing was queued

  ASSERT_TRUE(server_->submit_response(
      *id, 204, H2Headers{{"te", "trailers"}, {"x-utf8", "caf\xc3\xa9"}}, true));
  pump(*client_, *server_);
  auto responses = only<H2ResponseHeaders>(drain(*client_));
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].status, 204);
  EXPECT_EQ(header(responses[0].headers, "x-utf8"), "caf\xc3\xa9");

  auto upper =
      client_->submit_request("GET", "https", "t.example", "/", H2Headers{{"Host", "x"}}, true);
  ASSERT_FALSE(upper.has_value());
  EXPECT_EQ(upper.error().kind, H2ErrorKind::invalid_header);
}

TEST_F(H2SessionTest, WrongRoleIsRefused) {
  connect();
  EXPECT_EQ(server_->submit_request("GET", "https", "t", "/", {}, true).error().kind,
            H2ErrorKind::invalid_argument);
  EXPECT_EQ(client_->submit_response(1, 200, {}, true).error().kind, H2ErrorKind::invalid_argument);
  EXPECT_EQ(server_->submit_response(99, 200, {}, true).error().kind, H2ErrorKind::unknown_stream);
}

// nghttp2's client queues requests beyond the server's MAX_CONCURRENT_STREAMS and sends them as
// streams close: the server never sees more than 256 at once.
TEST_F(H2SessionTest, RequestsBeyondMaxConcurrentStreamsAreQueuedByTheClient) {
  connect();
  std::vector<int32_t> ids;
  for (int i = 0; i < 300; ++i) {
    auto id = client_->submit_request("GET", "https", "t.example", "/n", {}, true);
    ASSERT_TRUE(id.has_value());
    ids.push_back(*id);
  }
  pump(*client_, *server_);
  auto first = only<H2RequestHeaders>(drain(*server_));
  EXPECT_EQ(first.size(), 256u);
  size_t served = 0;
  std::vector<H2RequestHeaders> pending = first;
  for (int round = 0; round < 10 && !pending.empty(); ++round) {
    for (const auto& req : pending)
      ASSERT_TRUE(server_->submit_response(req.stream_id, 204, {}, true));
    served += pending.size();
    pump(*client_, *server_);
    pending = only<H2RequestHeaders>(drain(*server_));
  }
  EXPECT_EQ(served, 300u);
  auto client_events = drain(*client_);
  EXPECT_EQ(only<H2ResponseHeaders>(client_events).size(), 300u);
  auto closed = only<H2StreamClosed>(client_events);
  EXPECT_EQ(closed.size(), 300u);
  for (const auto& c : closed) EXPECT_EQ(c.error_code, kH2NoError);
  expect_all_closed();
}

// A client that sends before it has seen our SETTINGS can exceed the limit; nghttp2 refuses the
// excess streams with RST_STREAM(REFUSED_STREAM), which the client may retry.
TEST_F(H2SessionTest, ExcessStreamsSentBeforeSettingsAreRefused) {
  server_ = make(Role::server);
  H2Settings eager;
  eager.assumed_peer_max_concurrent_streams = 1000;
  client_ = make(Role::client, eager);
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(client_->submit_request("GET", "https", "t.example", "/n", {}, true).has_value());
  }
  std::string wire;
  ASSERT_TRUE(client_->produce(wire, 16u << 20).has_value());
  ASSERT_TRUE(server_->receive(bytes_of(wire)).has_value());
  pump(*client_, *server_);
  EXPECT_EQ(only<H2RequestHeaders>(drain(*server_)).size(), 256u);
  auto closed = only<H2StreamClosed>(drain(*client_));
  ASSERT_EQ(closed.size(), 44u);
  for (const auto& c : closed) {
    EXPECT_EQ(c.error_code, kH2RefusedStream);
    EXPECT_TRUE(c.reset_by_peer);
  }
  EXPECT_EQ(server_->stats().resets_sent, 44u);
  EXPECT_TRUE(server_->want_read());  // a stream error, not a connection error
}

TEST_F(H2SessionTest, RapidResetEndsTheSession) {
  connect();
  std::string wire;
  for (int i = 0; i < 2000; ++i) {
    auto id = client_->submit_request("GET", "https", "t.example", "/", {}, true);
    ASSERT_TRUE(id.has_value());
    ASSERT_TRUE(client_->produce(wire).has_value());
    ASSERT_TRUE(client_->reset_stream(*id, kH2Cancel));
    ASSERT_TRUE(client_->produce(wire).has_value());
  }
  ASSERT_TRUE(server_->receive(bytes_of(wire)).has_value());
  std::string out;
  ASSERT_TRUE(server_->produce(out).has_value());
  ASSERT_TRUE(client_->receive(bytes_of(out)).has_value());

  auto goaways = only<H2GoAwayReceived>(drain(*client_));
  ASSERT_EQ(goaways.size(), 1u);
  EXPECT_EQ(goaways[0].error_code, kH2InternalError);  // what nghttp2's limiter sends
  EXPECT_EQ(server_->stats().flood_errors, 1u);
  EXPECT_EQ(server_->stats().goaways_sent, 1u);
  // nghttp2's limiter only queues its GOAWAY; streams keep being accepted until it is written, so
  // all 2,000 pairs in this one read were processed. None of them reaches the owner, though: each
  // was reset before the owner popped its headers.
  EXPECT_EQ(server_->stats().resets_received, 2000u);
  EXPECT_EQ(server_->stats().requests_dropped_unseen, 2000u);
  EXPECT_TRUE(stream_events(drain(*server_)).empty());
  EXPECT_TRUE(server_->should_close());
  EXPECT_TRUE(client_->should_close());
  EXPECT_EQ(server_->tracked_streams(), 0u);
}

// Reset in one read, the pair of HEADERS+RST_STREAM spread over reads: the limiter still trips.
TEST_F(H2SessionTest, RapidResetAcrossReadsTripsTheLimiter) {
  H2Settings tight;
  tight.reset_burst = 50;
  tight.reset_rate_per_second = 1;
  connect(tight);
  size_t seen = 0;
  for (int i = 0; i < 200 && !server_->should_close(); ++i) {
    auto id = client_->submit_request("GET", "https", "t.example", "/", {}, true);
    if (!id.has_value()) break;  // the client saw the GOAWAY
    pump(*client_, *server_);
    seen += only<H2RequestHeaders>(drain(*server_)).size();
    ASSERT_TRUE(client_->reset_stream(*id, kH2Cancel));
    pump(*client_, *server_);
    drain(*server_);
  }
  EXPECT_EQ(server_->stats().flood_errors, 1u);
  EXPECT_LE(seen, 52u);
  EXPECT_TRUE(server_->should_close());
  auto goaways = only<H2GoAwayReceived>(drain(*client_));
  ASSERT_EQ(goaways.size(), 1u);
  EXPECT_EQ(goaways[0].error_code, kH2InternalError);
}

TEST_F(H2SessionTest, WithdrawnRequestBytesAreCreditedBack) {
  connect();
  auto id = client_->submit_request("POST", "https", "t.example", "/_system/response/r", {}, false);
  ASSERT_TRUE(id.has_value());
  ASSERT_EQ(*client_->write_data(*id, std::string(60000, 'x')), 60000u);
  std::string wire;
  ASSERT_TRUE(client_->produce(wire).has_value());
  ASSERT_TRUE(client_->reset_stream(*id, kH2Cancel));
  ASSERT_TRUE(client_->produce(wire).has_value());
  EXPECT_LT(client_->connection_remote_window(), 65535 - 50000);
  ASSERT_TRUE(server_->receive(bytes_of(wire)).has_value());
  EXPECT_TRUE(stream_events(drain(*server_)).empty());
  pump(*client_, *server_);
  EXPECT_EQ(client_->connection_remote_window(), 65535);  // no leak of connection credit
  drain(*client_);
  expect_all_closed();
}

// The owner consumes what it took even after the stream closed: the connection window reopens.
TEST_F(H2SessionTest, ConsumeAfterCloseReopensTheConnectionWindow) {
  connect();
  auto a = client_->submit_request("POST", "https", "t.example", "/a", {}, false);
  ASSERT_TRUE(a.has_value());
  ASSERT_EQ(*client_->write_data(*a, std::string(65535, 'a')), 65535u);
  pump(*client_, *server_);
  SlowReader reader{*server_};
  reader.collect();
  ASSERT_EQ(reader.total(), 65535u);
  EXPECT_EQ(client_->connection_remote_window(), 0);
  ASSERT_TRUE(server_->reset_stream(*a, kH2Cancel));
  pump(*client_, *server_);
  reader.collect();
  reader.consume(65535);  // after StreamClosed
  pump(*client_, *server_);
  EXPECT_EQ(client_->connection_remote_window(), 65535);
  auto b = client_->submit_request("POST", "https", "t.example", "/b", {}, false);
  ASSERT_TRUE(b.has_value());
  ASSERT_EQ(*client_->write_data(*b, std::string(65535, 'b')), 65535u);
  pump(*client_, *server_);
  reader.collect();
  EXPECT_EQ(reader.received[*b].size(), 65535u);
}

TEST_F(H2SessionTest, OversizedInboundHeaderListResetsTheStream) {
  H2Settings small;
  small.max_header_list_size = 1024;
  server_ = make(Role::server, small);
  client_ = make(Role::client);
  // Submitted before the server's SETTINGS arrive, so the client does not know the limit yet.
  auto id = client_->submit_request("POST", "https", "t.example", "/_system/hello",
                                    H2Headers{{"x-big", std::string(2000, 'a')}}, true);
  ASSERT_TRUE(id.has_value());
  pump(*client_, *server_);
  auto server_events = drain(*server_);
  EXPECT_TRUE(only<H2RequestHeaders>(server_events).empty());
  EXPECT_TRUE(only<H2StreamClosed>(server_events).empty());  // never announced, closes silently
  EXPECT_EQ(server_->stats().oversized_header_blocks, 1u);
  auto closed = only<H2StreamClosed>(drain(*client_));
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].error_code, kH2InternalError);
  // Once the client knows the limit it refuses to send such a list itself.
  auto again = client_->submit_request("POST", "https", "t.example", "/_system/hello",
                                       H2Headers{{"x-big", std::string(2000, 'a')}}, true);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().kind, H2ErrorKind::invalid_header);
  expect_all_closed();
}

TEST_F(H2SessionTest, PingIsAnsweredAndAcked) {
  connect();
  ASSERT_TRUE(client_->ping(0x0102030405060708ull));
  pump(*client_, *server_);
  auto acks = only<H2PingAcked>(drain(*client_));
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].opaque, 0x0102030405060708ull);
  EXPECT_EQ(server_->stats().pings_received, 1u);
}

TEST_F(H2SessionTest, ProduceHonoursMaxBytes) {
  connect();
  auto id = client_->submit_request("POST", "https", "t.example", "/x", {}, false);
  ASSERT_TRUE(id.has_value());
  const auto data = pattern(40000, 5);
  size_t offset = 0;
  offer(*client_, *id, data, offset);
  ASSERT_TRUE(client_->end_stream(*id));
  std::string wire;
  while (client_->want_write()) {
    const size_t before = wire.size();
    auto n = client_->produce(wire, 1000);
    ASSERT_TRUE(n.has_value());
    ASSERT_LE(*n, 1000u);
    ASSERT_EQ(wire.size() - before, *n);
    if (*n == 0) break;
  }
  ASSERT_TRUE(server_->receive(bytes_of(wire)).has_value());
  SlowReader reader{*server_};
  reader.collect();
  EXPECT_EQ(reader.received[*id], data);
  EXPECT_TRUE(reader.ended[*id]);
}

// Neither role lets the other push: ENABLE_PUSH 0 is in each side's first SETTINGS frame.
TEST_F(H2SessionTest, BothRolesAdvertiseEnablePushZero) {
  for (Role role : {Role::server, Role::client}) {
    auto session = make(role);
    std::string wire;
    ASSERT_TRUE(session->produce(wire).has_value());
    if (role == Role::client) wire.erase(0, 24);  // the connection preface
    auto frames = parse_frames(wire);
    ASSERT_FALSE(frames.empty());
    ASSERT_EQ(frames[0].type, 0x4);  // SETTINGS
    std::map<uint16_t, uint32_t> entries;
    const std::string& p = frames[0].payload;
    for (size_t i = 0; i + 6 <= p.size(); i += 6) {
      const auto u = [&](size_t k) { return static_cast<uint8_t>(p[i + k]); };
      entries[static_cast<uint16_t>((u(0) << 8) | u(1))] =
          (uint32_t{u(2)} << 24) | (uint32_t{u(3)} << 16) | (uint32_t{u(4)} << 8) | u(5);
    }
    ASSERT_TRUE(entries.contains(0x2)) << (role == Role::server ? "server" : "client");
    EXPECT_EQ(entries[0x2], 0u);
  }
  connect();  // and each side accepts the other's
  for (H2Session* s : {client_.get(), server_.get()}) EXPECT_FALSE(s->should_close());
}

// The frames a serialized chunk carries for one stream, as "TYPE" or "TYPE+END" (RST_STREAM with
// its code), so order checks read plainly.
std::vector<std::string> frames_of_stream(std::string_view wire, int32_t stream_id) {
  std::vector<std::string> out;
  for (const Frame& f : parse_frames(wire)) {
    if (f.stream_id != static_cast<uint32_t>(stream_id)) continue;
    const bool end = (f.flags & 0x1) != 0;
    if (f.type == 0x0) out.push_back(end ? "DATA+END" : "DATA");
    if (f.type == 0x1) out.push_back(end ? "HEADERS+END" : "HEADERS");
    if (f.type == 0x3) {
      const auto code = static_cast<uint8_t>(f.payload[3]);  // codes used here fit one byte
      out.push_back("RST_STREAM(" + std::to_string(code) + ")");
    }
  }
  return out;
}

// What reset_after_response exists for: nghttp2 drops a stream's queued response once a
// RST_STREAM for it is submitted, so a reset right after the response loses the response.
TEST_F(H2SessionTest, ResetRightAfterSubmittingLosesTheResponse) {
  connect();
  auto id = client_->submit_request("POST", "https", "t.example", "/upload", {}, false);
  ASSERT_TRUE(id.has_value());
  ASSERT_EQ(*client_->write_data(*id, "part of a body"), 14u);
  pump(*client_, *server_);
  drain(*server_);
  ASSERT_TRUE(server_->submit_response(*id, 413, H2Headers{{"content-length", "4"}}, false));
  ASSERT_EQ(*server_->write_data(*id, "big!"), 4u);
  ASSERT_TRUE(server_->end_stream(*id));
  ASSERT_TRUE(server_->reset_stream(*id, kH2NoError));
  std::string wire;
  ASSERT_TRUE(server_->produce(wire).has_value());
  EXPECT_EQ(frames_of_stream(wire, *id), (std::vector<std::string>{"RST_STREAM(0)"}));
}

TEST_F(H2SessionTest, ResetAfterResponseFollowsTheWholeResponse) {
  connect();
  auto id = client_->submit_request("POST", "https", "t.example", "/upload", {}, false);
  ASSERT_TRUE(id.has_value());
  ASSERT_EQ(*client_->write_data(*id, "part of a body"), 14u);
  pump(*client_, *server_);
  auto request_data = only<H2Data>(drain(*server_));
  ASSERT_EQ(request_data.size(), 1u);
  ASSERT_TRUE(server_->consume(*id, request_data[0].bytes.size()));

  ASSERT_TRUE(server_->submit_response(*id, 413, H2Headers{{"content-length", "4"}}, false));
  ASSERT_EQ(*server_->write_data(*id, "big!"), 4u);
  ASSERT_TRUE(server_->end_stream(*id));
  ASSERT_TRUE(server_->reset_after_response(*id));
  // The reset comes in the next produce(), so it never shares a write with the response.
  std::string wire;
  ASSERT_TRUE(server_->produce(wire).has_value());
  EXPECT_EQ(frames_of_stream(wire, *id), (std::vector<std::string>{"HEADERS", "DATA+END"}));
  EXPECT_TRUE(server_->want_write());
  std::string next;
  ASSERT_TRUE(server_->produce(next).has_value());
  EXPECT_EQ(frames_of_stream(next, *id), (std::vector<std::string>{"RST_STREAM(0)"}));
  wire += next;

  ASSERT_TRUE(client_->receive(bytes_of(wire)).has_value());
  auto events = stream_events(drain(*client_));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(std::get<H2ResponseHeaders>(events[0]).status, 413);
  const auto& data = std::get<H2Data>(events[1]);
  EXPECT_EQ(std::string(data.bytes.begin(), data.bytes.end()), "big!");
  EXPECT_TRUE(data.end_stream);
  ASSERT_TRUE(client_->consume(*id, data.bytes.size()));
  const auto& closed = std::get<H2StreamClosed>(events[2]);
  EXPECT_EQ(closed.error_code, kH2NoError);
  EXPECT_TRUE(closed.reset_by_peer);
  pump(*client_, *server_);
  auto server_closed = only<H2StreamClosed>(drain(*server_));
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].error_code, kH2NoError);
  EXPECT_EQ(server_->stats().resets_sent, 1u);
  expect_all_closed();
}

// produce() may stop inside the frame carrying END_STREAM; the reset waits for that tail to go.
TEST_F(H2SessionTest, ResetAfterResponseWaitsForACarriedTail) {
  connect();
  auto id = client_->submit_request("POST", "https", "t.example", "/upload", {}, false);
  ASSERT_TRUE(id.has_value());
  pump(*client_, *server_);
  drain(*server_);
  ASSERT_TRUE(server_->submit_response(*id, 413, {}, false));
  ASSERT_EQ(*server_->write_data(*id, std::string(100, 'x')), 100u);
  ASSERT_TRUE(server_->end_stream(*id));
  ASSERT_TRUE(server_->reset_after_response(*id));
  std::vector<std::string> writes;
  while (server_->want_write()) {
    std::string out;
    ASSERT_TRUE(server_->produce(out, 64).has_value());
    if (out.empty()) break;
    writes.push_back(std::move(out));
  }
  ASSERT_GE(writes.size(), 3u);
  // The last write is the reset alone; everything before it is the response.
  EXPECT_EQ(frames_of_stream(writes.back(), *id), (std::vector<std::string>{"RST_STREAM(0)"}));
  EXPECT_EQ(writes.back().size(), 9u + 4u);
  std::string response;
  for (size_t i = 0; i + 1 < writes.size(); ++i) response += writes[i];
  EXPECT_EQ(frames_of_stream(response, *id), (std::vector<std::string>{"HEADERS", "DATA+END"}));
}

TEST_F(H2SessionTest, ResetAfterResponseWithHeadersOnlyAndAfterTheFact) {
  connect();
  // A response without a body: HEADERS carries END_STREAM, the reset follows it.
  auto first = client_->submit_request("POST", "https", "t.example", "/a", {}, false);
  ASSERT_TRUE(first.has_value());
  pump(*client_, *server_);
  drain(*server_);
  ASSERT_TRUE(server_->submit_response(*first, 431, {}, true));
  ASSERT_TRUE(server_->reset_after_response(*first));
  std::string wire;
  ASSERT_TRUE(server_->produce(wire).has_value());
  EXPECT_EQ(frames_of_stream(wire, *first), (std::vector<std::string>{"HEADERS+END"}));
  ASSERT_TRUE(client_->receive(bytes_of(wire)).has_value());
  wire.clear();
  ASSERT_TRUE(server_->produce(wire).has_value());
  EXPECT_EQ(frames_of_stream(wire, *first), (std::vector<std::string>{"RST_STREAM(0)"}));
  ASSERT_TRUE(client_->receive(bytes_of(wire)).has_value());

  // Asked for once the response is already out: the next produce() carries the reset.
  auto second = client_->submit_request("POST", "https", "t.example", "/b", {}, false);
  ASSERT_TRUE(second.has_value());
  pump(*client_, *server_);
  drain(*server_);
  ASSERT_TRUE(server_->submit_response(*second, 400, {}, true));
  wire.clear();
  ASSERT_TRUE(server_->produce(wire).has_value());
  EXPECT_EQ(frames_of_stream(wire, *second), (std::vector<std::string>{"HEADERS+END"}));
  ASSERT_TRUE(client_->receive(bytes_of(wire)).has_value());
  ASSERT_TRUE(server_->reset_after_response(*second));
  wire.clear();
  ASSERT_TRUE(server_->produce(wire).has_value());
  EXPECT_EQ(frames_of_stream(wire, *second), (std::vector<std::string>{"RST_STREAM(0)"}));
  ASSERT_TRUE(client_->receive(bytes_of(wire)).has_value());

  auto closed = only<H2StreamClosed>(drain(*client_));
  ASSERT_EQ(closed.size(), 2u);
  for (const auto& c : closed) EXPECT_EQ(c.error_code, kH2NoError);
  pump(*client_, *server_);
  drain(*server_);
  expect_all_closed();
}

TEST_F(H2SessionTest, ResetAfterResponseIsSkippedWhenThePeerEndsAndRefusedBeforeTheEnd) {
  connect();
  // The request was complete: nothing to stop, the stream closes cleanly without a reset.
  auto done = client_->submit_request("GET", "https", "t.example", "/", {}, true);
  ASSERT_TRUE(done.has_value());
  pump(*client_, *server_);
  drain(*server_);
  ASSERT_TRUE(server_->submit_response(*done, 200, {}, true));
  ASSERT_TRUE(server_->reset_after_response(*done));
  pump(*client_, *server_);
  EXPECT_EQ(server_->stats().resets_sent, 0u);
  auto closed = only<H2StreamClosed>(drain(*client_));
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].error_code, kH2NoError);

  // The peer ends its request after our END_STREAM went out, before the reset did: none is sent.
  auto racing = client_->submit_request("POST", "https", "t.example", "/", {}, false);
  ASSERT_TRUE(racing.has_value());
  pump(*client_, *server_);
  drain(*server_);
  ASSERT_TRUE(server_->submit_response(*racing, 200, {}, true));
  ASSERT_TRUE(server_->reset_after_response(*racing));
  std::string wire;
  ASSERT_TRUE(server_->produce(wire).has_value());
  ASSERT_TRUE(client_->receive(bytes_of(wire)).has_value());
  ASSERT_TRUE(client_->end_stream(*racing));
  wire.clear();
  ASSERT_TRUE(client_->produce(wire).has_value());
  ASSERT_TRUE(server_->receive(bytes_of(wire)).has_value());
  pump(*client_, *server_);
  EXPECT_EQ(server_->stats().resets_sent, 0u);
  closed = only<H2StreamClosed>(drain(*client_));
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].error_code, kH2NoError);
  EXPECT_FALSE(closed[0].reset_by_peer);

  // A response that has not been ended cannot be followed by anything yet; wrong role refused.
  auto open = client_->submit_request("POST", "https", "t.example", "/", {}, false);
  ASSERT_TRUE(open.has_value());
  pump(*client_, *server_);
  drain(*server_);
  EXPECT_EQ(server_->reset_after_response(*open).error().kind, H2ErrorKind::stream_state);
  ASSERT_TRUE(server_->submit_response(*open, 200, {}, false));
  EXPECT_EQ(server_->reset_after_response(*open).error().kind, H2ErrorKind::stream_state);
  EXPECT_EQ(client_->reset_after_response(*open).error().kind, H2ErrorKind::invalid_argument);
  EXPECT_EQ(server_->reset_after_response(99).error().kind, H2ErrorKind::unknown_stream);
}

}  // namespace
}  // namespace inkwire::proto
