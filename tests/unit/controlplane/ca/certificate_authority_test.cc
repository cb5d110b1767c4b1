#include "controlplane/ca/certificate_authority.h"

#include <gtest/gtest.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "common/encoding.h"
#include "common/secret_hash.h"
#include "common/openssl_ptr.h"
#include "controlplane/ca/x509_util.h"

namespace inkwire::controlplane {
namespace {

using namespace std::chrono_literals;
using StorePtr = std::unique_ptr<X509_STORE, OpenSslDeleter<&X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<&X509_STORE_CTX_free>>;
using BasicConstraintsPtr = std::unique_ptr<BASIC_CONSTRAINTS, OpenSslDeleter<&BASIC_CONSTRAINTS_free>>;

constexpr std::string_view kHost = "my-agent.example.com";

// 2025-03-01T12:00:00.123456Z: a fraction of a second, so flooring to whole seconds is exercised.
const Timestamp kNow = Timestamp(std::chrono::sys_days(std::chrono::year(2025) / 3 / 1)) + 12h + 123456us;

class FixedClock final : public Clock {
 public:
  explicit FixedClock(Timestamp t) : t_(t) {}
  Timestamp now() const override { return t_; }

 private:
  Timestamp t_;
};

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "inkwire-ca-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path(std::string_view sub = {}) const { return sub.empty() ? path_ : path_ + "/" + std::string(sub); }

 private:
  std::string path_;
};

void write_file(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

unsigned file_mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

EvpPkeyPtr make_ec_key(const char* curve) { return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve)); }
EvpPkeyPtr make_rsa_key(std::size_t bits) {
  return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits));
}
EvpPkeyPtr make_ed25519_key() { return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")); }

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

// A CSR like the SDK's (§2.5.9): `common_names` in the subject, `san` an OpenSSL SAN config
// string ("DNS:a,IP:1.2.3.4") or empty for none.
X509ReqPtr make_csr_req(EVP_PKEY* key, const std::vector<std::string>& common_names, const std::string& san) {
  X509ReqPtr req(X509_REQ_new());
  EXPECT_EQ(X509_REQ_set_version(req.get(), 0), 1);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  for (const auto& cn : common_names) {
    // A plain UTF8String type skips OpenSSL's 64-character CN limit, as some CSR tools do.
    EXPECT_EQ(X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                         reinterpret_cast<const unsigned char*>(cn.data()),
                                         static_cast<int>(cn.size()), -1, 0),
              1);
  }
  EXPECT_EQ(X509_REQ_set_pubkey(req.get(), key), 1);
  if (!san.empty()) {
    ExtensionStackPtr exts(sk_X509_EXTENSION_new_null());
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
    EXPECT_NE(ext, nullptr);
    sk_X509_EXTENSION_push(exts.get(), ext);
    EXPECT_EQ(X509_REQ_add_extensions(req.get(), exts.get()), 1);
  }
  const EVP_MD* md = EVP_PKEY_is_a(key, "ED25519") ? nullptr : EVP_sha256();
  EXPECT_GT(X509_REQ_sign(req.get(), key, md), 0);
  return req;
}

std::string csr_pem(X509_REQ* req) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_X509_REQ(bio.get(), req), 1);
  return bio_text(bio.get());
}

std::string make_csr(EVP_PKEY* key, const std::vector<std::string>& common_names, const std::string& san) {
  return csr_pem(make_csr_req(key, common_names, san).get());
}

std::string sdk_csr(EVP_PKEY* key) { return make_csr(key, {std::string(kHost)}, "DNS:" + std::string(kHost)); }

X509Ptr parse_cert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

// Chain verification the way a TLS client does it: trust anchor = our CA, purpose sslserver.
std::string verify_error(const std::string& ca_pem, X509* leaf, Timestamp at, const std::string& host = {},
                         const std::string& ip = {}) {
  StorePtr store(X509_STORE_new());
  X509Ptr ca = parse_cert(ca_pem);
  if (!ca) return "CA PEM does not parse";
  X509_STORE_add_cert(store.get(), ca.get());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, std::chrono::floor<std::chrono::seconds>(at).time_since_epoch().count());
  if (!host.empty()) X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  if (!ip.empty()) X509_VERIFY_PARAM_set1_ip_asc(param, ip.c_str());
  if (X509_verify_cert(ctx.get()) == 1) return {};
  return X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
}

std::vector<std::string> san_dns_names(X509* cert) {
  std::vector<std::string> out;
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != GEN_DNS) {
      out.push_back("<non-DNS>");
      continue;
    }
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                     static_cast<std::size_t>(ASN1_STRING_length(gn->d.dNSName)));
  }
  return out;
}

std::string name_entry(X509_NAME* name, int nid) {
  int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<std::size_t>(ASN1_STRING_length(data)));
}

bool is_critical(X509* cert, int nid) {
  int idx = X509_get_ext_by_NID(cert, nid, -1);
  return idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

class CertificateAuthorityTest : public ::testing::Test {
 protected:
  std::unique_ptr<CertificateAuthority> open_in(const std::string& dir) {
    CaConfig config;
    config.dir = dir;
    auto ca = CertificateAuthority::open(config, clock_);
    EXPECT_TRUE(ca.has_value()) << (ca ? "" : ca.error());
    return ca ? std::move(*ca) : nullptr;
  }
  std::string open_error(const CaConfig& config) {
    auto ca = CertificateAuthority::open(config, clock_);
    EXPECT_FALSE(ca.has_value());
    return ca ? std::string() : ca.error();
  }

  FixedClock clock_{kNow};
  TempDir tmp_;
};

TEST_F(CertificateAuthorityTest, GeneratesCaWithParentsThenReopensTheSameCa) {
  const std::string dir = tmp_.path("state/ca");
  auto ca = open_in(dir);
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(file_mode(dir), 0700u);
  EXPECT_EQ(file_mode(tmp_.path("state")), 0700u);
  EXPECT_EQ(file_mode(dir + "/ca.key"), 0600u);
  EXPECT_EQ(file_mode(dir + "/ca.pem"), 0644u);
  std::ifstream key_in(dir + "/ca.key");
  std::string first_line;
  std::getline(key_in, first_line);
  EXPECT_EQ(first_line, "-----BEGIN PRIVATE KEY-----");  // PKCS#8
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }

  const std::string& pem = ca->ca_pem();
  ASSERT_TRUE(pem.ends_with("-----END CERTIFICATE-----\n"));
  EXPECT_FALSE(pem.ends_with("\n\n"));
  auto reopened = open_in(dir);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->ca_pem(), pem);
}

TEST_F(CertificateAuthorityTest, GeneratedCaHasTheDocumentedShape) {
  auto ca = open_in(tmp_.path("ca"));
  ASSERT_NE(ca, nullptr);
  X509Ptr cert = parse_cert(ca->ca_pem());
  ASSERT_NE(cert, nullptr);
  std::string cn = name_entry(X509_get_subject_name(cert.get()), NID_commonName);
  ASSERT_EQ(cn.size(), std::string("inkwire installation CA ").size() + 8) << cn;
  EXPECT_TRUE(cn.starts_with("inkwire installation CA "));
  EXPECT_EQ(cn.substr(cn.size() - 8).find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(name_entry(X509_get_subject_name(cert.get()), NID_organizationName), "inkwire");
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(cert.get()), X509_get_issuer_name(cert.get())), 0);
  EXPECT_EQ(X509_get_version(cert.get()), X509_VERSION_3);

  BasicConstraintsPtr bc(
      static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert.get(), NID_basic_constraints, nullptr, nullptr)));
  ASSERT_NE(bc, nullptr);
  EXPECT_TRUE(bc->ca);
  ASSERT_NE(bc->pathlen, nullptr);
  EXPECT_EQ(ASN1_INTEGER_get(bc->pathlen), 0);
  EXPECT_TRUE(is_critical(cert.get(), NID_basic_constraints));
  EXPECT_TRUE(is_critical(cert.get(), NID_key_usage));
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<std::uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_NE(X509_get0_subject_key_id(cert.get()), nullptr);

  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  char group[64] = {};
  std::size_t len = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(key, group, sizeof group, &len), 1);
  EXPECT_STREQ(group, "prime256v1");

  auto not_before = x509::asn1_time_to_timestamp(X509_get0_notBefore(cert.get()));
  auto not_after = x509::asn1_time_to_timestamp(X509_get0_notAfter(cert.get()));
  ASSERT_TRUE(not_before && not_after);
  EXPECT_EQ(*not_before, std::chrono::floor<std::chrono::seconds>(kNow) - 5min);
  EXPECT_EQ(*not_after, std::chrono::floor<std::chrono::seconds>(kNow) + std::chrono::days(3650));
}

TEST_F(CertificateAuthorityTest, ConcurrentFirstStartsAgreeOnOneCa) {
  const std::string dir = tmp_.path("race");
  std::vector<std::string> pems(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < pems.size(); ++i) {
    threads.emplace_back([&, i] {
      CaConfig config;
      config.dir = dir;
      auto ca = CertificateAuthority::open(config, clock_);
      if (ca) pems[i] = (*ca)->ca_pem();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& pem : pems) EXPECT_EQ(pem, pems[0]);
  EXPECT_FALSE(pems[0].empty());
  auto reopened = open_in(dir);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->ca_pem(), pems[0]);
}

TEST_F(CertificateAuthorityTest, RefusesHalfAGeneratedCa) {
  auto ca = open_in(tmp_.path("a"));
  ASSERT_NE(ca, nullptr);
  std::filesystem::remove(tmp_.path("a/ca.pem"));
  CaConfig config;
  config.dir = tmp_.path("a");
  EXPECT_NE(open_error(config).find("ca.key exists without"), std::string::npos);

  ca = open_in(tmp_.path("b"));
  std::filesystem::remove(tmp_.path("b/ca.key"));
  config.dir = tmp_.path("b");
  EXPECT_NE(open_error(config).find("ca.key is missing"), std::string::npos);
}

TEST_F(CertificateAuthorityTest, RefusesAnEmptyConfiguration) {
  EXPECT_NE(open_error(CaConfig{}).find("ca.dir is empty"), std::string::npos);
}

TEST_F(CertificateAuthorityTest, LoadsOperatorCertAndKeyFiles) {
  auto generated = open_in(tmp_.path("gen"));
  ASSERT_NE(generated, nullptr);
  CaConfig config;
  config.cert_file = tmp_.path("gen/ca.pem");
  config.key_file = tmp_.path("gen/ca.key");
  config.dir = tmp_.path("unused");
  auto ca = CertificateAuthority::open(config, clock_);
  ASSERT_TRUE(ca.has_value()) << ca.error();
  EXPECT_EQ((*ca)->ca_pem(), generated->ca_pem());
  EXPECT_FALSE(std::filesystem::exists(tmp_.path("unused")));
}

TEST_F(CertificateAuthorityTest, RefusesAKeyThatDoesNotMatchTheCert) {
  ASSERT_NE(open_in(tmp_.path("a")), nullptr);
  ASSERT_NE(open_in(tmp_.path("b")), nullptr);
  CaConfig config;
  config.cert_file = tmp_.path("a/ca.pem");
  config.key_file = tmp_.path("b/ca.key");
  std::string error = open_error(config);
  EXPECT_NE(error.find("does not match"), std::string::npos) << error;
  EXPECT_NE(error.find(config.key_file), std::string::npos) << error;
}

TEST_F(CertificateAuthorityTest, RefusesOnlyOneOfCertFileAndKeyFile) {
  CaConfig config;
  config.dir = tmp_.path("ca");
  config.cert_file = tmp_.path("ca.pem");
  EXPECT_EQ(open_error(config), "ca.cert_file and ca.key_file must be given together (only ca.cert_file is set)");
  config.cert_file.clear();
  config.key_file = tmp_.path("ca.key");
  EXPECT_EQ(open_error(config), "ca.cert_file and ca.key_file must be given together (only ca.key_file is set)");
}

TEST_F(CertificateAuthorityTest, RefusesUnreadableAndNonCaFiles) {
  CaConfig config;
  config.cert_file = tmp_.path("missing.pem");
  config.key_file = tmp_.path("missing.key");
  EXPECT_NE(open_error(config).find("cannot read " + config.cert_file), std::string::npos);

  auto ca = open_in(tmp_.path("ca"));
  ASSERT_NE(ca, nullptr);
  auto leaf = ca->issue_server_certificate({"localhost"}, {}, 30);
  ASSERT_TRUE(leaf.has_value()) << leaf.error();
  write_file(tmp_.path("leaf.pem"), leaf->cert_pem);
  write_file(tmp_.path("leaf.key"), leaf->key_pem);
  config.cert_file = tmp_.path("leaf.pem");
  config.key_file = tmp_.path("leaf.key");
  EXPECT_NE(open_error(config).find("is not a CA certificate"), std::string::npos);

  write_file(tmp_.path("garbage.pem"), "not a certificate\n");
  config.cert_file = tmp_.path("garbage.pem");
  EXPECT_NE(open_error(config).find("holds no readable PEM certificate"), std::string::npos);
}

TEST_F(CertificateAuthorityTest, RefusesAnExpiredOperatorCa) {
  FixedClock long_ago(kNow - std::chrono::days(4000));
  CaConfig config;
  config.dir = tmp_.path("old");
  ASSERT_TRUE(CertificateAuthority::open(config, long_ago).has_value());
  config.dir.clear();
  config.cert_file = tmp_.path("old/ca.pem");
  config.key_file = tmp_.path("old/ca.key");
  EXPECT_NE(open_error(config).find("expired at"), std::string::npos);
}

TEST_F(CertificateAuthorityTest, SignsAnSdkStyleP256Csr) {
  auto ca = open_in(tmp_.path("ca"));
  ASSERT_NE(ca, nullptr);
  EvpPkeyPtr key = make_ec_key("P-256");
  auto issued = ca->sign_csr(sdk_csr(key.get()), kHost, 90);
  ASSERT_TRUE(issued.has_value()) << issued.error();

  EXPECT_TRUE(issued->cert_pem.ends_with("-----END CERTIFICATE-----\n"));
  EXPECT_FALSE(issued->cert_pem.ends_with("\n\n"));
  EXPECT_EQ(issued->chain_pem, ca->ca_pem());
  EXPECT_TRUE(issued->chain_pem.ends_with("-----END CERTIFICATE-----\n"));
  EXPECT_FALSE(issued->chain_pem.ends_with("\n\n"));

  X509Ptr leaf = parse_cert(issued->cert_pem);
  ASSERT_NE(leaf, nullptr);
  EXPECT_EQ(verify_error(ca->ca_pem(), leaf.get(), kNow + 1h, std::string(kHost)), "");
  EXPECT_EQ(X509_check_host(leaf.get(), kHost.data(), kHost.size(), 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(leaf.get(), "other.example.com", 17, 0, nullptr), 0);
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(leaf.get()), key.get()), 1);

  EXPECT_EQ(X509_get_version(leaf.get()), X509_VERSION_3);
  EXPECT_EQ(san_dns_names(leaf.get()), std::vector<std::string>{std::string(kHost)});
  X509_NAME* subject = X509_get_subject_name(leaf.get());
  EXPECT_EQ(X509_NAME_entry_count(subject), 1);
  EXPECT_EQ(name_entry(subject, NID_commonName), kHost);
  X509Ptr ca_cert = parse_cert(ca->ca_pem());
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(leaf.get()), X509_get_subject_name(ca_cert.get())), 0);

  EXPECT_EQ(X509_get_extended_key_usage(leaf.get()), static_cast<std::uint32_t>(XKU_SSL_SERVER));
  EXPECT_EQ(X509_get_key_usage(leaf.get()), static_cast<std::uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_TRUE(is_critical(leaf.get(), NID_key_usage));
  EXPECT_EQ(X509_get_extension_flags(leaf.get()) & EXFLAG_CA, 0u);
  ASSERT_NE(X509_get0_subject_key_id(leaf.get()), nullptr);
  ASSERT_NE(X509_get0_authority_key_id(leaf.get()), nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf.get()), X509_get0_subject_key_id(ca_cert.get())), 0);
  EXPECT_EQ(X509_get_signature_nid(leaf.get()), NID_ecdsa_with_SHA256);

  const ASN1_INTEGER* serial = X509_get0_serialNumber(leaf.get());
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  EXPECT_FALSE(BN_is_negative(bn.get()));
  EXPECT_FALSE(BN_is_zero(bn.get()));
  EXPECT_LE(BN_num_bits(bn.get()), 128);

  const Timestamp start = std::chrono::floor<std::chrono::seconds>(kNow);
  EXPECT_EQ(issued->not_after, start + std::chrono::days(90));
  EXPECT_EQ(x509::asn1_time_to_timestamp(X509_get0_notAfter(leaf.get())), issued->not_after);
  EXPECT_EQ(x509::asn1_time_to_timestamp(X509_get0_notBefore(leaf.get())), start - 5min);
  EXPECT_NE(verify_error(ca->ca_pem(), leaf.get(), start + std::chrono::days(91)), "");

  auto der = x509::certificate_der(leaf.get());
  ASSERT_TRUE(der.has_value());
  EXPECT_EQ(issued->fingerprint_sha256, hex_encode(sha256(*der)));
  EXPECT_EQ(issued->fingerprint_sha256.size(), 64u);
  EXPECT_EQ(issued->fingerprint_sha256.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST_F(CertificateAuthorityTest, SignsACnOnlyCsrWithoutSan) {
  auto ca = open_in(tmp_.path("ca"));
  ASSERT_NE(ca, nullptr);
  EvpPkeyPtr key = make_ec_key("P-256");
  auto issued = ca->sign_csr(make_csr(key.get(), {std::string(kHost)}, ""), kHost, 90);
  ASSERT_TRUE(issued.has_value()) << issued.error();
  X509Ptr leaf = parse_cert(issued->cert_pem);
  EXPECT_EQ(verify_error(ca->ca_pem(), leaf.get(), kNow, std::string(kHost)), "");
  EXPECT_EQ(san_dns_names(leaf.get()), std::vector<std::string>{std::string(kHost)});
}

TEST_F(CertificateAuthorityTest, ComparesHostNamesWithoutCaseAndAcceptsCrlfPem) {
  auto ca = open_in(tmp_.path("ca"));
  ASSERT_NE(ca, nullptr);
  EvpPkeyPtr key = make_ec_key("P-256");
  std::string pem = make_csr(key.get(), {"My-Agent.Example.COM"}, "DNS:MY-AGENT.example.com");
  std::string crlf;
  for (char c : pem) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  auto issued = ca->sign_csr("\n" + crlf + "\n", kHost, 90);
  ASSERT_TRUE(issued.has_value()) << issued.error();
  EXPECT_EQ(san_dns_names(parse_cert(issued->cert_pem).get()), std::vector<std::string>{std::string(kHost)});
}

TEST_F(CertificateAuthorityTest, HostLongerThanACommonNameGetsAnEmptySubjectAndCriticalSan) {
  auto ca = open_in(tmp_.path("ca"));
  ASSERT_NE(ca, nullptr);
  const std::string host = "a-tunnel-name-of-sixty-three-characters-0123456789-0123456789ab.inkwire.localhost";
  ASSERT_GT(host.size(), 64u);
  EvpPkeyPtr key = make_ec_key("P-256");
  auto issued = ca->sign_csr(make_csr(key.get(), {host}, "DNS:" + host), host, 90);
  ASSERT_TRUE(issued.has_value()) << issued.error();
  X509Ptr leaf = parse_cert(issued->cert_pem);
  EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(leaf.get())), 0);
  EXPECT_TRUE(is_critical(leaf.get(), NID_subject_alt_name));
  EXPECT_EQ(san_dns_names(leaf.get()), std::vector<std::string>{host});
  EXPECT_EQ(verify_error(ca->ca_pem(), leaf.get(), kNow, host), "");
}

TEST_F(CertificateAuthorityTest, RenewalIssuesAFreshSerialEachTime) {
  auto ca = open_in(tmp_.path("ca"));
  ASSERT_NE(ca, nullptr);
  EvpPkeyPtr key = make_ec_key("P-256");
  std::string csr = sdk_csr(key.get());
  std::set<std::string> fingerprints;
  for (int i = 0; i < 5; ++i) {
    auto issued = ca->sign_csr(csr, kHost, 90);
    ASSERT_TRUE(issued.has_value()) << issued.error();
    fingerprints.insert(issued->fingerprint_sha256);
  }
  EXPECT_EQ(fingerprints.size(), 5u);
}

TEST_F(CertificateAuthorityTest, SignsRsa2048WithKeyEncipherment) {
  auto ca = open_in(tmp_.path("ca"));
  ASSERT_NE(ca, nullptr);
  EvpPkeyPtr key = make_rsa_key(2048);
  auto issued = ca->sign_csr(sdk_csr(key.get()), kHost, 90);
  ASSERT_TRUE(issued.has_value()) << issued.error();
  X509Ptr leaf = parse_cert(issued->cert_pem);
  EXPECT_EQ(verify_error(ca->ca_pem(), leaf.get(), kNow, std::string(kHost)), "");
  EXPECT_EQ(X509_get_key_usage(leaf.get()), static_cast<std::uint32_t>(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
}

TEST_F(CertificateAuthorityTest, LeafNeverOutlivesTheCa) {
  auto ca = open_in(tmp_.path("ca"));
  ASSERT_NE(ca, nullptr);
  CaConfig config;
  config.dir = tmp_.path("ca");
  FixedClock late(kNow + std::chrono::days(3600));
  auto late_ca = CertificateAuthority::open(config, late);
  ASSERT_TRUE(late_ca.has_value()) << late_ca.error();
  EvpPkeyPtr key = make_ec_key("P-256");
  auto issued = (*late_ca)->sign_csr(sdk_csr(key.get()), kHost, 90);
  ASSERT_TRUE(issued.has_value()) << issued.error();
  EXPECT_EQ(issued->not_after, std::chrono::floor<std::chrono::seconds>(kNow) + std::chrono::days(3650));
}

TEST_F(CertificateAuthorityTest, RefusesLifetimesOutOfRange) {
  auto ca = open_in(tmp_.path("ca"));
  ASSERT_NE(ca, nullptr);
  EvpPkeyPtr key = make_ec_key("P-256");
  for (int days : {0, -1, 3651}) {
    auto issued = ca->sign_csr(sdk_csr(key.get()), kHost, days);
    ASSERT_FALSE(issued.has_value()) << days;
    EXPECT_EQ(issued.error(), "certificate lifetime must be 1 to 3650 days");
  }
}

// Refusals: each CSR paired with the exact one-line detail the API returns with its 422.
class SignCsrRefusalTest : public CertificateAuthorityTest {
 protected:
  void SetUp() override {
    ca_ = open_in(tmp_.path("ca"));
    ASSERT_NE(ca_, nullptr);
    p256_ = make_ec_key("P-256");
  }
  std::string refusal(const std::string& csr) {
    auto issued = ca_->sign_csr(csr, kHost, 90);
    EXPECT_FALSE(issued.has_value());
    return issued ? std::string("<accepted>") : issued.error();
  }
  std::unique_ptr<CertificateAuthority> ca_;
  EvpPkeyPtr p256_;
};

constexpr std::string_view kBadKey = "CSR key must be EC P-256 or RSA >= 2048 bits";
constexpr std::string_view kNotOnePem = "csr_pem is not a single PEM CERTIFICATE REQUEST";

TEST_F(SignCsrRefusalTest, WrongCommonName) {
  EXPECT_EQ(refusal(make_csr(p256_.get(), {"other.example.com"}, "DNS:" + std::string(kHost))),
            "CSR common name must be exactly my-agent.example.com");
  EXPECT_EQ(refusal(make_csr(p256_.get(), {"my-agent.example.com.evil"}, "")),
            "CSR common name must be exactly my-agent.example.com");
}

TEST_F(SignCsrRefusalTest, MissingOrRepeatedCommonName) {
  const std::string expected = "CSR subject must hold exactly one common name, my-agent.example.com";
  EXPECT_EQ(refusal(make_csr(p256_.get(), {}, "DNS:" + std::string(kHost))), expected);
  EXPECT_EQ(refusal(make_csr(p256_.get(), {std::string(kHost), std::string(kHost)}, "")), expected);
}

TEST_F(SignCsrRefusalTest, ExtraDnsSan) {
  EXPECT_EQ(refusal(make_csr(p256_.get(), {std::string(kHost)}, "DNS:my-agent.example.com,DNS:evil.example.com")),
            "CSR subjectAltName DNS names must all be my-agent.example.com");
}

TEST_F(SignCsrRefusalTest, NonDnsSans) {
  const std::string expected = "CSR subjectAltName may only hold DNS:my-agent.example.com";
  EXPECT_EQ(refusal(make_csr(p256_.get(), {std::string(kHost)}, "DNS:my-agent.example.com,IP:127.0.0.1")), expected);
  EXPECT_EQ(refusal(make_csr(p256_.get(), {std::string(kHost)}, "email:a@example.com")), expected);
  EXPECT_EQ(refusal(make_csr(p256_.get(), {std::string(kHost)}, "URI:https://my-agent.example.com/")), expected);
}

TEST_F(SignCsrRefusalTest, WeakOrUnsupportedKeys) {
  EvpPkeyPtr rsa1024 = make_rsa_key(1024);
  EvpPkeyPtr p384 = make_ec_key("P-384");
  EvpPkeyPtr ed25519 = make_ed25519_key();
  EXPECT_EQ(refusal(sdk_csr(rsa1024.get())), kBadKey);
  EXPECT_EQ(refusal(sdk_csr(p384.get())), kBadKey);
  EXPECT_EQ(refusal(sdk_csr(ed25519.get())), kBadKey);
}

TEST_F(SignCsrRefusalTest, P256WithExplicitCurveParameters) {
  // The same curve spelled out as parameters instead of its OID: refused like TLS stacks do.
  using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpenSslDeleter<&EVP_PKEY_CTX_free>>;
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  ASSERT_EQ(EVP_PKEY_keygen_init(ctx.get()), 1);
  char group[] = "P-256";
  char encoding[] = "explicit";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("group", group, 0),
                               OSSL_PARAM_construct_utf8_string("encoding", encoding, 0), OSSL_PARAM_construct_end()};
  ASSERT_EQ(EVP_PKEY_CTX_set_params(ctx.get(), params), 1);
  EVP_PKEY* raw = nullptr;
  ASSERT_EQ(EVP_PKEY_generate(ctx.get(), &raw), 1);
  EvpPkeyPtr explicit_key(raw);
  EXPECT_EQ(refusal(sdk_csr(explicit_key.get())), kBadKey);
}

TEST_F(SignCsrRefusalTest, TamperedSignature) {
  X509ReqPtr req = make_csr_req(p256_.get(), {std::string(kHost)}, "DNS:" + std::string(kHost));
  int len = i2d_X509_REQ(req.get(), nullptr);
  ASSERT_GT(len, 0);
  std::vector<unsigned char> der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  ASSERT_EQ(i2d_X509_REQ(req.get(), &p), len);
  der.back() ^= 0x01;  // last byte of the ECDSA signature's s: still DER, no longer valid
  BioPtr bio(BIO_new(BIO_s_mem()));
  ASSERT_GT(PEM_write_bio(bio.get(), "CERTIFICATE REQUEST", "", der.data(), len), 0);
  EXPECT_EQ(refusal(bio_text(bio.get())), "CSR signature does not verify");
}

TEST_F(SignCsrRefusalTest, GarbageAndWrongBlocks) {
  EXPECT_EQ(refusal(""), kNotOnePem);
  EXPECT_EQ(refusal("hello"), kNotOnePem);
  EXPECT_EQ(refusal("-----BEGIN CERTIFICATE REQUEST-----\nnot base64!\n-----END CERTIFICATE REQUEST-----\n"),
            kNotOnePem);
  EXPECT_EQ(refusal("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"),
            "csr_pem does not hold a well-formed certificate request");
  EXPECT_EQ(refusal(ca_->ca_pem()), kNotOnePem);  // a certificate, not a request
}

TEST_F(SignCsrRefusalTest, TwoPemBlocksOrTrailingJunk) {
  std::string csr = sdk_csr(p256_.get());
  EXPECT_EQ(refusal(csr + csr), kNotOnePem);
  EXPECT_EQ(refusal(csr + ca_->ca_pem()), kNotOnePem);
  EXPECT_EQ(refusal("junk\n" + csr), kNotOnePem);
  EXPECT_EQ(refusal(csr + "junk\n"), kNotOnePem);
}

TEST_F(SignCsrRefusalTest, InvalidPublicHostFromTheCaller) {
  auto issued = ca_->sign_csr(sdk_csr(p256_.get()), "bad host,DNS:evil", 90);
  ASSERT_FALSE(issued.has_value());
  EXPECT_EQ(issued.error(), "public host is not a valid DNS name: bad host,dns:evil");
}

TEST_F(SignCsrRefusalTest, OversizedInput) {
  std::string csr = sdk_csr(p256_.get());
  EXPECT_EQ(refusal(csr + std::string(64 * 1024, '\n')), "csr_pem is larger than 64 KiB");
}

TEST_F(CertificateAuthorityTest, SigningIsSafeFromSeveralThreads) {
  auto ca = open_in(tmp_.path("ca"));
  ASSERT_NE(ca, nullptr);
  EvpPkeyPtr key = make_ec_key("P-256");
  const std::string csr = sdk_csr(key.get());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto issued = ca->sign_csr(csr, kHost, 90);
        if (issued && verify_error(ca->ca_pem(), parse_cert(issued->cert_pem).get(), kNow).empty()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 40);
}

TEST_F(CertificateAuthorityTest, IssuesServerCertificatesForNamesAndAddresses) {
  auto ca = open_in(tmp_.path("ca"));
  ASSERT_NE(ca, nullptr);
  auto pair = ca->issue_server_certificate({"inkwire.localhost", "*.inkwire.localhost", "localhost"},
                                           {"127.0.0.1", "::1"}, 30);
  ASSERT_TRUE(pair.has_value()) << pair.error();
  EXPECT_TRUE(pair->key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
  X509Ptr leaf = parse_cert(pair->cert_pem);
  ASSERT_NE(leaf, nullptr);
  BioPtr key_bio(BIO_new_mem_buf(pair->key_pem.data(), static_cast<int>(pair->key_pem.size())));
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(leaf.get(), key.get()), 1);
  EXPECT_TRUE(EVP_PKEY_is_a(key.get(), "EC"));

  EXPECT_EQ(name_entry(X509_get_subject_name(leaf.get()), NID_commonName), "inkwire.localhost");
  EXPECT_EQ(X509_get_extended_key_usage(leaf.get()), static_cast<std::uint32_t>(XKU_SSL_SERVER));
  for (std::string host : {"inkwire.localhost", "api.inkwire.localhost", "localhost"}) {
    EXPECT_EQ(X509_check_host(leaf.get(), host.c_str(), host.size(), 0, nullptr), 1) << host;
    EXPECT_EQ(verify_error(ca->ca_pem(), leaf.get(), kNow, host), "") << host;
  }
  EXPECT_EQ(X509_check_host(leaf.get(), "a.b.inkwire.localhost", 21, 0, nullptr), 0);
  for (std::string ip : {"127.0.0.1", "::1"}) {
    EXPECT_EQ(X509_check_ip_asc(leaf.get(), ip.c_str(), 0), 1) << ip;
    EXPECT_EQ(verify_error(ca->ca_pem(), leaf.get(), kNow, {}, ip), "") << ip;
  }
  EXPECT_EQ(X509_check_ip_asc(leaf.get(), "127.0.0.2", 0), 0);
}

TEST_F(CertificateAuthorityTest, IssuesIpOnlyServerCertificate) {
  auto ca = open_in(tmp_.path("ca"));
  ASSERT_NE(ca, nullptr);
  auto pair = ca->issue_server_certificate({}, {"10.0.0.7"}, 30);
  ASSERT_TRUE(pair.has_value()) << pair.error();
  X509Ptr leaf = parse_cert(pair->cert_pem);
  EXPECT_EQ(name_entry(X509_get_subject_name(leaf.get()), NID_commonName), "10.0.0.7");
  EXPECT_EQ(verify_error(ca->ca_pem(), leaf.get(), kNow, {}, "10.0.0.7"), "");
}

TEST_F(CertificateAuthorityTest, RefusesBadServerCertificateRequests) {
  auto ca = open_in(tmp_.path("ca"));
  ASSERT_NE(ca, nullptr);
  auto none = ca->issue_server_certificate({}, {}, 30);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error(), "a server certificate needs at least one DNS name or IP address");
  auto bad_ip = ca->issue_server_certificate({"localhost"}, {"1.2.3.4junk"}, 30);
  ASSERT_FALSE(bad_ip.has_value());
  EXPECT_EQ(bad_ip.error(), "not an IP address: 1.2.3.4junk");
  auto bad_dns = ca->issue_server_certificate({"bad name,DNS:evil"}, {}, 30);
  ASSERT_FALSE(bad_dns.has_value());
  EXPECT_EQ(bad_dns.error(), "not a valid DNS name for a certificate: bad name,DNS:evil");
}

}  // namespace
}  // namespace inkwire::controlplane
