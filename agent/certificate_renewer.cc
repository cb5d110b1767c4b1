#include "agent/certificate_renewer.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/pki.h"
#include "agent/state_directory.h"
#include "agent/tcp_bridge.h"
#include "common/clock.h"

namespace inkwire::agent {

namespace asio = boost::asio;

struct CertificateRenewer::Outcome {
  bool renewed = false;
  std::string message;  // why it was (or could not be) renewed
  SslCtxPtr context;
};

CertificateRenewer::CertificateRenewer(asio::any_io_executor executor, ControlClient client,
                                       std::filesystem::path state_dir, std::string tunnel_id, std::string public_host,
                                       std::chrono::seconds interval, Logger logger)
    : executor_(executor),
      client_(std::move(client)),
      state_dir_(std::move(state_dir)),
      tunnel_id_(std::move(tunnel_id)),
      public_host_(std::move(public_host)),
      interval_(interval),
      logger_(std::move(logger)),
      timer_(executor) {}

CertificateRenewer::~CertificateRenewer() {
  if (worker_.joinable()) worker_.join();
}

void CertificateRenewer::stop() {
  stopped_ = true;
  timer_.cancel();
}

std::shared_ptr<CertificateRenewer::Outcome> CertificateRenewer::renew_if_needed(const ControlClient& client,
                                                                                  const std::filesystem::path& path,
                                                                                  const std::string& tunnel_id,
                                                                                  const std::string& public_host) {
  auto outcome = std::make_shared<Outcome>();
  auto dir = StateDirectory::open(path);
  if (!dir) {
    outcome->message = dir.error();
    return outcome;
  }
  auto key = dir->load_private_key();
  if (!key) {
    outcome->message = key.error();
    return outcome;
  }
  const SystemClock clock;
  const CertificateCheck check = dir->check_certificate(key->get(), clock.now());
  if (!check.needs_signing()) return outcome;
  auto csr = pki::make_csr_pem(key->get(), public_host);
  if (!csr) {
    outcome->message = "cannot build the CSR: " + csr.error();
    return outcome;
  }
  auto signed_cert = client.sign_csr(tunnel_id, *csr);
  if (!signed_cert) {
    outcome->message = "sign-csr failed: " + signed_cert.error().message();
    return outcome;
  }
  if (auto written = dir->write_cert_chain(signed_cert->cert_pem, signed_cert->chain_pem); !written) {
    outcome->message = written.error();
    return outcome;
  }
  auto context = make_passthrough_tls_context(dir->cert_chain_file().string(), dir->private_key_file().string());
  if (!context) {
    outcome->message = context.error();
    return outcome;
  }
  outcome->renewed = true;
  outcome->message = check.reason + "; new certificate " + signed_cert->cert_fingerprint_sha256 + ", valid until " +
                     signed_cert->cert_expires_at;
  outcome->context = std::move(*context);
  return outcome;
}

asio::awaitable<void> CertificateRenewer::run() {
  while (!stopped_) {
    timer_.expires_after(interval_);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopped_) break;
    if (worker_.joinable()) worker_.join();
    // The blocking check and sign-csr run on a thread; the timer is cancelled when they are done.
    std::shared_ptr<Outcome> outcome;
    bool done = false;
    worker_ = std::thread([this, &outcome, &done] {
      auto result = renew_if_needed(client_, state_dir_, tunnel_id_, public_host_);
      asio::post(executor_, [this, result, &outcome, &done] {
        outcome = result;
        done = true;
        timer_.cancel();
      });
    });
    timer_.expires_at(asio::steady_timer::time_point::max());
    while (!done) co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    worker_.join();
    if (outcome->renewed) {
      logger_->info("agent: passthrough certificate renewed ({})", outcome->message);
      if (on_renewed) on_renewed(std::move(outcome->context));
    } else if (!outcome->message.empty()) {
      logger_->warn("agent: the passthrough certificate could not be renewed: {}", outcome->message);
    }
  }
}

}  // namespace inkwire::agent
