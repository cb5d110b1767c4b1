#include "agent/pki.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctime>

namespace inkwire::agent::pki {
namespace {

using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OpenSslDeleter<&GENERAL_NAMES_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpenSslDeleter<&X509_EXTENSION_free>>;

struct ExtensionStackDeleter {
  void operator()(STACK_OF(X509_EXTENSION) * p) const { sk_X509_EXTENSION_pop_free(p, X509_EXTENSION_free); }
};
using ExtensionStackPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), ExtensionStackDeleter>;

Unexpected<std::string> fail(std::string_view what) { return unexpected(std::string(what) + ": " + take_openssl_error()); }

// A bare DNS name: LDH labels separated by dots, no port, no trailing dot. Checked here because the
// name goes into a certificate request verbatim; the server checks it again.
bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '.') {
      if (label == 0 || name[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && c != '-') return false;
    if (c == '-' && label == 0) return false;
    if (++label > 63) return false;
  }
  return label > 0 && name.back() != '-';
}

Expected<std::string, std::string> bio_text(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  if (len < 0 || (len > 0 && data == nullptr)) return fail("cannot read memory BIO");
  return std::string(data, static_cast<std::size_t>(len));
}

}  // namespace

std::string take_openssl_error(std::string_view fallback) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return std::string(fallback);
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof buffer);
  return buffer;
}

Expected<EvpPkeyPtr, std::string> generate_p256_key() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return fail("cannot generate an EC P-256 key");
  return key;
}

Expected<std::string, std::string> private_key_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return fail("cannot allocate a BIO");
  // PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY") for every key type in OpenSSL 3.
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return fail("cannot encode the private key");
  return bio_text(bio.get());
}

Expected<EvpPkeyPtr, std::string> parse_private_key_pem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return fail("cannot allocate a BIO");
  // An empty passphrase callback result: an encrypted key fails instead of prompting on the tty.
  auto no_passphrase = [](char*, int, int, void*) -> int { return 0; };
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) return fail("not an unencrypted PEM private key");
  return key;
}

Expected<std::string, std::string> make_csr_pem(EVP_PKEY* key, std::string_view public_host) {
  if (!is_dns_name(public_host))
    return unexpected("the public host '" + std::string(public_host) + "' is not a DNS name");
  if (public_host.size() > 64)
    return unexpected("the public host '" + std::string(public_host) +
                      "' is longer than the 64 characters a certificate's CN may hold");
  const std::string host(public_host);
  X509ReqPtr req(X509_REQ_new());
  if (!req) return fail("cannot allocate a CSR");
  if (X509_REQ_set_version(req.get(), 0) != 1) return fail("cannot set the CSR version");  // v1, the only one

  X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(host.c_str()),
                                 -1, -1, 0) != 1)
    return fail("cannot set the CSR subject");

  // The SAN is built from a GENERAL_NAME rather than an OpenSSL config string ("DNS:<host>"), so no
  // character of the host can be read as config syntax.
  GeneralNamesPtr names(GENERAL_NAMES_new());
  GENERAL_NAME* dns = GENERAL_NAME_new();
  ASN1_IA5STRING* text = ASN1_IA5STRING_new();
  if (!names || !dns || !text || ASN1_STRING_set(text, host.data(), static_cast<int>(host.size())) != 1) {
    GENERAL_NAME_free(dns);
    ASN1_IA5STRING_free(text);
    return fail("cannot build the SubjectAltName");
  }
  GENERAL_NAME_set0_value(dns, GEN_DNS, text);
  if (sk_GENERAL_NAME_push(names.get(), dns) <= 0) {
    GENERAL_NAME_free(dns);
    return fail("cannot build the SubjectAltName");
  }
  X509ExtensionPtr san(X509V3_EXT_i2d(NID_subject_alt_name, /*crit=*/0, names.get()));
  ExtensionStackPtr extensions(sk_X509_EXTENSION_new_null());
  if (!san || !extensions || sk_X509_EXTENSION_push(extensions.get(), san.get()) <= 0)
    return fail("cannot build the SubjectAltName");
  san.release();  // owned by the stack now
  if (X509_REQ_add_extensions(req.get(), extensions.get()) != 1) return fail("cannot add the CSR extensions");

  if (X509_REQ_set_pubkey(req.get(), key) != 1) return fail("cannot set the CSR public key");
  if (X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) return fail("cannot sign the CSR");

  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) return fail("cannot encode the CSR");
  return bio_text(bio.get());
}

Expected<X509Ptr, std::string> parse_first_certificate(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return fail("cannot allocate a BIO");
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return fail("no PEM certificate");
  ERR_clear_error();
  return cert;
}

std::optional<Timestamp> certificate_not_after(const X509* cert) {
  const ASN1_TIME* t = X509_get0_notAfter(cert);
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    ERR_clear_error();
    return std::nullopt;
  }
  const std::time_t seconds = timegm(&tm);
  return Timestamp(std::chrono::seconds(seconds));
}

bool certificate_matches_key(const X509* cert, const EVP_PKEY* key) {
  const EVP_PKEY* cert_key = X509_get0_pubkey(cert);
  const bool equal = cert_key != nullptr && key != nullptr && EVP_PKEY_eq(cert_key, key) == 1;
  ERR_clear_error();
  return equal;
}

std::string certificate_fingerprint_sha256(const X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, EVP_sha256(), md, &n) != 1) {
    ERR_clear_error();
    return {};
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xF]);
  }
  return out;
}

}  // namespace inkwire::agent::pki
