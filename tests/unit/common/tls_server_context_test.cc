#include "common/tls_server_context.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "controlplane/ca/certificate_authority.h"

using namespace inkwire;

namespace {

class Clock0 final : public Clock {
 public:
  Timestamp now() const override {
    return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  }
};

// A CA and a server certificate in a temp dir, made with the project's own CA.
class TlsFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("inkwire-tls-test-" + std::to_string(std::random_device{}()));
    CaConfig config;
    config.dir = (dir_ / "ca").string();
    auto ca = controlplane::CertificateAuthority::open(config, clock_);
    ASSERT_TRUE(ca.has_value()) << ca.error();
    auto issued = (*ca)->issue_server_certificate({"relay.example.test"}, {"127.0.0.1"}, 30);
    ASSERT_TRUE(issued.has_value()) << issued.error();
    write("server.pem", issued->cert_pem + (*ca)->ca_pem());
    write("server.key", issued->key_pem);
    ca_pem_ = (*ca)->ca_pem();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Runs a client handshake against `server_ctx` through an in-memory BIO pair; returns the ALPN the
  // client saw ("" for none) or nullopt when the handshake failed.
  std::optional<std::string> handshake(SSL_CTX* server_ctx, const std::string& client_alpn, int client_max_version = 0) {
    SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
    if (client_max_version) SSL_CTX_set_max_proto_version(cctx, client_max_version);
    BIO* ca_bio = BIO_new_mem_buf(ca_pem_.data(), static_cast<int>(ca_pem_.size()));
    X509* ca = PEM_read_bio_X509(ca_bio, nullptr, nullptr, nullptr);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), ca);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, nullptr);
    SSL* client = SSL_new(cctx);
    SSL_set_tlsext_host_name(client, "relay.example.test");
    SSL_set1_host(client, "relay.example.test");
    if (!client_alpn.empty()) {
      auto wire = alpn_wire_format({client_alpn});
      SSL_set_alpn_protos(client, reinterpret_cast<const unsigned char*>(wire.data()), static_cast<unsigned>(wire.size()));
    }
    SSL* server = SSL_new(server_ctx);
    BIO *cb = nullptr, *sb = nullptr;
    BIO_new_bio_pair(&cb, 0, &sb, 0);
    SSL_set_bio(client, cb, cb);
    SSL_set_bio(server, sb, sb);
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    bool ok = false;
    for (int i = 0; i < 100; ++i) {
      const int c = SSL_do_handshake(client);
      const int s = SSL_do_handshake(server);
      if (c == 1 && s == 1) {
        ok = true;
        break;
      }
      const int ce = SSL_get_error(client, c), se = SSL_get_error(server, s);
      const bool c_wait = c == 1 || ce == SSL_ERROR_WANT_READ || ce == SSL_ERROR_WANT_WRITE;
      const bool s_wait = s == 1 || se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE;
      if (!c_wait || !s_wait) break;
    }
    std::optional<std::string> result;
    if (ok) {
      const unsigned char* proto = nullptr;
      unsigned len = 0;
      SSL_get0_alpn_selected(client, &proto, &len);
      result = std::string(reinterpret_cast<const char*>(proto), len);
    }
    SSL_free(client);
    SSL_free(server);
    X509_free(ca);
    BIO_free(ca_bio);
    SSL_CTX_free(cctx);
    return result;
  }

  Clock0 clock_;
  std::filesystem::path dir_;
  std::string ca_pem_;
};

}  // namespace

TEST_F(TlsFixture, RelayContextSelectsH2) {
  auto ctx = make_tls_server_context({path("server.pem"), path("server.key"), {"h2"}});
  ASSERT_TRUE(ctx.has_value()) << ctx.error();
  EXPECT_EQ(handshake(ctx->get(), "h2"), std::optional<std::string>("h2"));
}

TEST_F(TlsFixture, ServerPreferenceWinsAndNoOverlapIsRefused) {
  auto edge = make_tls_server_context({path("server.pem"), path("server.key"), {"h2", "http/1.1"}});
  ASSERT_TRUE(edge.has_value());
  EXPECT_EQ(handshake(edge->get(), "http/1.1"), std::optional<std::string>("http/1.1"));
  auto relay = make_tls_server_context({path("server.pem"), path("server.key"), {"h2"}});
  ASSERT_TRUE(relay.has_value());
  EXPECT_EQ(handshake(relay->get(), "http/1.1"), std::nullopt);  // no_application_protocol
  EXPECT_EQ(handshake(relay->get(), ""), std::optional<std::string>(""));  // no ALPN offered at all
}

TEST_F(TlsFixture, Tls11IsRefused) {
  auto ctx = make_tls_server_context({path("server.pem"), path("server.key"), {"h2"}});
  ASSERT_TRUE(ctx.has_value());
  EXPECT_EQ(handshake(ctx->get(), "h2", TLS1_1_VERSION), std::nullopt);
}

TEST_F(TlsFixture, BadFilesAreOneLineErrors) {
  auto missing = make_tls_server_context({path("nope.pem"), path("server.key"), {"h2"}});
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().find("nope.pem"), std::string::npos);
  EXPECT_EQ(missing.error().find('\n'), std::string::npos);
  // A key that is not the certificate's.
  CaConfig other;
  other.dir = path("other-ca");
  auto ca2 = controlplane::CertificateAuthority::open(other, clock_);
  ASSERT_TRUE(ca2.has_value());
  write("other.key", (*ca2)->issue_server_certificate({"x.test"}, {}, 1)->key_pem);
  auto mismatch = make_tls_server_context({path("server.pem"), path("other.key"), {"h2"}});
  ASSERT_FALSE(mismatch.has_value());
  // OpenSSL already refuses the pair when loading the key ("key values mismatch").
  EXPECT_NE(mismatch.error().find("other.key"), std::string::npos);
  EXPECT_FALSE(make_tls_server_context({path("server.pem"), path("server.key"), {""}}).has_value());
}
