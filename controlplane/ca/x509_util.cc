#include "controlplane/ca/x509_util.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <array>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>

namespace inkwire::controlplane::x509 {
namespace {

// ub-common-name (RFC 5280 appendix A); OpenSSL refuses longer CN values anyway.
constexpr std::size_t kMaxCommonName = 64;

std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len <= 0 || data == nullptr) return {};
  return std::string(data, static_cast<std::size_t>(len));
}

bool is_ldh_label(std::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  for (char c : label) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::time_t to_time_t(Timestamp t) {
  return static_cast<std::time_t>(std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count());
}

// EdDSA signs the message itself; every other key type here is used with SHA-256.
const EVP_MD* digest_for(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) return nullptr;
  return EVP_sha256();
}

Expected<Unit, std::string> set_random_serial(X509* cert) {
  BignumPtr bn(BN_new());
  if (!bn) return inkwire::unexpected(take_openssl_error());
  // 128 random bits from the CSPRNG (CA/B asks for at least 64); BN values are non-negative, and
  // zero is not a valid serial, so draw again in that (astronomically unlikely) case.
  do {
    if (BN_rand(bn.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) {
      return inkwire::unexpected("cannot draw a certificate serial: " + take_openssl_error());
    }
  } while (BN_is_zero(bn.get()));
  if (BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return inkwire::unexpected(take_openssl_error());
  }
  return Unit{};
}

Expected<Unit, std::string> add_conf_extension(X509V3_CTX* ctx, X509* cert, int nid, const char* value) {
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext) {
    return inkwire::unexpected(std::string("cannot build ") + OBJ_nid2sn(nid) + " extension: " + take_openssl_error());
  }
  if (X509_add_ext(cert, ext.get(), -1) != 1) return inkwire::unexpected(take_openssl_error());
  return Unit{};
}

Expected<Unit, std::string> push_name(GENERAL_NAMES* names, GeneralNamePtr name) {
  if (sk_GENERAL_NAME_push(names, name.get()) <= 0) return inkwire::unexpected(take_openssl_error());
  name.release();  // the stack owns it now
  return Unit{};
}

Expected<Unit, std::string> add_subject_alt_names(X509* cert, const std::vector<std::string>& dns_names,
                                                  const std::vector<std::string>& ip_addresses, bool critical) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) return inkwire::unexpected(take_openssl_error());
  for (const auto& dns : dns_names) {
    Asn1Ia5StringPtr value(ASN1_IA5STRING_new());
    GeneralNamePtr name(GENERAL_NAME_new());
    if (!value || !name || ASN1_STRING_set(value.get(), dns.data(), static_cast<int>(dns.size())) != 1) {
      return inkwire::unexpected(take_openssl_error());
    }
    GENERAL_NAME_set0_value(name.get(), GEN_DNS, value.release());
    if (auto r = push_name(names.get(), std::move(name)); !r) return r;
  }
  for (const auto& ip : ip_addresses) {
    // inet_pton rather than a2i_IPADDRESS: the latter's IPv4 parser accepts trailing junk.
    std::array<unsigned char, 16> bytes{};
    int len = 0;
    if (inet_pton(AF_INET, ip.c_str(), bytes.data()) == 1) {
      len = 4;
    } else if (inet_pton(AF_INET6, ip.c_str(), bytes.data()) == 1) {
      len = 16;
    } else {
      return inkwire::unexpected("not an IP address: " + ip);
    }
    Asn1OctetStringPtr value(ASN1_OCTET_STRING_new());
    GeneralNamePtr name(GENERAL_NAME_new());
    if (!value || !name || ASN1_OCTET_STRING_set(value.get(), bytes.data(), len) != 1) {
      return inkwire::unexpected(take_openssl_error());
    }
    GENERAL_NAME_set0_value(name.get(), GEN_IPADD, value.release());
    if (auto r = push_name(names.get(), std::move(name)); !r) return r;
  }
  if (sk_GENERAL_NAME_num(names.get()) == 0) return Unit{};
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1) {
    return inkwire::unexpected("cannot add subjectAltName: " + take_openssl_error());
  }
  return Unit{};
}

}  // namespace

std::string take_openssl_error(std::string_view fallback) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return std::string(fallback);
  const char* reason = ERR_reason_error_string(code);
  const char* lib = ERR_lib_error_string(code);
  std::string text = lib != nullptr ? std::string(lib) + ": " : std::string();
  text += reason != nullptr ? reason : "error " + std::to_string(code);
  return text;
}

Expected<EvpPkeyPtr, std::string> generate_p256_key() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return inkwire::unexpected("cannot generate an EC P-256 key: " + take_openssl_error());
  return key;
}

Expected<std::string, std::string> certificate_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return inkwire::unexpected(take_openssl_error());
  return bio_contents(bio.get());
}

Expected<std::string, std::string> pkcs8_private_key_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return inkwire::unexpected(take_openssl_error());
  }
  return bio_contents(bio.get());
}

Expected<std::string, std::string> certificate_der(X509* cert) {
  int len = i2d_X509(cert, nullptr);
  if (len <= 0) return inkwire::unexpected(take_openssl_error());
  std::string der(static_cast<std::size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_X509(cert, &p) != len) return inkwire::unexpected(take_openssl_error());
  return der;
}

bool is_valid_dns_name(std::string_view name, bool allow_wildcard) {
  if (name.empty() || name.size() > 253) return false;
  if (allow_wildcard && name.starts_with("*.")) name.remove_prefix(2);
  while (true) {
    auto dot = name.find('.');
    if (!is_ldh_label(name.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    name.remove_prefix(dot + 1);
  }
}

bool equals_ignore_ascii_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::optional<Timestamp> asn1_time_to_timestamp(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) {
    ERR_clear_error();
    return std::nullopt;
  }
  using namespace std::chrono;
  year_month_day date{year(tm.tm_year + 1900), month(static_cast<unsigned>(tm.tm_mon + 1)),
                      day(static_cast<unsigned>(tm.tm_mday))};
  if (!date.ok()) return std::nullopt;
  return Timestamp(sys_days(date) + hours(tm.tm_hour) + minutes(tm.tm_min) + seconds(tm.tm_sec));
}

Timestamp floor_to_seconds(Timestamp t) { return std::chrono::floor<std::chrono::seconds>(t); }

Expected<X509NamePtr, std::string> make_name(std::string_view common_name, std::string_view organization) {
  if (common_name.empty() || common_name.size() > kMaxCommonName) {
    return inkwire::unexpected("common name must be 1 to 64 characters: " + std::string(common_name));
  }
  X509NamePtr name(X509_NAME_new());
  if (!name) return inkwire::unexpected(take_openssl_error());
  auto add = [&](int nid, std::string_view value) {
    return X509_NAME_add_entry_by_NID(name.get(), nid, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.data()),
                                      static_cast<int>(value.size()), -1, 0) == 1;
  };
  if (!organization.empty() && !add(NID_organizationName, organization)) {
    return inkwire::unexpected("cannot build a certificate name: " + take_openssl_error());
  }
  if (!add(NID_commonName, common_name)) {
    return inkwire::unexpected("cannot build a certificate name: " + take_openssl_error());
  }
  return name;
}

Expected<LeafSubject, std::string> make_leaf_subject(std::string_view name) {
  if (name.size() <= kMaxCommonName) {
    auto subject = make_name(name);
    if (!subject) return inkwire::unexpected(subject.error());
    return LeafSubject{std::move(*subject), false};
  }
  X509NamePtr empty(X509_NAME_new());
  if (!empty) return inkwire::unexpected(take_openssl_error());
  return LeafSubject{std::move(empty), true};
}

Expected<X509Ptr, std::string> make_certificate(const CertificateSpec& spec) {
  X509Ptr cert(X509_new());
  if (!cert) return inkwire::unexpected(take_openssl_error());
  X509* issuer = spec.issuer_cert != nullptr ? spec.issuer_cert : cert.get();
  bool ok = X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
            X509_set_subject_name(cert.get(), spec.subject) == 1 &&
            X509_set_issuer_name(cert.get(), spec.issuer_cert != nullptr ? X509_get_subject_name(spec.issuer_cert)
                                                                         : spec.subject) == 1 &&
            X509_set_pubkey(cert.get(), spec.subject_key) == 1 &&
            ASN1_TIME_set(X509_getm_notBefore(cert.get()), to_time_t(spec.not_before)) != nullptr &&
            ASN1_TIME_set(X509_getm_notAfter(cert.get()), to_time_t(spec.not_after)) != nullptr;
  if (!ok) return inkwire::unexpected("cannot fill in a certificate: " + take_openssl_error());
  if (auto r = set_random_serial(cert.get()); !r) return inkwire::unexpected(r.error());

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert.get(), nullptr, nullptr, 0);
  struct Conf {
    int nid;
    const char* value;
  };
  // SKI before AKI: for a self-signed certificate the AKI would be taken from it.
  const Conf confs[] = {
      {NID_basic_constraints, spec.basic_constraints},
      {NID_key_usage, spec.key_usage},
      {NID_ext_key_usage, spec.extended_key_usage},
      {NID_subject_key_identifier, "hash"},
      // keyid from the issuer's SKI; issuer name + serial only if an operator CA has no SKI.
      {NID_authority_key_identifier, spec.authority_key_id ? "keyid,issuer" : nullptr},
  };
  for (const auto& conf : confs) {
    if (conf.value == nullptr) continue;
    if (auto r = add_conf_extension(&ctx, cert.get(), conf.nid, conf.value); !r) return inkwire::unexpected(r.error());
  }
  if (auto r = add_subject_alt_names(cert.get(), spec.dns_names, spec.ip_addresses, spec.san_critical);
      !r) {
    return inkwire::unexpected(r.error());
  }
  if (X509_sign(cert.get(), spec.issuer_key, digest_for(spec.issuer_key)) <= 0) {
    return inkwire::unexpected("cannot sign a certificate: " + take_openssl_error());
  }
  return cert;
}

}  // namespace inkwire::controlplane::x509
