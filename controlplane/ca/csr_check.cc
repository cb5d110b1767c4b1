#include "controlplane/ca/csr_check.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <array>
#include <cstring>

#include "controlplane/ca/x509_util.h"

namespace inkwire::controlplane {
namespace {

constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE REQUEST-----";
constexpr std::string_view kEnd = "-----END CERTIFICATE REQUEST-----";
constexpr int kMinRsaBits = 2048;

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  auto first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

std::size_t count_of(std::string_view haystack, std::string_view needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string_view::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

struct PemBlock {
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  ~PemBlock() {
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
  }
};

Expected<X509ReqPtr, std::string> parse_pem(std::string_view csr_pem) {
  const auto bad = [] { return inkwire::unexpected(std::string("csr_pem is not a single PEM CERTIFICATE REQUEST")); };
  if (csr_pem.size() > kMaxCsrPemBytes) return inkwire::unexpected(std::string("csr_pem is larger than 64 KiB"));
  // PEM readers skip text around a block and pick the first of several; a CSR with company is more
  // likely a paste error than intent, so refuse it instead of guessing.
  std::string_view body = trim(csr_pem);
  if (!body.starts_with(kBegin) || !body.ends_with(kEnd) || count_of(body, "-----BEGIN") != 1 ||
      count_of(body, "-----END") != 1) {
    return bad();
  }
  BioPtr bio(BIO_new_mem_buf(body.data(), static_cast<int>(body.size())));
  PemBlock block;
  long len = 0;
  if (!bio || PEM_read_bio(bio.get(), &block.name, &block.header, &block.data, &len) != 1) {
    ERR_clear_error();
    return bad();
  }
  // A header (Proc-Type, DEK-Info) would mean an encrypted block: not a CSR anyone sends.
  if (std::strcmp(block.name, "CERTIFICATE REQUEST") != 0 || block.header[0] != '\0' || len <= 0) return bad();
  const unsigned char* p = block.data;
  X509ReqPtr req(d2i_X509_REQ(nullptr, &p, len));
  if (!req || p != block.data + len) {
    ERR_clear_error();
    return inkwire::unexpected(std::string("csr_pem does not hold a well-formed certificate request"));
  }
  return req;
}

// EC keys must use the named curve P-256: explicit curve parameters are refused even when they
// describe P-256, as browsers and TLS stacks refuse them.
bool is_p256_named_curve(EVP_PKEY* key) {
  std::array<char, 64> group{};
  std::array<char, 32> encoding{};
  std::size_t len = 0;
  bool ok = EVP_PKEY_get_group_name(key, group.data(), group.size(), &len) == 1 &&
            std::strcmp(group.data(), "prime256v1") == 0 &&
            EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, encoding.data(), encoding.size(),
                                           &len) == 1 &&
            std::strcmp(encoding.data(), OSSL_PKEY_EC_ENCODING_GROUP) == 0;
  ERR_clear_error();
  return ok;
}

bool asn1_equals_host(const ASN1_STRING* value, std::string_view host) {
  const auto* data = reinterpret_cast<const char*>(ASN1_STRING_get0_data(value));
  int len = ASN1_STRING_length(value);
  if (data == nullptr || len < 0) return false;
  return x509::equals_ignore_ascii_case(std::string_view(data, static_cast<std::size_t>(len)), host);
}

Expected<Unit, std::string> check_common_name(X509_REQ* req, std::string_view host) {
  const X509_NAME* subject = X509_REQ_get_subject_name(req);
  const X509_NAME_ENTRY* cn = nullptr;
  int count = 0;
  for (int i = 0; i < X509_NAME_entry_count(subject); ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, i);
    if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry)) != NID_commonName) continue;
    ++count;
    cn = entry;
  }
  if (count != 1) {
    return inkwire::unexpected("CSR subject must hold exactly one common name, " + std::string(host));
  }
  // Compare the UTF-8 form: a BMPString or UTF8String CN spelling the host is still the host.
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(cn));
  OpenSslBytesPtr owned(utf8);
  bool match = len >= 0 && utf8 != nullptr &&
               x509::equals_ignore_ascii_case(
                   std::string_view(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len)), host);
  ERR_clear_error();
  if (!match) return inkwire::unexpected("CSR common name must be exactly " + std::string(host));
  return Unit{};
}

Expected<Unit, std::string> check_subject_alt_names(X509_REQ* req, std::string_view host) {
  ExtensionStackPtr exts(X509_REQ_get_extensions(req));
  ERR_clear_error();
  if (!exts) return Unit{};  // no extension request: a CN-only CSR (§2.5.9 [later])
  int san_count = 0;
  for (int i = 0; i < sk_X509_EXTENSION_num(exts.get()); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts.get(), i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) continue;
    if (++san_count > 1) return inkwire::unexpected(std::string("CSR has more than one subjectAltName extension"));
    GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext)));
    if (!names) {
      ERR_clear_error();
      return inkwire::unexpected(std::string("CSR subjectAltName is malformed"));
    }
    for (int j = 0; j < sk_GENERAL_NAME_num(names.get()); ++j) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), j);
      if (name->type != GEN_DNS) {
        return inkwire::unexpected("CSR subjectAltName may only hold DNS:" + std::string(host));
      }
      if (!asn1_equals_host(name->d.dNSName, host)) {
        return inkwire::unexpected("CSR subjectAltName DNS names must all be " + std::string(host));
      }
    }
  }
  return Unit{};
}

}  // namespace

Expected<CheckedCsr, std::string> check_csr(std::string_view csr_pem, std::string_view public_host) {
  auto req = parse_pem(csr_pem);
  if (!req) return inkwire::unexpected(req.error());
  CheckedCsr csr;
  csr.req = std::move(*req);
  csr.public_key = X509_REQ_get0_pubkey(csr.req.get());
  if (csr.public_key == nullptr) {
    ERR_clear_error();
    return inkwire::unexpected(std::string("CSR public key cannot be decoded"));
  }
  // Key policy before the signature: cheap, and it keeps odd algorithms away from the verifier.
  if (EVP_PKEY_is_a(csr.public_key, "EC") && is_p256_named_curve(csr.public_key)) {
    csr.is_rsa = false;
  } else if (EVP_PKEY_is_a(csr.public_key, "RSA") && EVP_PKEY_get_bits(csr.public_key) >= kMinRsaBits) {
    csr.is_rsa = true;
  } else {
    return inkwire::unexpected(std::string("CSR key must be EC P-256 or RSA >= 2048 bits"));
  }
  // Proof that the requester holds the private key.
  if (X509_REQ_verify(csr.req.get(), csr.public_key) != 1) {
    ERR_clear_error();
    return inkwire::unexpected(std::string("CSR signature does not verify"));
  }
  if (auto r = check_common_name(csr.req.get(), public_host); !r) return inkwire::unexpected(r.error());
  if (auto r = check_subject_alt_names(csr.req.get(), public_host); !r) return inkwire::unexpected(r.error());
  return csr;
}

}  // namespace inkwire::controlplane
