// The edge's limits against raw sockets: connections per client address, the minimum request-body
// rate, and the certificate reload when its files change.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/integration/edge/edge_test_helpers.h"

namespace inkwire::testing {
namespace {

// A blocking loopback TCP connection with bounded waits.
class RawConnection {
 public:
  explicit RawConnection(unsigned short port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawConnection() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool send(std::string_view bytes) { return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()); }
  // True when the peer closed (EOF or reset) within `timeout`; any bytes before that are skipped.
  bool closed_within(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buffer[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 1))) <= 0) continue;
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return true;
    }
    return false;
  }

 private:
  int fd_;
  bool connected_ = false;
};

class EdgeLimitsTest : public EdgeTest {
  void adjust(Config& c) override {
    c.edge.max_connections_per_ip = 2;
    c.edge.serve_plain_http = true;
    c.edge.min_body_bytes_per_second = 1000;
    c.edge.body_rate_window_seconds = 1;
    c.edge.cert_check_seconds = 1;
  }
};

TEST_F(EdgeLimitsTest, ConnectionsPerClientAddressAreCapped) {
  RawConnection first(relay().https_port());
  RawConnection second(relay().https_port());
  ASSERT_TRUE(first.connected() && second.connected());
  ASSERT_TRUE(wait_for([&] { return relay().metric("inkwire_edge_connections_total", {{"outcome", "accepted"}}) >= 2; },
                       5s));
  RawConnection third(relay().https_port());
  EXPECT_TRUE(third.closed_within(3s));
  EXPECT_EQ(relay().metric("inkwire_edge_connections_total", {{"listener", "https"}, {"outcome", "rejected_per_ip"}}), 1);
  // The first two are still served (they are only waiting for a ClientHello).
  EXPECT_FALSE(first.closed_within(200ms));
}

TEST_F(EdgeLimitsTest, SlowRequestBodyIsCut) {
  auto session = relay().connect_and_park(web(), 1);
  RawConnection client(relay().http_port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.send("POST /upload HTTP/1.1\r\nHost: web." + zone() +
                          "\r\nContent-Length: 100000\r\n\r\n0123456789"));
  // 10 bytes in the first second, then nothing: under 1000 B/s over a 1 s window.
  EXPECT_TRUE(client.closed_within(5s));
  EXPECT_TRUE(wait_for([&] { return relay().metric("inkwire_edge_timeouts_total", {{"kind", "body_rate"}}) == 1; }, 2s));
}

TEST_F(EdgeLimitsTest, CertificateFilesAreReloadedWhenTheyChange) {
  const double before = relay().metric("inkwire_edge_certificate_reloads_total", {{"result", "ok"}});
  // Rewrite the chain with the same content: a new modification time is a change.
  const std::string path = relay().config().tls.cert_file;
  std::string pem;
  {
    std::ifstream in(path, std::ios::binary);
    pem.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::this_thread::sleep_for(20ms);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << pem;
  }
  EXPECT_TRUE(wait_for(
      [&] { return relay().metric("inkwire_edge_certificate_reloads_total", {{"result", "ok"}}) >= before + 1; }, 5s));
  // A broken file is refused and the old certificate stays in use.
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << "not a certificate\n";
  }
  EXPECT_TRUE(wait_for(
      [&] { return relay().metric("inkwire_edge_certificate_reloads_total", {{"result", "failed"}}) >= 1; }, 5s));
  const auto result = run_command(curl("nope", "/"));
  EXPECT_THAT(result.output, ::testing::HasSubstr("x-inkwire-error: unknown-tunnel"));
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << pem;
  }
}

// An HTTP/2 upload over edge.max_request_body_bytes is answered 413 while the client is still
// sending. The answer must reach the client whole before the stream is reset (RST_STREAM with
// NO_ERROR, RFC 9113 §8.1): a reset submitted with the response made nghttp2 drop the response,
// and curl saw a bare reset (status 000, exit 92) instead of the 413 page. curl 7.88 also fails
// (exit 92) when the response and the reset arrive in one read, so the reset goes in a later write.
class EdgeBodyCapTest : public EdgeTest {
  void adjust(Config& c) override { c.edge.max_request_body_bytes = 64 * 1024; }

 protected:
  // 1 MiB from /dev/zero, more than the cap and than the 256 KiB stream window, so the client is
  // mid-upload when the answer comes. Prints "<status> exit=<curl's exit code>".
  std::string upload(const std::string& curl_options) const {
    const std::string command = curl("web", "/upload", "--http2 -o /dev/null -w '%{http_code}' " + curl_options);
    return "head -c 1048576 /dev/zero | " + command + "; echo \" exit=$?\"";
  }
};

TEST_F(EdgeBodyCapTest, Http2UploadOverTheAnnouncedCapGets413) {
  // --data-binary @- reads stdin first and announces content-length: refused before dispatch.
  const auto result = run_command(upload("--data-binary @-"));
  EXPECT_THAT(result.output, ::testing::HasSubstr("413 exit=0"));
}

TEST_F(EdgeBodyCapTest, Http2StreamedUploadOverTheCapGets413) {
  // -T - streams stdin with no content-length: the cap is crossed mid-body, after dispatch.
  auto session = relay().connect_and_park(web(), 1);
  const auto result = run_command(upload("-X POST -T -"));
  EXPECT_THAT(result.output, ::testing::HasSubstr("413 exit=0"));
}

}  // namespace
}  // namespace inkwire::testing
