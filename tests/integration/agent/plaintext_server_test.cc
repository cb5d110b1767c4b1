// The passthrough plaintext service (PROTOCOL.md §6.5) end to end on 127.0.0.1: curl (HTTP/1.1 and
// HTTP/2) over real TLS → TlsSocket (server side, throwaway self-signed certificate) →
// serve_plaintext → HttpForwarder → a small real HTTP/1.1 origin (Beast) that echoes what it got.
// WebSocket: Node clients (ws_passthrough_client.js: the `ws` package over HTTP/1.1, an RFC 8441
// extended CONNECT over HTTP/2) → serve_plaintext → tests/e2e/ws_origin.js, a real `ws` origin.
// Every curl run is bounded by --max-time; the servers run on one io_context thread and are torn
// down after their connections have ended.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <string>
#include <thread>

#include "agent/http_forwarder.h"
#include "agent/plaintext_server.h"
#include "common/logging.h"
#include "common/tls_server_context.h"
#include "common/tls_socket.h"
#include "proto/forward_target.h"
#include "proto/h2_session.h"
#include "proto/header_rules.h"

namespace inkwire::agent {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

constexpr std::string_view kHost = "pt.test";
constexpr std::uint64_t kInboundCap = 1024 * 1024;
constexpr std::uint64_t kOutboundCap = 4 * 1024 * 1024;

// ------------------------------------------------------------------------------ certificate

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// A throwaway self-signed P-256 certificate for pt.test and 127.0.0.1, written as PEM files.
void write_self_signed(const std::filesystem::path& cert_file, const std::filesystem::path& key_file) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), static_cast<long>(std::random_device{}() >> 1));
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("pt.test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  const std::pair<int, const char*> extensions[] = {{NID_subject_alt_name, "DNS:pt.test,IP:127.0.0.1"},
                                                    {NID_basic_constraints, "critical,CA:TRUE"}};
  for (const auto& [nid, value] : extensions) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert, key, EVP_sha256());
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  std::ofstream(cert_file, std::ios::binary) << bio_text(bio);
  BIO_free(bio);
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::ofstream(key_file, std::ios::binary) << bio_text(bio);
  BIO_free(bio);
  X509_free(cert);
  EVP_PKEY_free(key);
}

// ---------------------------------------------------------------------------------- origin

// A small HTTP/1.1 origin. /echo answers with what it received: "METHOD target", one line per
// field ("name: value", names lowercased), "body-bytes: N" and the body. /chunked streams a chunked
// body in pieces, /big?n=N sends N bytes with a Content-Length, /slow answers after 3 s,
// /nocontent answers 204.
class Origin {
 public:
  explicit Origin(asio::io_context& io) : io_(io), acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, accept_loop(), asio::detached);
  }
  unsigned short port() const { return port_; }
  int requests() const { return requests_.load(); }
  void stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      auto [ec, n] = co_await http::async_read(socket, buffer, parser, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      ++requests_;
      const auto& request = parser.get();
      const std::string target(request.target());
      if (target == "/chunked") {
        // Raw bytes, so the pieces really are separate chunks on the wire.
        const std::string pieces[] = {"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
                                      "6\r\nhello \r\n", "8\r\nchunked \r\n", "5\r\nworld\r\n", "0\r\n\r\n"};
        for (const auto& piece : pieces) {
          auto [wec, written] = co_await asio::async_write(socket, asio::buffer(piece), asio::as_tuple(asio::use_awaitable));
          if (wec) co_return;
          asio::steady_timer pause(io_, 10ms);
          co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        continue;
      }
      if (target == "/slow") {
        asio::steady_timer pause(io_, 3s);
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      http::response<http::string_body> response;
      response.version(11);
      response.keep_alive(request.keep_alive());
      response.set(http::field::content_type, "text/plain");
      response.set("X-Origin", "yes");
      if (target == "/nocontent") {
        response.result(http::status::no_content);
      } else if (target.starts_with("/big?n=")) {
        response.result(http::status::ok);
        response.body() = std::string(std::stoul(target.substr(7)), 'x');
      } else {
        response.result(http::status::ok);
        std::string text = std::string(request.method_string()) + " " + target + "\n";
        for (const auto& field : request) {
          text += proto::lowercase_ascii(field.name_string()) + ": " + std::string(field.value()) + "\n";
        }
        text += "body-bytes: " + std::to_string(request.body().size()) + "\n";
        text += request.body();
        response.body() = std::move(text);
      }
      response.prepare_payload();
      auto [wec, written] = co_await http::async_write(socket, response, asio::as_tuple(asio::use_awaitable));
      if (wec || !request.keep_alive()) co_return;
    }
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<int> requests_{0};
};

// ------------------------------------------------------------------------- the TLS front end

// Accepts TLS on 127.0.0.1 and runs serve_plaintext on each connection, as the agent does for a
// passthrough tunnel after its TCP bridge is up.
class PlaintextFront {
 public:
  PlaintextFront(asio::io_context& io, SSL_CTX* tls, proto::ForwardTarget target, PlaintextServerSettings settings)
      : io_(io),
        tls_(tls),
        acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        settings_(std::move(settings)),
        logger_(make_logger("plaintext-test", "warn")),
        forwarder_(io.get_executor(), std::move(target), logger_) {
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, accept_loop(), asio::detached);
  }
  unsigned short port() const { return port_; }
  int connections() const { return connections_.load(); }
  int active() const { return active_.load(); }
  void stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      ++active_;
      asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    TlsSocket stream(std::move(socket), tls_);
    const auto ec = co_await stream.handshake();
    if (!ec) {
      ++connections_;
      const std::string alpn(stream.alpn());
      co_await serve_plaintext(stream, alpn, settings_, forwarder_, logger_);
    }
    stream.close();
    --active_;
  }

  asio::io_context& io_;
  SSL_CTX* tls_;
  tcp::acceptor acceptor_;
  PlaintextServerSettings settings_;
  Logger logger_;
  HttpForwarder forwarder_;
  unsigned short port_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<int> active_{0};
};

// ------------------------------------------------------------------------------------ curl

struct CurlResult {
  int exit_code = -1;
  std::string out;
};

CurlResult run(const std::string& command) {
  CurlResult result;
  // INKWIRE_TEST_CURL_STDERR=1 shows curl's complaints (add -v to a command to see the exchange).
  const bool show_stderr = std::getenv("INKWIRE_TEST_CURL_STDERR") != nullptr;
  FILE* pipe = ::popen((command + (show_stderr ? "" : " 2>/dev/null")).c_str(), "r");
  if (!pipe) return result;
  char buffer[8192];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.out.append(buffer, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// ------------------------------------------------------------------------ WebSocket peers

const std::filesystem::path kTestDir = std::filesystem::path(__FILE__).parent_path();

// tests/e2e/ws_origin.js on a free 127.0.0.1 port, as a child process (Debian's node-ws).
class WsOrigin {
 public:
  WsOrigin() {
    {
      asio::io_context io;
      tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
      port_ = probe.local_endpoint().port();
    }
    int out[2];
    if (::pipe(out) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    posix_spawn_file_actions_addclose(&actions, out[1]);
    const std::string script = (kTestDir / "../../e2e/ws_origin.js").lexically_normal().string();
    const std::string port = std::to_string(port_);
    char* argv[] = {const_cast<char*>("node"), const_cast<char*>(script.c_str()), const_cast<char*>(port.c_str()),
                    nullptr};
    if (::posix_spawnp(&pid_, "node", &actions, nullptr, argv, environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    // Ready once it says it listens; bounded.
    std::string said;
    pollfd pfd{out[0], POLLIN, 0};
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (pid_ > 0 && said.find('\n') == std::string::npos && std::chrono::steady_clock::now() < until) {
      if (::poll(&pfd, 1, 200) <= 0) continue;
      char buffer[256];
      const ssize_t n = ::read(out[0], buffer, sizeof buffer);
      if (n <= 0) break;
      said.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    ready_ = said.find("listening") != std::string::npos;
  }
  ~WsOrigin() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  WsOrigin(const WsOrigin&) = delete;
  WsOrigin& operator=(const WsOrigin&) = delete;
  bool ready() const { return ready_; }
  unsigned short port() const { return port_; }

 private:
  unsigned short port_ = 0;
  pid_t pid_ = -1;
  bool ready_ = false;
};

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// ------------------------------------------------------------------ an in-test HTTP/2 client

// What curl cannot send: an RFC 8441 extended CONNECT, or nothing at all on an idle connection.
struct H2Probe {
  std::string method = "GET";
  std::string path = "/";
  std::string protocol;  // :protocol, for an extended CONNECT
  bool send_request = true;
};
struct H2Answer {
  bool connected = false;
  int status = 0;
  std::string body;
  bool stream_closed = false;
  bool goaway = false;
  bool transport_closed = false;
};

asio::awaitable<H2Answer> h2_probe(SSL_CTX* client_tls, unsigned short port, const H2Probe& probe) {
  H2Answer answer;
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  auto [cec] = co_await socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                             asio::as_tuple(asio::use_awaitable));
  if (cec) co_return answer;
  TlsSocket::Client client;
  client.server_name = "pt.test";
  TlsSocket tls(std::move(socket), client_tls, client);
  const auto hec = co_await tls.handshake();
  if (hec) co_return answer;
  answer.connected = true;
  auto created = proto::H2Session::create(proto::H2Session::Role::client);
  if (!created) co_return answer;
  proto::H2Session& h2 = **created;
  std::optional<std::int32_t> id;
  bool settings_seen = false;
  std::vector<std::uint8_t> buffer(16384);
  std::string out;
  for (;;) {
    // Submitted once the server's SETTINGS are in (:protocol needs its ENABLE_CONNECT_PROTOCOL).
    if (probe.send_request && settings_seen && !id) {
      const std::vector<proto::H2Header> headers = {{"sec-websocket-version", "13"}};
      std::optional<std::string> protocol;
      if (!probe.protocol.empty()) protocol = probe.protocol;
      auto submitted = h2.submit_request(probe.method, "https", "pt.test", probe.path, headers, true, protocol);
      if (!submitted) co_return answer;
      id = *submitted;
    }
    out.clear();
    if (h2.want_write() && !h2.produce(out)) co_return answer;
    if (!out.empty()) {
      const auto wec = co_await tls.write_all(out);
      if (wec) co_return answer;
    }
    if (answer.stream_closed || answer.goaway) break;
    auto [ec, n] = co_await tls.read_some(buffer);
    if (ec) {
      answer.transport_closed = true;
      break;
    }
    if (!h2.receive(std::span(buffer.data(), n))) break;
    while (auto event = h2.next_event()) {
      if (std::holds_alternative<proto::H2SettingsReceived>(*event)) settings_seen = true;
      if (auto* head = std::get_if<proto::H2ResponseHeaders>(&*event)) answer.status = head->status;
      if (auto* data = std::get_if<proto::H2Data>(&*event)) {
        answer.body.append(data->bytes.begin(), data->bytes.end());
        (void)h2.consume(data->stream_id, data->bytes.size());
      }
      if (std::holds_alternative<proto::H2StreamClosed>(*event)) answer.stream_closed = true;
      if (std::holds_alternative<proto::H2GoAwayReceived>(*event)) answer.goaway = true;
    }
  }
  tls.close();
  co_return answer;
}

class PlaintextServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { std::signal(SIGPIPE, SIG_IGN); }

  void SetUp() override {
    std::string dir_template = (std::filesystem::temp_directory_path() / "inkwire-plaintext-XXXXXX").string();
    ASSERT_NE(::mkdtemp(dir_template.data()), nullptr);
    dir_ = dir_template;
    write_self_signed(dir_ / "cert.pem", dir_ / "key.pem");
    TlsServerOptions options;
    options.cert_chain_file = (dir_ / "cert.pem").string();
    options.key_file = (dir_ / "key.pem").string();
    options.alpn = {"h2", "http/1.1"};
    auto tls = make_tls_server_context(options);
    ASSERT_TRUE(tls) << tls.error();
    tls_ = std::move(*tls);
    origin_ = std::make_unique<Origin>(io_);
    front_ = start_front(origin_->port());
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    asio::post(io_, [this] {
      for (auto& front : fronts_) front->stop();
      origin_->stop();
    });
    // curl has exited, so every connection is ending; give them a bounded moment.
    for (int i = 0; i < 100; ++i) {
      bool busy = false;
      for (auto& front : fronts_) busy = busy || front->active() > 0;
      if (!busy) break;
      std::this_thread::sleep_for(50ms);
    }
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    fronts_.clear();
    origin_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  PlaintextFront* start_front(unsigned short origin_port, std::chrono::seconds idle_timeout = 10s) {
    auto target = proto::parse_forward_target("http://127.0.0.1:" + std::to_string(origin_port), false);
    EXPECT_TRUE(target);
    PlaintextServerSettings settings;
    settings.public_host = "public.example";
    settings.max_inbound_body_bytes = kInboundCap;
    settings.max_outbound_body_bytes = kOutboundCap;
    settings.response_deadline = 1500ms;
    settings.idle_timeout = idle_timeout;
    fronts_.push_back(std::make_unique<PlaintextFront>(io_, tls_.get(), *target, settings));
    return fronts_.back().get();
  }

  // Starts another front on the io thread (the test thread must not touch io objects meanwhile).
  PlaintextFront* start_front_now(unsigned short origin_port, std::chrono::seconds idle_timeout) {
    std::promise<PlaintextFront*> started;
    asio::post(io_, [&] { started.set_value(start_front(origin_port, idle_timeout)); });
    auto future = started.get_future();
    if (future.wait_for(5s) != std::future_status::ready) return nullptr;
    return future.get();
  }

  // Runs an HTTP/2 probe against `port` on the io thread, bounded in time.
  H2Answer probe_h2(unsigned short port, const H2Probe& probe, std::chrono::seconds bound = 10s) {
    auto client_tls = make_tls_client_context((dir_ / "cert.pem").string(), {"h2"});
    EXPECT_TRUE(client_tls);
    if (!client_tls) return {};
    SSL_CTX* ctx = client_tls->get();
    auto future = asio::co_spawn(io_, [ctx, port, &probe] { return h2_probe(ctx, port, probe); }, asio::use_future);
    if (future.wait_for(bound) != std::future_status::ready) {
      ADD_FAILURE() << "the HTTP/2 probe did not finish in time";
      return {};
    }
    return future.get();
  }

  std::string url(std::string_view path, unsigned short port = 0) const {
    return "https://" + std::string(kHost) + ":" + std::to_string(port ? port : front_->port()) + std::string(path);
  }

  // curl with our CA, pt.test pinned to 127.0.0.1, bounded in time; `-w` output comes last.
  std::string curl(std::string_view version, unsigned short port = 0) const {
    const unsigned short p = port ? port : front_->port();
    return "curl -sS --max-time 20 " + std::string(version) + " --cacert " + (dir_ / "cert.pem").string() +
           " --resolve " + std::string(kHost) + ":" + std::to_string(p) + ":127.0.0.1";
  }

  std::string body_file(std::size_t size, const std::string& name) const {
    const auto path = dir_ / name;
    std::string bytes(size, '\0');
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>('a' + i % 26);
    std::ofstream(path, std::ios::binary) << bytes;
    return path.string();
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::thread thread_;
  std::filesystem::path dir_;
  SslCtxPtr tls_;
  std::unique_ptr<Origin> origin_;
  std::vector<std::unique_ptr<PlaintextFront>> fronts_;
  PlaintextFront* front_ = nullptr;
};

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// The origin's view of a forwarded request: §6.3's injection, §6.5's missing client address.
void expect_forwarded_headers(const std::string& echo, unsigned short origin_port) {
  EXPECT_TRUE(contains(echo, "host: 127.0.0.1:" + std::to_string(origin_port) + "\n")) << echo;
  EXPECT_TRUE(contains(echo, "x-forwarded-host: public.example\n")) << echo;
  EXPECT_TRUE(contains(echo, "x-forwarded-proto: https\n")) << echo;
  EXPECT_FALSE(contains(echo, "x-forwarded-for")) << echo;
  EXPECT_FALSE(contains(echo, "forwarded: ")) << echo;
  EXPECT_FALSE(contains(echo, "transfer-encoding")) << echo;
}

// ---------------------------------------------------------------------------------- HTTP/1.1

TEST_F(PlaintextServerTest, Http1GetIsForwardedWithTheInjectedHeaders) {
  const auto r = run(curl("--http1.1") + " -H 'X-Custom: hi' -H 'X-Forwarded-For: 6.6.6.6' -H 'Forwarded: for=6.6.6.6'" +
                     " -w '\\n%{http_code} %{http_version}' '" + url("/echo?x=1&y=2") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(r.out.starts_with("GET /echo?x=1&y=2\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "x-custom: hi\n")) << r.out;
  expect_forwarded_headers(r.out, origin_->port());
  EXPECT_TRUE(r.out.ends_with("\n200 1.1")) << r.out;
}

TEST_F(PlaintextServerTest, Http1PostBodies) {
  const std::string file = body_file(300 * 1024, "body.bin");
  // Content-Length, with and without Expect: 100-continue.
  for (const std::string expect : {"-H 'Expect:'", "-H 'Expect: 100-continue'"}) {
    const auto r = run(curl("--http1.1") + " " + expect + " --data-binary @" + file + " -w '\\n%{http_code}' " + url("/echo"));
    ASSERT_EQ(r.exit_code, 0) << r.out.substr(0, 500);
    EXPECT_TRUE(r.out.starts_with("POST /echo\n")) << r.out.substr(0, 500);
    EXPECT_TRUE(contains(r.out, "content-length: 307200\n")) << r.out.substr(0, 500);
    EXPECT_TRUE(contains(r.out, "body-bytes: 307200\n"));
    EXPECT_FALSE(contains(r.out, "expect:"));
    EXPECT_TRUE(r.out.ends_with("\n200"));
  }
  // Chunked: the origin gets a Content-Length body, no Transfer-Encoding.
  const auto r = run(curl("--http1.1") + " -H 'Transfer-Encoding: chunked' --data-binary @" + file +
                     " -w '\\n%{http_code}' " + url("/echo"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.out, "content-length: 307200\n")) << r.out.substr(0, 500);
  EXPECT_TRUE(contains(r.out, "body-bytes: 307200\nabcdefghijklmnopqrstuvwxyzabc"));
  expect_forwarded_headers(r.out.substr(0, 1000), origin_->port());
}

TEST_F(PlaintextServerTest, Http1BodyOverTheCapIs413) {
  const std::string file = body_file(kInboundCap + 1, "big.bin");
  const int before = origin_->requests();
  for (const std::string framing : {"-H 'Expect:'", "-H 'Expect: 100-continue'", "-H 'Transfer-Encoding: chunked'"}) {
    const auto r = run(curl("--http1.1") + " " + framing + " --data-binary @" + file + " -o /dev/null -w '%{http_code}' " +
                       url("/echo"));
    EXPECT_EQ(r.out, "413") << framing << " exit " << r.exit_code;
  }
  EXPECT_EQ(origin_->requests(), before);  // nothing reached the origin
}

TEST_F(PlaintextServerTest, Http1KeepAliveServesTwoRequestsOnOneConnection) {
  const auto r = run(curl("--http1.1") + " -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\\n' " +
                     url("/echo") + " " + url("/chunked"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "200 1\n200 0\n");
  EXPECT_EQ(front_->connections(), 1);
  EXPECT_EQ(origin_->requests(), 2);
}

TEST_F(PlaintextServerTest, Http1StreamsAChunkedUpstreamResponse) {
  const auto r = run(curl("--http1.1") + " -D - " + url("/chunked"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.out, "transfer-encoding: chunked\r\n")) << r.out;
  EXPECT_TRUE(r.out.ends_with("\r\n\r\nhello chunked world")) << r.out;
}

TEST_F(PlaintextServerTest, Http1PathCheckIs400) {
  for (const std::string path : {"/a/%2e%2e/b", "/a%2Fb", "/a/%252e%252e/b"}) {
    const auto r = run(curl("--http1.1") + " --path-as-is -o /dev/null -w '%{http_code}' " + url(path));
    EXPECT_EQ(r.out, "400") << path;
  }
  EXPECT_EQ(origin_->requests(), 0);
}

TEST_F(PlaintextServerTest, Http1HeadAndNoContent) {
  auto r = run(curl("--http1.1") + " -I -w '%{http_code}' " + url("/echo"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.out.starts_with("HTTP/1.1 200 OK\r\n")) << r.out;
  EXPECT_TRUE(r.out.ends_with("\r\n\r\n200")) << r.out;
  r = run(curl("--http1.1") + " -w '%{http_code} %{size_download}' " + url("/nocontent"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "204 0");
}

TEST_F(PlaintextServerTest, Http1WebSocketUpgradeToANonWebSocketUpstream) {
  // The Beast origin answers the upgrade with a plain 200: relayed as the response, and the echo
  // shows the upstream handshake (our own key, §6.4's injection without X-Forwarded-For).
  const std::string client_key = "dGhlIHNhbXBsZSBub25jZQ==";
  auto r = run(curl("--http1.1") +
               " -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13'"
               " -H 'Sec-WebSocket-Key: " + client_key + "' -H 'Sec-WebSocket-Protocol: chat.v1' -H 'X-Custom: hi'"
               " -H 'X-Forwarded-For: 6.6.6.6' -H 'Sec-WebSocket-Extensions: permessage-deflate'"
               " -w '\\n%{http_code}' '" + url("/ws?x=1") + "'");
  EXPECT_TRUE(r.out.starts_with("GET /ws?x=1\n")) << r.out;
  EXPECT_TRUE(r.out.ends_with("\n200")) << r.out;
  EXPECT_TRUE(contains(r.out, "upgrade: websocket\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "connection: Upgrade\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "sec-websocket-version: 13\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "sec-websocket-key: ")) << r.out;
  EXPECT_FALSE(contains(r.out, client_key)) << r.out;
  EXPECT_TRUE(contains(r.out, "sec-websocket-protocol: chat.v1\n")) << r.out;
  EXPECT_FALSE(contains(r.out, "sec-websocket-extensions")) << r.out;
  EXPECT_TRUE(contains(r.out, "x-custom: hi\n")) << r.out;
  expect_forwarded_headers(r.out, origin_->port());
  EXPECT_EQ(origin_->requests(), 1);
  // A bad handshake from the client is refused here; a slow upstream is 504 at the deadline.
  r = run(curl("--http1.1") + " -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13'" +
          " -H 'Sec-WebSocket-Key: short' -o /dev/null -w '%{http_code}' " + url("/ws"));
  EXPECT_EQ(r.out, "400");
  EXPECT_EQ(origin_->requests(), 1);
  r = run(curl("--http1.1") + " -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13'" +
          " -H 'Sec-WebSocket-Key: " + client_key + "' -o /dev/null -w '%{http_code}' " + url("/slow"));
  EXPECT_EQ(r.out, "504");
}

TEST_F(PlaintextServerTest, Http1UpstreamFailures) {
  // Slow origin: 504 at the response deadline, and the connection stays usable.
  auto r = run(curl("--http1.1") + " -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\\n' " + url("/slow") +
               " " + url("/echo"));
  EXPECT_EQ(r.out, "504 1\n200 0\n");
  // A response announced over the outbound cap: 502.
  r = run(curl("--http1.1") + " -o /dev/null -w '%{http_code}' " + url("/big?n=" + std::to_string(kOutboundCap + 1)));
  EXPECT_EQ(r.out, "502");
  r = run(curl("--http1.1") + " -o /dev/null -w '%{http_code} %{size_download}' " + url("/big?n=100000"));
  EXPECT_EQ(r.out, "200 100000");
  // No origin at all: 502.
  unsigned short dead_port = 0;
  {
    tcp::acceptor probe(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    dead_port = probe.local_endpoint().port();
  }
  PlaintextFront* dead = start_front_now(dead_port, 10s);
  ASSERT_NE(dead, nullptr);
  r = run(curl("--http1.1", dead->port()) + " -o /dev/null -w '%{http_code}' " + url("/echo", dead->port()));
  EXPECT_EQ(r.out, "502");
}

// ------------------------------------------------------------------------------------ HTTP/2

TEST_F(PlaintextServerTest, Http2GetIsForwardedWithTheInjectedHeaders) {
  const auto r = run(curl("--http2") + " -H 'X-Custom: hi' -H 'X-Forwarded-For: 6.6.6.6'" +
                     " -w '\\n%{http_code} %{http_version}' '" + url("/echo?x=1") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(r.out.starts_with("GET /echo?x=1\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "x-custom: hi\n")) << r.out;
  EXPECT_FALSE(contains(r.out, ":authority")) << r.out;
  expect_forwarded_headers(r.out, origin_->port());
  EXPECT_TRUE(r.out.ends_with("\n200 2")) << r.out;
}

TEST_F(PlaintextServerTest, Http2PostBodies) {
  const std::string file = body_file(300 * 1024, "body.bin");
  auto r = run(curl("--http2") + " --data-binary @" + file + " -w '\\n%{http_code} %{http_version}' " + url("/echo"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.out.starts_with("POST /echo\n")) << r.out.substr(0, 500);
  EXPECT_TRUE(contains(r.out, "content-length: 307200\n"));
  EXPECT_TRUE(contains(r.out, "body-bytes: 307200\nabcdefghijklmnopqrstuvwxyzabc"));
  EXPECT_TRUE(r.out.ends_with("\n200 2"));
  // A body of unknown length (an upload from a pipe: no content-length on the h2 request).
  r = run("cat " + file + " | " + curl("--http2") + " -T - -w '\\n%{http_code}' " + url("/echo"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.out.starts_with("PUT /echo\n")) << r.out.substr(0, 500);
  EXPECT_TRUE(contains(r.out, "content-length: 307200\n"));
  EXPECT_TRUE(contains(r.out, "body-bytes: 307200\n"));
  EXPECT_TRUE(r.out.ends_with("\n200"));
}

TEST_F(PlaintextServerTest, Http2BodyOverTheCapResetsTheStream) {
  const std::string file = body_file(kInboundCap + 1, "big.bin");
  const int before = origin_->requests();
  // Announced length: 413 at once and RST_STREAM(NO_ERROR).
  auto r = run(curl("--http2") + " --data-binary @" + file + " -o /dev/null -w '%{http_code}' " + url("/echo"));
  EXPECT_EQ(r.out, "413") << "exit " << r.exit_code;
  // Unknown length: the cap is crossed mid-body.
  r = run("cat " + file + " | " + curl("--http2") + " -T - -o /dev/null -w '%{http_code}' " + url("/echo"));
  EXPECT_EQ(r.out, "413") << "exit " << r.exit_code;
  EXPECT_EQ(origin_->requests(), before);
}

TEST_F(PlaintextServerTest, Http2TwoRequestsShareOneConnection) {
  const auto r = run(curl("--http2") + " -o /dev/null -o /dev/null -w '%{http_code} %{num_connects} %{http_version}\\n' " +
                     url("/echo") + " " + url("/chunked"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "200 1 2\n200 0 2\n");
  EXPECT_EQ(front_->connections(), 1);
}

TEST_F(PlaintextServerTest, Http2StreamsResponsesAndChecksPaths) {
  auto r = run(curl("--http2") + " " + url("/chunked"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "hello chunked world");
  r = run(curl("--http2") + " -o /dev/null -w '%{http_code} %{size_download}' " + url("/big?n=3000000"));
  EXPECT_EQ(r.out, "200 3000000");
  r = run(curl("--http2") + " --path-as-is -o /dev/null -w '%{http_code}' " + url("/a/%2e%2e/b"));
  EXPECT_EQ(r.out, "400");
  r = run(curl("--http2") + " -o /dev/null -w '%{http_code}' " + url("/slow"));
  EXPECT_EQ(r.out, "504");
  r = run(curl("--http2") + " -w '%{http_code} %{size_download}' " + url("/nocontent"));
  EXPECT_EQ(r.out, "204 0");
}


TEST_F(PlaintextServerTest, Http2ExtendedConnectToANonWebSocketUpstreamIs502) {
  H2Probe probe;
  probe.method = "CONNECT";
  probe.protocol = "websocket";
  probe.path = "/chat";
  const H2Answer answer = probe_h2(front_->port(), probe);
  ASSERT_TRUE(answer.connected);
  // The Beast origin answers 200 without upgrading; relaying a 2xx would open the tunnel.
  EXPECT_EQ(answer.status, 502);
  EXPECT_TRUE(answer.stream_closed);
  EXPECT_EQ(origin_->requests(), 1);
  // The same client, a plain GET: answered by the origin.
  H2Probe get;
  get.path = "/echo";
  const H2Answer plain = probe_h2(front_->port(), get);
  EXPECT_EQ(plain.status, 200);
  EXPECT_TRUE(plain.body.starts_with("GET /echo\n")) << plain.body;
}

// ------------------------------------------------------------------- WebSocket to a ws origin

class PlaintextWebSocketTest : public PlaintextServerTest {
 protected:
  void SetUp() override {
    ::setenv("NODE_PATH", "/usr/share/nodejs", 1);
    ws_origin_ = std::make_unique<WsOrigin>();
    ASSERT_TRUE(ws_origin_->ready()) << "tests/e2e/ws_origin.js did not start (node and node-ws needed)";
    PlaintextServerTest::SetUp();
    ws_front_ = start_front_now(ws_origin_->port(), 10s);
    ASSERT_NE(ws_front_, nullptr);
  }
  void TearDown() override {
    PlaintextServerTest::TearDown();
    ws_origin_.reset();
  }

  std::string client(std::string_view mode, std::string_view path, std::string_view behaviour = "full") const {
    const std::string script = (kTestDir / "ws_passthrough_client.js").string();
    return run("node " + script + " " + std::string(mode) + " " + std::to_string(ws_front_->port()) + " " +
               std::string(kHost) + " " + (dir_ / "cert.pem").string() + " '" + std::string(path) + "' " +
               std::string(behaviour))
        .out;
  }

  // Every passthrough connection has ended and the process holds no more descriptors than before.
  void expect_all_released(std::size_t baseline) {
    std::size_t now = 0;
    for (int i = 0; i < 100; ++i) {
      now = open_fds();
      if (ws_front_->active() == 0 && now <= baseline) break;
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(ws_front_->active(), 0);
    EXPECT_LE(now, baseline);
  }

  std::unique_ptr<WsOrigin> ws_origin_;
  PlaintextFront* ws_front_ = nullptr;
};

void expect_full_session(const std::string& out) {
  EXPECT_TRUE(contains(out, "\"protocol\":\"chat.v1\"")) << out;
  // The origin saw the path and our X-Forwarded-Host.
  EXPECT_TRUE(contains(out, "\"seen\":{\"path\":\"/ws?x=1\",\"forwarded_host\":\"public.example\"}")) << out;
  EXPECT_TRUE(contains(out, "\"text\":\"hello passthrough\"")) << out;
  EXPECT_TRUE(contains(out, "\"binary_ok\":true,\"binary_len\":1048576")) << out;
  EXPECT_TRUE(contains(out, "\"close_code\":4001,\"close_reason\":\"bye\"")) << out;
  EXPECT_FALSE(contains(out, "\"error\"")) << out;
}

TEST_F(PlaintextWebSocketTest, Http1WebSocketIsSplicedToTheUpstream) {
  const std::size_t baseline = open_fds();
  std::string out = client("h1", "/ws?x=1");
  EXPECT_TRUE(contains(out, "\"status\":101")) << out;
  expect_full_session(out);
  out = client("h1", "/refuse/me");
  EXPECT_TRUE(contains(out, "\"status\":403")) << out;
  EXPECT_TRUE(contains(out, "\"body\":\"Forbidden\"")) << out;
  expect_all_released(baseline);
}

TEST_F(PlaintextWebSocketTest, Http2ExtendedConnectIsSplicedToTheUpstream) {
  const std::size_t baseline = open_fds();
  std::string out = client("h2", "/ws?x=1");
  EXPECT_TRUE(contains(out, "\"status\":200")) << out;
  EXPECT_TRUE(contains(out, "\"enable_connect_protocol\":true")) << out;
  expect_full_session(out);
  // The origin's FIN became END_STREAM: the stream ended cleanly, not by a reset.
  EXPECT_TRUE(contains(out, "\"stream_ended\":true,\"rst_code\":0")) << out;
  out = client("h2", "/refuse/me");
  EXPECT_TRUE(contains(out, "\"status\":403")) << out;
  expect_all_released(baseline);
}

TEST_F(PlaintextWebSocketTest, AVanishingClientReleasesTheUpstream) {
  const std::size_t baseline = open_fds();
  for (const std::string_view mode : {"h1", "h2"}) {
    const std::string out = client(mode, "/ws?x=1", "vanish");
    EXPECT_TRUE(contains(out, "\"seen\":{\"path\":\"/ws?x=1\"")) << mode << " " << out;
  }
  expect_all_released(baseline);
}

TEST_F(PlaintextWebSocketTest, AVanishingUpstreamEndsTheClientSession) {
  const std::size_t baseline = open_fds();
  auto held = std::async(std::launch::async, [this] { return client("h1", "/ws?x=1", "hold"); });
  // Once the session is up, the origin process goes away (its sockets close with it).
  for (int i = 0; i < 100 && ws_front_->active() == 0; ++i) std::this_thread::sleep_for(50ms);
  std::this_thread::sleep_for(500ms);
  ws_origin_.reset();
  ASSERT_EQ(held.wait_for(15s), std::future_status::ready);
  const std::string out = held.get();
  EXPECT_TRUE(contains(out, "\"opened\":true")) << out;
  EXPECT_TRUE(contains(out, "\"close_code\":1006")) << out;
  expect_all_released(baseline);
}

TEST_F(PlaintextWebSocketTest, ManySessionsAtOnceLeaveNothingBehind) {
  const std::size_t baseline = open_fds();
  std::vector<std::future<std::string>> runs;
  for (int i = 0; i < 6; ++i) {
    runs.push_back(std::async(std::launch::async, [this, i] { return client(i % 2 ? "h2" : "h1", "/ws?x=1"); }));
  }
  for (auto& r : runs) {
    ASSERT_EQ(r.wait_for(30s), std::future_status::ready);
    expect_full_session(r.get());
  }
  expect_all_released(baseline);
}

TEST_F(PlaintextServerTest, IdleConnectionsAreClosed) {
  PlaintextFront* front = start_front_now(origin_->port(), 1s);
  ASSERT_NE(front, nullptr);
  // HTTP/2: GOAWAY once no stream has been open for the idle timeout.
  H2Probe idle;
  idle.send_request = false;
  const auto started = std::chrono::steady_clock::now();
  const H2Answer answer = probe_h2(front->port(), idle);
  EXPECT_TRUE(answer.connected);
  EXPECT_TRUE(answer.goaway || answer.transport_closed);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  auto client_tls = make_tls_client_context((dir_ / "cert.pem").string(), {"http/1.1"});
  ASSERT_TRUE(client_tls);
  SSL_CTX* ctx = client_tls->get();
  const unsigned short port = front->port();
  // A bare TLS connection that never sends a request: the server ends it after ~1 s.
  auto closed_after = asio::co_spawn(
      io_,
      [ctx, port]() -> asio::awaitable<std::chrono::steady_clock::duration> {
        const auto begin = std::chrono::steady_clock::now();
        auto executor = co_await asio::this_coro::executor;
        tcp::socket socket(executor);
        auto [cec] = co_await socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                                   asio::as_tuple(asio::use_awaitable));
        if (cec) co_return std::chrono::steady_clock::duration::max();
        TlsSocket::Client client;
        client.server_name = "pt.test";
        TlsSocket tls(std::move(socket), ctx, client);
        const auto hec = co_await tls.handshake();
        if (hec) co_return std::chrono::steady_clock::duration::max();
        std::uint8_t byte = 0;
        (void)co_await tls.read_some(std::span(&byte, 1));  // EOF (or an error) when the server ends it
        tls.close();
        co_return std::chrono::steady_clock::now() - begin;
      },
      asio::use_future);
  ASSERT_EQ(closed_after.wait_for(10s), std::future_status::ready);
  const auto elapsed = closed_after.get();
  EXPECT_GE(elapsed, 900ms);
  EXPECT_LT(elapsed, 5s);
}

}  // namespace
}  // namespace inkwire::agent
