#include "controlplane/ca/certificate_authority.h"

#include <chrono>

#include "common/encoding.h"
#include "common/secret_hash.h"
#include "controlplane/ca/ca_files.h"
#include "controlplane/ca/csr_check.h"
#include "common/openssl_ptr.h"
#include "controlplane/ca/x509_util.h"

namespace inkwire::controlplane {
namespace {

using namespace std::chrono_literals;

// Clocks of the machines that verify our certificates may lag ours a little.
constexpr auto kClockSkew = 5min;
// Leaves are short-lived by design (§2.5.9 recommends 90 days); ten years is a configuration error.
constexpr int kMaxLeafDays = 3650;

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Validity for a certificate issued at `now`, never past the CA's own notAfter: a leaf cannot be
// trusted longer than its issuer, and an honest notAfter lets the SDK renew in time.
Expected<std::pair<Timestamp, Timestamp>, std::string> leaf_validity(X509* ca, Timestamp now, int days) {
  if (days < 1 || days > kMaxLeafDays) {
    return inkwire::unexpected("certificate lifetime must be 1 to " + std::to_string(kMaxLeafDays) + " days");
  }
  const Timestamp start = x509::floor_to_seconds(now);
  Timestamp not_after = start + std::chrono::days(days);
  auto ca_not_after = x509::asn1_time_to_timestamp(X509_get0_notAfter(ca));
  if (!ca_not_after) return inkwire::unexpected(std::string("the CA certificate has an unreadable notAfter"));
  if (*ca_not_after <= start) return inkwire::unexpected(std::string("the CA certificate has expired"));
  if (*ca_not_after < not_after) not_after = *ca_not_after;
  return std::pair{start - kClockSkew, not_after};
}

}  // namespace

CertificateAuthority::CertificateAuthority(EVP_PKEY* key, X509* cert, std::string ca_pem, const Clock& clock)
    : key_(key), cert_(cert), ca_pem_(std::move(ca_pem)), clock_(clock) {}

CertificateAuthority::~CertificateAuthority() {
  EVP_PKEY_free(key_);
  X509_free(cert_);
}

Expected<std::unique_ptr<CertificateAuthority>, std::string> CertificateAuthority::open(const CaConfig& config,
                                                                                        const Clock& clock) {
  const bool has_cert = !config.cert_file.empty();
  const bool has_key = !config.key_file.empty();
  if (has_cert != has_key) {
    return inkwire::unexpected(std::string("ca.cert_file and ca.key_file must be given together (only ") +
                               (has_cert ? "ca.cert_file" : "ca.key_file") + " is set)");
  }
  const Timestamp now = clock.now();
  auto material = has_cert ? load_ca_files(config.cert_file, config.key_file, now)
                           : load_or_create_ca_dir(config.dir, now);
  if (!material) return inkwire::unexpected(material.error());
  // Signing runs on many threads; have OpenSSL cache the CA's parsed extensions now, once.
  X509_get_extension_flags(material->cert.get());
  return std::unique_ptr<CertificateAuthority>(new CertificateAuthority(
      material->key.release(), material->cert.release(), std::move(material->pem), clock));
}

Expected<IssuedCertificate, std::string> CertificateAuthority::sign_csr(std::string_view csr_pem,
                                                                         std::string_view public_host,
                                                                         int days) const {
  const std::string host = lowercase(public_host);
  if (!x509::is_valid_dns_name(host, /*allow_wildcard=*/false)) {
    return inkwire::unexpected("public host is not a valid DNS name: " + host);
  }
  auto csr = check_csr(csr_pem, host);
  if (!csr) return inkwire::unexpected(csr.error());
  auto validity = leaf_validity(cert_, clock_.now(), days);
  if (!validity) return inkwire::unexpected(validity.error());
  auto subject = x509::make_leaf_subject(host);
  if (!subject) return inkwire::unexpected(subject.error());

  x509::CertificateSpec spec;
  spec.subject_key = csr->public_key;
  spec.subject = subject->name.get();
  spec.san_critical = subject->san_critical;
  spec.issuer_cert = cert_;
  spec.issuer_key = key_;
  spec.not_before = validity->first;
  spec.not_after = validity->second;
  spec.basic_constraints = "critical,CA:FALSE";
  // keyEncipherment only matters for RSA key transport (TLS 1.2 RSA kx); ECDSA keys cannot do it.
  spec.key_usage = csr->is_rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature";
  spec.extended_key_usage = "serverAuth";
  spec.dns_names = {host};
  auto leaf = x509::make_certificate(spec);
  if (!leaf) return inkwire::unexpected(leaf.error());

  auto pem = x509::certificate_pem(leaf->get());
  if (!pem) return inkwire::unexpected(pem.error());
  auto der = x509::certificate_der(leaf->get());
  if (!der) return inkwire::unexpected(der.error());
  IssuedCertificate issued;
  issued.cert_pem = std::move(*pem);
  issued.chain_pem = ca_pem_;
  issued.fingerprint_sha256 = hex_encode(sha256(*der));
  issued.not_after = validity->second;
  return issued;
}

Expected<IssuedKeyPair, std::string> CertificateAuthority::issue_server_certificate(
    const std::vector<std::string>& dns_names, const std::vector<std::string>& ip_addresses, int days) const {
  if (dns_names.empty() && ip_addresses.empty()) {
    return inkwire::unexpected(std::string("a server certificate needs at least one DNS name or IP address"));
  }
  for (const auto& name : dns_names) {
    if (!x509::is_valid_dns_name(name, /*allow_wildcard=*/true)) {
      return inkwire::unexpected("not a valid DNS name for a certificate: " + name);
    }
  }
  auto validity = leaf_validity(cert_, clock_.now(), days);
  if (!validity) return inkwire::unexpected(validity.error());
  auto subject = x509::make_leaf_subject(dns_names.empty() ? ip_addresses.front() : dns_names.front());
  if (!subject) return inkwire::unexpected(subject.error());
  auto key = x509::generate_p256_key();
  if (!key) return inkwire::unexpected(key.error());

  x509::CertificateSpec spec;
  spec.subject_key = key->get();
  spec.subject = subject->name.get();
  spec.san_critical = subject->san_critical;
  spec.issuer_cert = cert_;
  spec.issuer_key = key_;
  spec.not_before = validity->first;
  spec.not_after = validity->second;
  spec.basic_constraints = "critical,CA:FALSE";
  spec.key_usage = "critical,digitalSignature";
  spec.extended_key_usage = "serverAuth";
  spec.dns_names = dns_names;
  spec.ip_addresses = ip_addresses;
  auto cert = x509::make_certificate(spec);
  if (!cert) return inkwire::unexpected(cert.error());

  auto cert_pem = x509::certificate_pem(cert->get());
  if (!cert_pem) return inkwire::unexpected(cert_pem.error());
  auto key_pem = x509::pkcs8_private_key_pem(key->get());
  if (!key_pem) return inkwire::unexpected(key_pem.error());
  return IssuedKeyPair{std::move(*cert_pem), std::move(*key_pem)};
}

}  // namespace inkwire::controlplane
