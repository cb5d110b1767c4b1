// Load generator for bench/relay (a benchmark, not a test).
//
//   relay_load idle PORT CA_FILE SECRETS_FILE N POOL
//       Opens N agent sessions (TLS + h2 + hello + POOL parked intakes each, one tunnel per
//       session from SECRETS_FILE's "id secret" lines), prints "ready N" once every intake is
//       parked, then holds them until stdin closes. The script measures the relay's RSS meanwhile.
//
//   relay_load roundtrip CONFIG_TOML SECRETS_FILE SECONDS CONCURRENCY POOL
//       Runs a relay in-process (relay role of CONFIG_TOML, listening on port 0) with one agent
//       on a second thread that answers every envelope at once, and CONCURRENCY dispatcher
//       coroutines on the relay's thread that play the edge (dispatch, await the head, read the
//       body). Prints requests/s and the relay thread's CPU microseconds per request.
//
// The agent here is deliberately minimal (no backoff, no handlers): it exists to load the relay.

#include <openssl/ssl.h>
#include <sys/resource.h>
#include <time.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "common/logging.h"
#include "common/random_source.h"
#include "proto/h2_session.h"
#include "relay/relay.h"

namespace asio = boost::asio;
using asio::ip::tcp;
using inkwire::proto::H2Header;
using inkwire::proto::H2Session;

namespace {

struct Credentials {
  std::string id, secret;
};

std::vector<Credentials> read_secrets(const std::string& path) {
  std::ifstream in(path);
  std::vector<Credentials> out;
  Credentials c;
  while (in >> c.id >> c.secret) out.push_back(c);
  return out;
}

struct Counters {
  std::atomic<long> parked{0};
  std::atomic<long> answered{0};
  std::atomic<long> failed{0};
};

// One agent session: hello, POOL intakes, and (when answering) a 200 post per envelope.
class BenchAgent : public std::enable_shared_from_this<BenchAgent> {
 public:
  BenchAgent(asio::io_context& io, asio::ssl::context& tls, Credentials creds, int pool, bool answer, Counters& counters)
      : stream_(io, tls), wake_(io), creds_(std::move(creds)), pool_(pool), answer_(answer), counters_(counters) {}

  asio::awaitable<void> run(tcp::endpoint endpoint) {
    auto self = shared_from_this();
    auto [cec] = co_await stream_.next_layer().async_connect(endpoint, asio::as_tuple(asio::use_awaitable));
    if (cec) co_return fail("connect: " + cec.message());
    stream_.next_layer().set_option(tcp::no_delay(true));
    auto [hec] = co_await stream_.async_handshake(asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
    if (hec) co_return fail("handshake: " + hec.message());
    inkwire::proto::H2Settings settings;
    settings.initial_window_size = 1 << 20;
    settings.connection_window = 16 << 20;
    auto h2 = H2Session::create(H2Session::Role::client, settings);
    if (!h2) co_return fail("h2");
    h2_ = std::move(*h2);
    const std::vector<H2Header> hello{{"x-tunnel-id", creds_.id},
                                      {"x-tunnel-secret", creds_.secret},
                                      {"content-length", "0"},
                                      {"x-pool-size", std::to_string(pool_)}};
    auto sid = h2_->submit_request("POST", "https", "127.0.0.1", "/_system/hello", hello, true);
    if (!sid) co_return fail("hello");
    kinds_[*sid] = Kind::hello;
    asio::co_spawn(stream_.get_executor(), [self]() { return self->write_loop(); }, asio::detached);
    std::vector<uint8_t> buf(16 * 1024);
    for (;;) {
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      if (!h2_->receive(std::span(buf.data(), n))) break;
      events();
      wake_.cancel();
    }
    closed_ = true;
    wake_.cancel();
  }

 private:
  enum class Kind { hello, intake, post };
  struct Stream {
    Kind kind;
    int status = 0;
    std::string request_id;
    std::string body;
  };
  void fail(const std::string& why) {
    if (counters_.failed++ < 5) std::cerr << "agent: " << why << "\n";
  }
  asio::awaitable<void> write_loop() {
    auto self = shared_from_this();
    std::string out;
    while (!closed_) {
      out.clear();
      (void)h2_->produce(out);
      events();
      if (!out.empty()) {
        auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
        if (ec) break;
        continue;
      }
      wake_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  void park(int slot) {
    const std::vector<H2Header> h{{"x-tunnel-id", creds_.id},
                                  {"x-owner-token", token_},
                                  {"x-pool-slot", std::to_string(slot)},
                                  {"content-length", "0"}};
    auto sid = h2_->submit_request("POST", "https", "127.0.0.1", "/_system/intake", h, true);
    if (!sid) return fail("intake");
    streams_[*sid] = Stream{Kind::intake};
    slots_[*sid] = slot;
  }
  void events() {
    while (auto ev = h2_->next_event()) {
      if (auto* r = std::get_if<inkwire::proto::H2ResponseHeaders>(&*ev)) {
        Stream& s = streams_[r->stream_id];
        if (kinds_.count(r->stream_id)) s.kind = Kind::hello;
        s.status = r->status;
        for (auto& h : r->headers)
          if (h.name == "inkbox-request-id") s.request_id = h.value;
      } else if (auto* d = std::get_if<inkwire::proto::H2Data>(&*ev)) {
        (void)h2_->consume(d->stream_id, d->bytes.size());
        auto it = streams_.find(d->stream_id);
        if (it != streams_.end() && it->second.kind == Kind::hello) it->second.body.append(d->bytes.begin(), d->bytes.end());
      } else if (auto* c = std::get_if<inkwire::proto::H2StreamClosed>(&*ev)) {
        on_closed(c->stream_id);
      }
    }
  }
  void on_closed(int32_t id) {
    auto it = streams_.find(id);
    if (it == streams_.end()) return;
    Stream s = std::move(it->second);
    streams_.erase(it);
    if (s.kind == Kind::hello) {
      if (s.status != 200) return fail("hello status " + std::to_string(s.status));
      token_ = std::string(boost::json::parse(s.body).at("owner_token").as_string());
      for (int slot = 0; slot < pool_; ++slot) park(slot);
      counters_.parked += pool_;
      return;
    }
    if (s.kind != Kind::intake) return;
    const int slot = slots_[id];
    slots_.erase(id);
    if (s.status == 200 && answer_ && !s.request_id.empty()) {
      const std::vector<H2Header> h{{"x-tunnel-id", creds_.id},     {"x-tunnel-secret", creds_.secret},
                                    {"inkbox-status", "200"},       {"inkbox-request-id", s.request_id},
                                    {"content-length", "2"},        {"inkbox-h-content-type", "text/plain"}};
      auto sid = h2_->submit_request("POST", "https", "127.0.0.1", "/_system/response/" + s.request_id, h, false);
      if (sid) {
        (void)h2_->write_data(*sid, std::string_view("ok"));
        (void)h2_->end_stream(*sid);
        streams_[*sid] = Stream{Kind::post};
        ++counters_.answered;
      }
    }
    if (s.status == 200 || s.status == 204) park(slot);
  }

  asio::ssl::stream<tcp::socket> stream_;
  asio::steady_timer wake_;
  Credentials creds_;
  int pool_;
  bool answer_;
  Counters& counters_;
  std::unique_ptr<H2Session> h2_;
  std::string token_;
  std::unordered_map<int32_t, Kind> kinds_;
  std::unordered_map<int32_t, Stream> streams_;
  std::unordered_map<int32_t, int> slots_;
  bool closed_ = false;
};

asio::ssl::context client_tls(const std::string& ca_file) {
  asio::ssl::context tls(asio::ssl::context::tls_client);
  if (!ca_file.empty()) {
    tls.load_verify_file(ca_file);
    tls.set_verify_mode(asio::ssl::verify_peer);
  }
  static const unsigned char alpn[] = "\x02h2";
  SSL_CTX_set_alpn_protos(tls.native_handle(), alpn, 3);
  SSL_CTX_set_mode(tls.native_handle(), SSL_MODE_RELEASE_BUFFERS);
  return tls;
}

int idle(int argc, char** argv) {
  if (argc < 7) return 2;
  const auto port = static_cast<unsigned short>(std::stoi(argv[2]));
  auto tls = client_tls(argv[3]);
  auto creds = read_secrets(argv[4]);
  const std::size_t n = std::min<std::size_t>(std::stoul(argv[5]), creds.size());
  const int pool = std::stoi(argv[6]);
  asio::io_context io(1);
  Counters counters;
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
  std::vector<std::shared_ptr<BenchAgent>> agents;
  // Connect in waves so the relay's accept queue and handshakes are not one big burst.
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer t(io);
        for (std::size_t i = 0; i < n; ++i) {
          auto agent = std::make_shared<BenchAgent>(io, tls, creds[i], pool, false, counters);
          agents.push_back(agent);
          asio::co_spawn(io, agent->run(endpoint), asio::detached);
          if (i % 200 == 199) {
            t.expires_after(std::chrono::milliseconds(20));
            co_await t.async_wait(asio::use_awaitable);
          }
        }
      },
      asio::detached);
  std::thread runner([&] { io.run(); });
  const auto start = std::chrono::steady_clock::now();
  while (counters.parked < static_cast<long>(n) * pool && counters.failed == 0 &&
         std::chrono::steady_clock::now() - start < std::chrono::minutes(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::printf("ready %zu sessions, %ld intakes parked, %ld failures, %.1f s\n", n, counters.parked.load(),
              counters.failed.load(), std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  std::_Exit(0);  // thousands of sessions: let the kernel close them
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int roundtrip(int argc, char** argv) {
  if (argc < 7) return 2;
  inkwire::ConfigSources sources;
  sources.file = argv[2];
  sources.overrides = {{"roles", "relay"}, {"relay.listen", "127.0.0.1:0"}};
  auto config = inkwire::load_config(sources);
  if (!config) {
    std::cerr << config.error().message << "\n";
    return 1;
  }
  auto creds = read_secrets(argv[3]);
  if (creds.empty()) return 1;
  const int seconds = std::stoi(argv[4]);
  const int concurrency = std::stoi(argv[5]);
  const int pool = std::stoi(argv[6]);

  inkwire::SystemClock clock;
  inkwire::SecureRandom random;
  prometheus::Registry registry;
  asio::io_context relay_io(1);
  inkwire::relay::Relay relay(*config, clock, random, registry, inkwire::make_logger("relay", "warn"));
  if (auto ok = relay.start(relay_io); !ok) {
    std::cerr << ok.error() << "\n";
    return 1;
  }
  std::thread relay_thread([&] { relay_io.run(); });

  asio::io_context agent_io(1);
  auto tls = client_tls("");
  Counters counters;
  auto agent = std::make_shared<BenchAgent>(agent_io, tls, creds[0], pool, true, counters);
  asio::co_spawn(agent_io, agent->run(tcp::endpoint(asio::ip::make_address("127.0.0.1"), relay.port())),
                 asio::detached);
  std::thread agent_thread([&] { agent_io.run(); });
  while (counters.parked < pool && counters.failed == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));

  const auto tunnel = *inkwire::Uuid::parse(creds[0].id);
  std::atomic<long> done{0}, errors{0};
  std::atomic<bool> stop{false};
  auto cpu_at_start = asio::post(relay_io, asio::use_future([] { return thread_cpu_seconds(); }));
  const double cpu0 = cpu_at_start.get();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < concurrency; ++i) {
    asio::co_spawn(
        relay_io,
        [&]() -> asio::awaitable<void> {
          while (!stop) {
            inkwire::relay::InboundCall call;
            call.tunnel_id = tunnel;
            call.request.method = "GET";
            call.request.target = "/bench";
            call.request.headers = {{"user-agent", "bench"}, {"accept", "*/*"}};
            call.request.client_ip = "127.0.0.1";
            auto exchange = relay.registry().dispatch(std::move(call));
            if (!exchange) {
              ++errors;
              continue;
            }
            auto head = co_await (*exchange)->response();
            if (!head || head->status != 200) {
              ++errors;
              continue;
            }
            for (;;) {
              auto chunk = co_await (*exchange)->response_body().read();
              if (chunk.bytes.empty() && chunk.end != inkwire::relay::PipeEnd::open) break;
            }
            ++done;
          }
        },
        asio::detached);
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  auto cpu_at_end = asio::post(relay_io, asio::use_future([] { return thread_cpu_seconds(); }));
  const double cpu1 = cpu_at_end.get();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const long requests = done.load();
  stop = true;
  std::printf(
      "{\"requests\":%ld,\"errors\":%ld,\"seconds\":%.2f,\"requests_per_second\":%.0f,"
      "\"relay_cpu_seconds\":%.2f,\"relay_cpu_us_per_request\":%.1f,\"relay_cpu_utilisation\":%.2f}\n",
      requests, errors.load(), wall, static_cast<double>(requests) / wall, cpu1 - cpu0,
      requests ? (cpu1 - cpu0) * 1e6 / static_cast<double>(requests) : 0.0, (cpu1 - cpu0) / wall);
  std::fflush(stdout);
  std::_Exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "idle") return idle(argc, argv);
  if (mode == "roundtrip") return roundtrip(argc, argv);
  std::cerr << "usage: relay_load idle PORT CA_FILE SECRETS N POOL | roundtrip CONFIG SECRETS SECONDS CONCURRENCY POOL\n";
  return 2;
}
