#pragma once
// A TLS terminator in front of the in-process control plane (which serves plain HTTP only), so the
// agent's HTTPS path — verification, SNI, IP SANs — is tested against the real API. Certificates
// come from a throwaway installation CA. Test-only; header-only.
#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "controlplane/ca/certificate_authority.h"

namespace inkwire::testing {

// A CA in a temporary directory, and server certificates it issues, written to PEM files.
class TestCa {
 public:
  TestCa() {
    std::string templ = (std::filesystem::temp_directory_path() / "inkwire-agent-ca-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = templ;
    CaConfig config;
    config.dir = (dir_ / "ca").string();
    auto ca = controlplane::CertificateAuthority::open(config, clock_);
    if (!ca) throw std::runtime_error(ca.error());
    ca_ = std::move(*ca);
    write(ca_file(), ca_->ca_pem());
  }
  ~TestCa() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string ca_file() const { return (dir_ / "ca-bundle.pem").string(); }

  // Writes <label>.crt (leaf + CA) and <label>.key; returns their paths.
  std::pair<std::string, std::string> issue(const std::string& label, const std::vector<std::string>& dns,
                                            const std::vector<std::string>& ips) {
    auto pair = ca_->issue_server_certificate(dns, ips, 30);
    if (!pair) throw std::runtime_error(pair.error());
    const std::string cert = (dir_ / (label + ".crt")).string();
    const std::string key = (dir_ / (label + ".key")).string();
    write(cert, pair->cert_pem + ca_->ca_pem());
    write(key, pair->key_pem);
    return {cert, key};
  }

 private:
  static void write(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }
  SystemClock clock_;
  std::filesystem::path dir_;
  std::unique_ptr<controlplane::CertificateAuthority> ca_;
};

// Accepts TLS on 127.0.0.1 (port 0) and relays the plaintext to 127.0.0.1:backend_port. Records
// the SNI of each handshake ("" when the client sent none).
class TlsFront {
 public:
  TlsFront(unsigned short backend_port, const std::string& cert_file, const std::string& key_file)
      : backend_port_(backend_port), tls_(boost::asio::ssl::context::tls_server), acceptor_(io_) {
    tls_.use_certificate_chain_file(cert_file);
    tls_.use_private_key_file(key_file, boost::asio::ssl::context::pem);
    using boost::asio::ip::tcp;
    tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    boost::asio::co_spawn(io_, accept_loop(), boost::asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TlsFront() {
    io_.stop();
    thread_.join();
  }
  unsigned short port() const { return port_; }
  std::vector<std::string> server_names() {
    std::lock_guard lock(mu_);
    return names_;
  }

 private:
  using tcp = boost::asio::ip::tcp;

  boost::asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec) co_return;
      boost::asio::co_spawn(io_, serve(std::move(socket)), boost::asio::detached);
    }
  }

  template <typename From, typename To>
  static boost::asio::awaitable<void> pump(From& from, To& to) {
    char buffer[16384];
    for (;;) {
      auto [ec, n] = co_await from.async_read_some(boost::asio::buffer(buffer), boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec) co_return;
      auto [wec, written] =
          co_await boost::asio::async_write(to, boost::asio::buffer(buffer, n), boost::asio::as_tuple(boost::asio::use_awaitable));
      (void)written;
      if (wec) co_return;
    }
  }

  boost::asio::awaitable<void> serve(tcp::socket socket) {
    using namespace boost::asio::experimental::awaitable_operators;
    boost::asio::ssl::stream<tcp::socket> client(std::move(socket), tls_);
    auto [hec] = co_await client.async_handshake(boost::asio::ssl::stream_base::server,
                                                 boost::asio::as_tuple(boost::asio::use_awaitable));
    {
      const char* sni = SSL_get_servername(client.native_handle(), TLSEXT_NAMETYPE_host_name);
      std::lock_guard lock(mu_);
      names_.push_back(sni ? sni : "");
    }
    if (hec) co_return;
    tcp::socket backend(io_);
    auto [cec] = co_await backend.async_connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), backend_port_),
                                                boost::asio::as_tuple(boost::asio::use_awaitable));
    if (cec) co_return;
    // The API closes after each answer (the client asks for Connection: close): the first pump to
    // end ends the relay.
    co_await (pump(client, backend) || pump(backend, client));
    boost::system::error_code ignored;
    backend.close(ignored);
    client.lowest_layer().close(ignored);
  }

  unsigned short backend_port_;
  boost::asio::io_context io_;
  boost::asio::ssl::context tls_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> names_;
};

}  // namespace inkwire::testing
