#include "edge/certificate_store.h"

#include <openssl/asn1.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include "relay/relay.h"

namespace inkwire::edge {

CertificateStore::CertificateStore(std::string cert_file, std::string key_file, EdgeMetrics& metrics, Logger logger)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)), metrics_(metrics), logger_(std::move(logger)) {}

CertificateStore::FileStamp CertificateStore::stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return FileStamp{static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                   static_cast<std::int64_t>(st.st_size)};
}

Expected<Unit, std::string> CertificateStore::load_now() {
  // Stamps first: a file replaced while we read it is then seen as changed at the next poll.
  const FileStamp cert_stamp = stamp(cert_file_);
  const FileStamp key_stamp = stamp(key_file_);
  auto edge = make_tls_server_context(TlsServerOptions{cert_file_, key_file_, {"h2", "http/1.1"}});
  if (!edge) return unexpected(edge.error());
  auto relay = relay::Relay::make_relay_tls_context(cert_file_, key_file_);
  if (!relay) return unexpected(relay.error());
  // Public clients do resume sessions (browsers reconnect often): keep OpenSSL's default cache
  // and tickets here, unlike the relay. Record buffers are still freed between reads.
  SSL_CTX_set_mode(edge->get(), SSL_MODE_RELEASE_BUFFERS);
  if (X509* leaf = SSL_CTX_get0_certificate(edge->get())) {
    const ASN1_TIME* not_after = X509_get0_notAfter(leaf);
    struct tm tm {};
    if (not_after && ASN1_TIME_to_tm(not_after, &tm) == 1) {
      metrics_.certificate_not_after.Set(static_cast<double>(timegm(&tm)));
    }
  }
  edge_ = std::move(*edge);
  cert_stamp_ = cert_stamp;
  key_stamp_ = key_stamp;
  if (on_relay_context) on_relay_context(std::move(*relay));
  return Unit{};
}

Expected<Unit, std::string> CertificateStore::load() {
  auto loaded = load_now();
  if (loaded) {
    metrics_.certificate_reloads_ok.Increment();
  } else {
    metrics_.certificate_reloads_failed.Increment();
  }
  return loaded;
}

bool CertificateStore::reload() {
  auto loaded = load_now();
  if (!loaded) {
    metrics_.certificate_reloads_failed.Increment();
    logger_->error("edge: certificate reload failed, keeping the previous certificate: {}", loaded.error());
    return false;
  }
  metrics_.certificate_reloads_ok.Increment();
  logger_->info("edge: certificate reloaded from {}", cert_file_);
  return true;
}

bool CertificateStore::reload_if_changed() {
  if (stamp(cert_file_) == cert_stamp_ && stamp(key_file_) == key_stamp_) return false;
  return reload();
}

}  // namespace inkwire::edge
