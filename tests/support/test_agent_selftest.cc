// TestAgent checked against a real HTTP/2 server over real TLS: a small in-process server built on
// H2Session(Role::server) and Asio, with a throwaway self-signed certificate. Its behaviour is
// chosen by :path, so each test exercises one part of the client.
#include "tests/support/test_agent.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "proto/protocol_constants.h"

namespace inkwire::testing {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

struct PemPair {
  std::string cert;
  std::string key;
};

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

// Self-signed P-256 certificate for 127.0.0.1 and localhost; CA:TRUE so it can be its own anchor.
PemPair make_self_signed(const char* cn) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), static_cast<long>(std::random_device{}() >> 1));
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  const std::pair<int, const char*> exts[] = {
      {NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"},
      {NID_basic_constraints, "critical,CA:TRUE"},
  };
  for (const auto& [nid, value] : exts) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert, key, EVP_sha256());
  PemPair out;
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  out.cert = bio_text(bio);
  BIO_free(bio);
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  out.key = bio_text(bio);
  BIO_free(bio);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

int select_h2(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
              unsigned int inlen, void*) {
  static const unsigned char kH2[] = {2, 'h', '2'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kH2, sizeof kH2, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// What the server saw of one client stream.
struct Seen {
  proto::H2RequestHeaders request;
  std::string body;
  bool ended = false;
  bool closed = false;
  uint32_t close_code = 0;
  bool reset_by_peer = false;
};

class MiniServer {
 public:
  MiniServer(const PemPair& pem, bool select_alpn)
      : tls_(ssl::context::tls_server), acceptor_(io_) {
    tls_.use_certificate_chain(asio::buffer(pem.cert));
    tls_.use_private_key(asio::buffer(pem.key), ssl::context::pem);
    // Without the callback the server selects no ALPN protocol at all.
    if (select_alpn) SSL_CTX_set_alpn_select_cb(tls_.native_handle(), select_h2, nullptr);
    const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~MiniServer() {
    io_.stop();
    thread_.join();
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }

  // The latest stream whose :path starts with `path` and that satisfies cond.
  std::optional<Seen> wait_seen(std::string_view path, std::function<bool(const Seen&)> cond,
                                std::chrono::milliseconds t = 5s) {
    std::unique_lock lock(mu_);
    std::optional<Seen> found;
    cv_.wait_for(lock, t, [&] {
      for (auto it = seen_.rbegin(); it != seen_.rend(); ++it) {
        if (it->second.request.path.starts_with(path) && cond(it->second)) {
          found = it->second;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  // After the client's transport went away: whether its close_notify came first.
  std::optional<bool> wait_client_gone(std::chrono::milliseconds t = 5s) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, t, [&] { return client_gone_.has_value(); })) return std::nullopt;
    return client_gone_;
  }

 private:
  struct Conn : std::enable_shared_from_this<Conn> {
    Conn(MiniServer& server, tcp::socket socket)
        : server_(server), stream_(std::move(socket), server.tls_), buf_(16384) {}

    void start() {
      stream_.async_handshake(ssl::stream_base::server, [self = shared_from_this()](error_code ec) {
        if (ec) return;
        auto session = proto::H2Session::create(proto::H2Session::Role::server);
        if (!session) return;
        self->session_ = std::move(session).value();
        self->read();
        self->flush();
      });
    }
    void read() {
      stream_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](error_code ec,
                                                                               size_t n) {
        if (ec) {
          std::lock_guard lock(self->server_.mu_);
          self->server_.client_gone_ = ec == asio::error::eof;
          self->server_.cv_.notify_all();
          return;
        }
        if (self->closed_) return;
        if (self->session_->want_read()) {
          (void)self->session_->receive(std::span<const uint8_t>(self->buf_.data(), n));
        }
        self->drain();
        self->flush();
        self->read();
      });
    }
    void flush() {
      if (writing_ || closed_) return;
      out_.clear();
      for (int i = 0; i < 8; ++i) {
        auto n = session_->produce(out_);
        const bool events = drain();
        if (!n || (*n == 0 && !events)) break;
      }
      if (out_.empty()) return;
      writing_ = true;
      asio::async_write(stream_, asio::buffer(out_), [self = shared_from_this()](error_code ec,
                                                                                 size_t) {
        self->writing_ = false;
        if (ec) return;
        if (self->shutdown_after_write_) return self->shutdown();
        self->flush();
      });
    }
    bool drain() {
      bool any = false;
      while (auto ev = session_->next_event()) {
        any = true;
        if (auto* req = std::get_if<proto::H2RequestHeaders>(&*ev)) {
          on_request(*req);
        } else if (auto* d = std::get_if<proto::H2Data>(&*ev)) {
          (void)session_->consume(d->stream_id, d->bytes.size());
          std::string bytes(d->bytes.begin(), d->bytes.end());
          const bool ended = d->end_stream;
          {
            std::lock_guard lock(server_.mu_);
            Seen& s = server_.seen_[d->stream_id];
            s.body += bytes;
            s.ended = s.ended || ended;
          }
          if (echo_.contains(d->stream_id)) {
            queue(d->stream_id, bytes, ended);
          } else if (ended) {
            answer(d->stream_id);
          }
        } else if (auto* c = std::get_if<proto::H2StreamClosed>(&*ev)) {
          pending_.erase(c->stream_id);
          std::lock_guard lock(server_.mu_);
          Seen& s = server_.seen_[c->stream_id];
          s.closed = true;
          s.close_code = c->error_code;
          s.reset_by_peer = c->reset_by_peer;
        } else if (auto* w = std::get_if<proto::H2StreamWritable>(&*ev)) {
          pump(w->stream_id);
        }
      }
      if (any) server_.cv_.notify_all();
      return any;
    }

    void on_request(const proto::H2RequestHeaders& req) {
      {
        std::lock_guard lock(server_.mu_);
        Seen& s = server_.seen_[req.stream_id];
        s.request = req;
        s.ended = req.end_stream;
      }
      const int32_t id = req.stream_id;
      const std::string& path = req.path;
      if (req.method == "CONNECT") {
        // A bridge: 200 without END_STREAM, then every byte echoed back.
        (void)session_->submit_response(id, 200, {}, false);
        echo_.insert(id);
      } else if (path.starts_with("/big/")) {
        const size_t n = std::stoul(path.substr(5));
        std::string body(n, '\0');
        for (size_t i = 0; i < n; ++i) body[i] = static_cast<char>('a' + i % 26);
        const proto::H2Headers h = {{"content-length", std::to_string(n)}};
        (void)session_->submit_response(id, 200, h, false);
        queue(id, body, true);
      } else if (path == "/goaway") {
        (void)session_->submit_response(id, 200, {}, true);
        (void)session_->goaway(proto::kH2Superseded, R"({"reason":"superseded"})");
      } else if (path == "/reset") {
        (void)session_->reset_stream(id, proto::kH2Cancel);
      } else if (path == "/disconnect") {
        close(false);
      } else if (path == "/tls-close") {
        close(true);
      } else if (path.starts_with(proto::control_path::kIntake)) {
        // Held: the client decides when the stream ends.
      } else if (req.end_stream) {
        answer(id);
      }
    }

    // Replies to a request whose body has ended.
    void answer(int32_t id) {
      Seen s;
      {
        std::lock_guard lock(server_.mu_);
        s = server_.seen_[id];
      }
      const std::string& path = s.request.path;
      if (path == "/echo") {
        const proto::H2Headers h = {{"x-method", s.request.method},
                                    {"x-path", path},
                                    {"x-authority", s.request.authority},
                                    {"x-scheme", s.request.scheme},
                                    {"x-multi", "1"},
                                    {"x-multi", "2"}};
        (void)session_->submit_response(id, 200, h, s.body.empty());
        if (!s.body.empty()) queue(id, s.body, true);
      } else if (path == proto::control_path::kHello) {
        const proto::H2Headers h = {{"content-type", "application/json"}};
        (void)session_->submit_response(id, 200, h, false);
        queue(id, R"({"owner_token":"tok-1","default_pool_size":3,"intake_idle_seconds":300})",
              true);
      } else if (path.starts_with(proto::control_path::kResponsePrefix)) {
        (void)session_->submit_response(id, 200, {}, true);
      } else {
        (void)session_->submit_response(id, 404, {}, true);
      }
    }

    void queue(int32_t id, std::string_view bytes, bool end) {
      auto& [buf, fin] = pending_[id];
      buf += bytes;
      fin = fin || end;
      pump(id);
    }
    void pump(int32_t id) {
      auto it = pending_.find(id);
      if (it == pending_.end()) return;
      auto& [buf, fin] = it->second;
      auto n = session_->write_data(id, buf);
      if (!n) return;
      buf.erase(0, *n);
      if (buf.empty() && fin) {
        (void)session_->end_stream(id);
        pending_.erase(it);
      }
    }

    // graceful: TLS close_notify first; else the TCP connection just goes away.
    void close(bool graceful) {
      closed_ = true;
      if (!graceful) {
        error_code ignored;
        stream_.lowest_layer().close(ignored);
        return;
      }
      // Asio's SSL shutdown started while a write is in flight leaves its close_notify unsent
      // (the op retries SSL_shutdown instead of writing what the first call produced): wait.
      if (writing_) {
        shutdown_after_write_ = true;
      } else {
        shutdown();
      }
    }
    void shutdown() {
      stream_.async_shutdown([self = shared_from_this()](error_code) {
        error_code ignored;
        self->stream_.lowest_layer().close(ignored);
      });
    }

    MiniServer& server_;
    ssl::stream<tcp::socket> stream_;
    std::vector<uint8_t> buf_;
    std::string out_;
    bool writing_ = false;
    bool closed_ = false;
    bool shutdown_after_write_ = false;
    std::unique_ptr<proto::H2Session> session_;
    std::set<int32_t> echo_;
    std::map<int32_t, std::pair<std::string, bool>> pending_;
  };

  void accept() {
    acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec) return;
      std::make_shared<Conn>(*this, std::move(socket))->start();
      accept();
    });
  }

  asio::io_context io_;
  ssl::context tls_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int32_t, Seen> seen_;
  std::optional<bool> client_gone_;
};

class TestAgentSelfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("inkwire-agent-selftest-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
    pem_ = make_self_signed("localhost");
    std::ofstream(dir_ / "ca.pem") << pem_.cert;
    std::ofstream(dir_ / "other.pem") << make_self_signed("someone-else").cert;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void start_server(bool select_alpn = true) {
    server_ = std::make_unique<MiniServer>(pem_, select_alpn);
  }
  AgentOptions options() const {
    AgentOptions o;
    o.port = server_->port();
    o.ca_file = (dir_ / "ca.pem").string();
    o.timeout = 3s;
    return o;
  }
  std::unique_ptr<TestAgent> connect(const AgentOptions& o) {
    auto agent = TestAgent::connect(o);
    EXPECT_TRUE(agent.has_value()) << (agent ? "" : agent.error());
    return agent ? std::move(agent).value() : nullptr;
  }

  static std::vector<std::string> names(const proto::H2Headers& headers) {
    std::vector<std::string> out;
    for (const auto& h : headers) out.push_back(h.name);
    return out;
  }

  std::filesystem::path dir_;
  PemPair pem_;
  std::unique_ptr<MiniServer> server_;
};

TEST_F(TestAgentSelfTest, ConnectsWithAlpnH2AndVerifiesTheServer) {
  start_server();
  AgentOptions o = options();
  o.sni = "localhost";  // verified against the DNS SAN
  auto agent = connect(o);
  ASSERT_TRUE(agent);
  EXPECT_TRUE(agent->connected());
  ASSERT_TRUE(agent->wait_settings());
  EXPECT_TRUE(agent->server_settings()->enable_connect_protocol);
  agent->ping(0x1122334455667788ull);
  EXPECT_TRUE(agent->wait_ping_ack(0x1122334455667788ull));

  // The IP SAN is checked when no SNI is sent.
  EXPECT_TRUE(connect(options()));
}

TEST_F(TestAgentSelfTest, RefusesAnUntrustedServerOrOneWithoutH2) {
  start_server();
  AgentOptions o = options();
  o.ca_file = (dir_ / "other.pem").string();
  auto untrusted = TestAgent::connect(o);
  ASSERT_FALSE(untrusted.has_value());
  EXPECT_NE(untrusted.error().find("TLS handshake"), std::string::npos) << untrusted.error();

  start_server(/*select_alpn=*/false);
  auto no_alpn = TestAgent::connect(options());
  ASSERT_FALSE(no_alpn.has_value());
  EXPECT_NE(no_alpn.error().find("h2 required"), std::string::npos) << no_alpn.error();

  o = options();
  o.port = 1;  // nothing listens there
  EXPECT_FALSE(TestAgent::connect(o).has_value());
}

TEST_F(TestAgentSelfTest, RoundTripsARequestWithABody) {
  start_server();
  AgentOptions o = options();
  o.authority = "relay.example.test";
  auto agent = connect(o);
  ASSERT_TRUE(agent);
  const int32_t id = agent->request("POST", "/echo", {{"x-test", "1"}}, std::string("hello"));
  ASSERT_GT(id, 0) << agent->last_error();
  auto st = agent->wait_end(id);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, 200);
  EXPECT_EQ(st->body, "hello");
  EXPECT_EQ(st->header("x-method"), "POST");
  EXPECT_EQ(st->header("x-authority"), "relay.example.test");
  EXPECT_EQ(st->header("x-scheme"), "https");
  EXPECT_EQ(st->header_values("x-multi"), (std::vector<std::string>{"1", "2"}));
  EXPECT_FALSE(st->header("absent"));
  auto seen = server_->wait_seen("/echo", [](const Seen& s) { return s.ended; });
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->request.headers.at(0).name, "x-test");

  // Larger than the session's outbound buffer and every window: queued, pumped, echoed back.
  std::string big(300 * 1024, 'z');
  big[1234] = 'q';
  const int32_t id2 = agent->request("POST", "/echo", {}, big);
  auto st2 = agent->wait_end(id2);
  ASSERT_TRUE(st2);
  EXPECT_EQ(st2->body, big);
  auto taken = agent->read_data(id2, 0);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->size(), big.size());
  EXPECT_TRUE(agent->state(id2).body.empty());

  // Streamed request body: HEADERS, then DATA, then END_STREAM.
  const int32_t id3 = agent->request("POST", "/echo", {}, std::nullopt, std::nullopt, false);
  EXPECT_TRUE(agent->send_data(id3, "ab", false));
  EXPECT_TRUE(agent->send_data(id3, "cd", true));
  auto st3 = agent->wait_end(id3);
  ASSERT_TRUE(st3);
  EXPECT_EQ(st3->body, "abcd");
  EXPECT_TRUE(agent->wait_closed_stream(id3).has_value());
  EXPECT_EQ(agent->state(id3).error_code, 0u);
}

TEST_F(TestAgentSelfTest, ExtendedConnectCarriesProtocolAndBridgeHeaders) {
  start_server();
  auto agent = connect(options());
  ASSERT_TRUE(agent);
  ASSERT_TRUE(agent->wait_settings());
  const int32_t ws = agent->open_bridge(true, "tid-1", "sec-1", "ws-9");
  ASSERT_GT(ws, 0) << agent->last_error();
  auto st = agent->wait_headers(ws);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, 200);
  EXPECT_FALSE(st->ended);
  auto seen = server_->wait_seen("/_system/ws/", [](const Seen&) { return true; });
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->request.method, "CONNECT");
  EXPECT_EQ(seen->request.protocol, "inkbox-tunnel-ws");
  EXPECT_EQ(seen->request.path, "/_system/ws/ws-9");
  EXPECT_EQ(names(seen->request.headers),
            (std::vector<std::string>{"sec-websocket-version", "x-tunnel-id", "x-tunnel-secret",
                                      "inkbox-ws-id"}));
  EXPECT_EQ(seen->request.headers[0].value, "13");
  EXPECT_EQ(seen->request.headers[3].value, "ws-9");

  EXPECT_TRUE(agent->send_data(ws, "ping-bytes", false));
  EXPECT_EQ(agent->read_data(ws, 10), "ping-bytes");
  agent->end_stream(ws);
  auto end = agent->wait_end(ws);
  ASSERT_TRUE(end);
  EXPECT_TRUE(end->ended);

  const int32_t tcp_bridge = agent->open_bridge(false, "tid-1", "sec-1", "tcp-3");
  ASSERT_TRUE(agent->wait_headers(tcp_bridge));
  auto seen_tcp = server_->wait_seen("/_system/tcp/", [](const Seen&) { return true; });
  ASSERT_TRUE(seen_tcp);
  EXPECT_EQ(seen_tcp->request.protocol, "inkbox-tunnel-tcp");
  EXPECT_EQ(names(seen_tcp->request.headers),
            (std::vector<std::string>{"sec-websocket-version", "sec-websocket-protocol",
                                      "x-tunnel-id", "x-tunnel-secret", "inkbox-tcp-id"}));
  EXPECT_EQ(seen_tcp->request.headers[1].value, "inkbox-tunnel-tcp");

  // Our reset reaches the server as RST_STREAM(CANCEL).
  agent->reset(tcp_bridge, proto::kH2Cancel);
  auto reset = server_->wait_seen("/_system/tcp/", [](const Seen& s) { return s.closed; });
  ASSERT_TRUE(reset);
  EXPECT_EQ(reset->close_code, proto::kH2Cancel);
  EXPECT_TRUE(reset->reset_by_peer);
}

TEST_F(TestAgentSelfTest, DataPlaneShorthandsSendTheSdkHeaders) {
  start_server();
  auto agent = connect(options());
  ASSERT_TRUE(agent);
  auto hello = agent->hello("tid-1", "sec-1", 3);
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->status, 200);
  EXPECT_EQ(hello->owner_token, "tok-1");
  EXPECT_EQ(hello->default_pool_size, 3);
  auto seen = server_->wait_seen("/_system/hello", [](const Seen& s) { return s.ended; });
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->request.method, "POST");
  EXPECT_EQ(names(seen->request.headers),
            (std::vector<std::string>{"x-tunnel-id", "x-tunnel-secret", "content-length",
                                      "x-pool-size"}));
  EXPECT_EQ(seen->request.headers[2].value, "0");
  EXPECT_EQ(seen->request.headers[3].value, "3");

  const int32_t intake = agent->open_intake("tid-1", "tok-1", 2);
  auto parked = server_->wait_seen("/_system/intake", [](const Seen& s) { return s.ended; });
  ASSERT_TRUE(parked);
  EXPECT_EQ(names(parked->request.headers),
            (std::vector<std::string>{"x-tunnel-id", "x-owner-token", "x-pool-slot",
                                      "content-length"}));
  EXPECT_EQ(parked->request.headers[2].value, "2");
  // Held by the server: the wait is bounded.
  EXPECT_FALSE(agent->wait_headers(intake, 100ms));

  const int32_t post = agent->post_response("tid-1", "sec-1", "req-7", 201,
                                            {{"Set-Cookie", "a=1"}, {"set-cookie", "b=2"}},
                                            "created", {{"inkbox-reason", "why"}});
  auto answered = agent->wait_end(post);
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->status, 200);
  auto posted = server_->wait_seen("/_system/response/", [](const Seen& s) { return s.ended; });
  ASSERT_TRUE(posted);
  EXPECT_EQ(posted->request.path, "/_system/response/req-7");
  EXPECT_EQ(names(posted->request.headers),
            (std::vector<std::string>{"x-tunnel-id", "x-tunnel-secret", "inkbox-status",
                                      "inkbox-request-id", "content-length", "inkbox-h-set-cookie",
                                      "inkbox-h-set-cookie", "inkbox-reason"}));
  EXPECT_EQ(posted->request.headers[2].value, "201");
  EXPECT_EQ(posted->request.headers[4].value, "7");
  EXPECT_EQ(posted->body, "created");

  // An empty body goes out as END_STREAM on HEADERS.
  agent->post_response("tid-1", "sec-1", "req-8", 204, {}, "");
  auto empty = server_->wait_seen("/_system/response/req-8", [](const Seen& s) { return s.ended; });
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->request.end_stream);
}

TEST_F(TestAgentSelfTest, ManualCreditHoldsTheServerToOneWindow) {
  start_server();
  AgentOptions o = options();
  o.auto_credit = false;
  auto agent = connect(o);
  ASSERT_TRUE(agent);
  constexpr size_t kTotal = 200000;
  const int32_t id = agent->request("GET", "/big/" + std::to_string(kTotal), {}, std::nullopt);
  auto st = agent->wait_received(id, 65535);
  ASSERT_TRUE(st);
  std::this_thread::sleep_for(300ms);  // room for bytes that should not come
  EXPECT_EQ(agent->state(id).received_total, 65535u);
  EXPECT_FALSE(agent->state(id).ended);

  std::string all;
  for (int i = 0; i < 200 && all.size() < kTotal; ++i) {
    auto chunk = agent->read_data(id, 1);
    ASSERT_TRUE(chunk) << "stalled at " << all.size();
    all += *chunk;
  }
  ASSERT_EQ(all.size(), kTotal);
  for (size_t i = 0; i < kTotal; ++i) {
    ASSERT_EQ(all[i], static_cast<char>('a' + i % 26)) << i;
  }
  auto end = agent->wait_end(id);
  ASSERT_TRUE(end);
  EXPECT_TRUE(end->ended);

  // With auto credit the same reply arrives in one go.
  start_server();
  auto fast = connect(options());
  ASSERT_TRUE(fast);
  const int32_t id2 = fast->request("GET", "/big/" + std::to_string(kTotal), {}, std::nullopt);
  auto done = fast->wait_end(id2);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->body.size(), kTotal);
}

TEST_F(TestAgentSelfTest, ManualCreditForBridgesOnly) {
  start_server();
  AgentOptions o = options();
  o.manual_credit_bridges = true;
  auto agent = connect(o);
  ASSERT_TRUE(agent);
  const int32_t bridge = agent->open_bridge(true, "t", "s", "b");
  ASSERT_TRUE(agent->wait_headers(bridge));
  // The server echoes 100 KB: only one window of it comes back until we read.
  const std::string payload(100000, 'x');
  EXPECT_TRUE(agent->send_data(bridge, payload, false));
  ASSERT_TRUE(agent->wait_received(bridge, 65535));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(agent->state(bridge).received_total, 65535u);
  // Other streams share the connection window, which the unread bridge bytes have used up:
  // exactly the Python SDK's head-of-line blocking (§4.1).
  const int32_t other = agent->request("POST", "/echo", {}, std::string("hi"));
  EXPECT_FALSE(agent->wait_end(other, 200ms).has_value());
  auto taken = agent->read_data(bridge, 65535);
  ASSERT_TRUE(taken);
  auto unblocked = agent->wait_end(other);
  ASSERT_TRUE(unblocked);
  EXPECT_EQ(unblocked->body, "hi");
}

TEST_F(TestAgentSelfTest, SeesGoawayResetsAndDisconnects) {
  start_server();
  auto agent = connect(options());
  ASSERT_TRUE(agent);
  const int32_t reset = agent->request("GET", "/reset", {}, std::nullopt);
  auto st = agent->wait_closed_stream(reset);
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->closed);
  EXPECT_EQ(st->error_code, proto::kH2Cancel);
  EXPECT_TRUE(st->reset_by_peer);

  const int32_t g = agent->request("GET", "/goaway", {}, std::nullopt);
  ASSERT_TRUE(agent->wait_goaway());
  auto goaway = agent->goaway_received();
  ASSERT_TRUE(goaway);
  EXPECT_EQ(goaway->error_code, proto::kH2Superseded);
  EXPECT_EQ(goaway->debug_data, R"({"reason":"superseded"})");
  EXPECT_GE(goaway->last_stream_id, g);
  // No new streams after GOAWAY.
  EXPECT_EQ(agent->request("GET", "/echo", {}, std::nullopt), -1);
  EXPECT_FALSE(agent->last_error().empty());

  auto second = connect(options());
  ASSERT_TRUE(second);
  second->request("GET", "/disconnect", {}, std::nullopt);
  EXPECT_TRUE(second->wait_disconnected());
  EXPECT_FALSE(second->connected());
  EXPECT_FALSE(second->peer_sent_close_notify());
  EXPECT_EQ(second->request("GET", "/echo", {}, std::nullopt), -1);

  auto third = connect(options());
  ASSERT_TRUE(third);
  third->request("GET", "/tls-close", {}, std::nullopt);
  EXPECT_TRUE(third->wait_disconnected());
  EXPECT_TRUE(third->peer_sent_close_notify());
}

TEST_F(TestAgentSelfTest, ClosesWithOrWithoutCloseNotify) {
  start_server();
  auto agent = connect(options());
  ASSERT_TRUE(agent);
  ASSERT_TRUE(agent->wait_settings());
  agent->close_tls();
  EXPECT_FALSE(agent->connected());
  EXPECT_EQ(server_->wait_client_gone(), std::optional<bool>(true));

  start_server();
  auto rude = connect(options());
  ASSERT_TRUE(rude);
  ASSERT_TRUE(rude->wait_settings());
  rude->close_abruptly();
  EXPECT_TRUE(rude->wait_disconnected());
  EXPECT_EQ(server_->wait_client_gone(), std::optional<bool>(false));
}

}  // namespace
}  // namespace inkwire::testing
