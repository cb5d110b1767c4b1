#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/config.h"
#include "common/expected.h"

// OpenSSL types, kept out of this header so most of the tree does not include OpenSSL.
typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;

namespace inkwire::controlplane {

// A certificate issued by sign-csr (PROTOCOL.md §2.5.9 SignedCert).
struct IssuedCertificate {
  std::string cert_pem;             // leaf PEM, ends in "\n"
  std::string chain_pem;            // the CA certificate PEM, ends in "\n"
  std::string fingerprint_sha256;   // 64 lowercase hex chars over the leaf DER (§8 A22)
  Timestamp not_after;
};

// A server certificate plus its fresh private key (for the local stack's TLS listeners).
struct IssuedKeyPair {
  std::string cert_pem;
  std::string key_pem;  // PKCS#8, unencrypted
};

// The installation CA. Generated at first start (EC P-256, self-signed, 10 years) in CaConfig::dir
// as ca.pem + ca.key (0600), or loaded from operator-supplied cert_file/key_file.
// Thread-safe after construction: signing only reads the CA key and certificate.
class CertificateAuthority {
 public:
  ~CertificateAuthority();
  CertificateAuthority(const CertificateAuthority&) = delete;
  CertificateAuthority& operator=(const CertificateAuthority&) = delete;

  // Error text is one line saying what is wrong and with which file.
  static Expected<std::unique_ptr<CertificateAuthority>, std::string> open(const CaConfig& config, const Clock& clock);

  const std::string& ca_pem() const { return ca_pem_; }  // ends in "\n"

  // sign-csr (§2.5.9, §8 A22–A24): verifies the CSR signature; requires an EC P-256 or RSA >= 2048
  // key; requires CN == public_host and every SAN DNS name (if any SAN) == public_host, and no
  // other SAN kinds. Issues a leaf valid `days` days from now with SAN DNS:public_host, serverAuth
  // EKU, digitalSignature (+keyEncipherment for RSA), random 128-bit serial, SKI/AKI.
  // Error: a one-line reason suitable for a 422 detail.
  Expected<IssuedCertificate, std::string> sign_csr(std::string_view csr_pem, std::string_view public_host,
                                                    int days) const;

  // A server certificate for the stack's own listeners: new EC P-256 key, the given DNS and IP
  // SANs (CN = first DNS name), serverAuth EKU.
  Expected<IssuedKeyPair, std::string> issue_server_certificate(const std::vector<std::string>& dns_names,
                                                                const std::vector<std::string>& ip_addresses,
                                                                int days) const;

 private:
  CertificateAuthority(EVP_PKEY* key, X509* cert, std::string ca_pem, const Clock& clock);

  EVP_PKEY* key_;
  X509* cert_;
  std::string ca_pem_;
  const Clock& clock_;
};

}  // namespace inkwire::controlplane
