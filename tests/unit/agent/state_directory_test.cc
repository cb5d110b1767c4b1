// The agent's state directory (PROTOCOL.md §5): layout, modes, the SDKs' byte formats, symlink
// refusal, atomic rewrites, the passthrough key, certificate checks and the CSR.
#include "agent/state_directory.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/pki.h"

using namespace inkwire;
using namespace inkwire::agent;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "inkwire-state-test-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return 01000000;
  return st.st_mode & 07777;
}

ino_t inode_of(const fs::path& p) {
  struct stat st {};
  ::lstat(p.c_str(), &st);
  return st.st_ino;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, std::string_view content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
}

std::vector<std::string> temp_files(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind(".tmp-", 0) == 0) out.push_back(e.path().filename().string());
  return out;
}

StateDirectory must_open(const fs::path& p) {
  auto dir = StateDirectory::open(p);
  if (!dir) throw std::runtime_error(dir.error());
  return std::move(*dir);
}

// A self-signed certificate for `key`, valid from now-1h until `not_after`.
std::string self_signed_pem(EVP_PKEY* key, Timestamp not_after, const std::string& cn = "demo.example") {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), now - 3600);
  ASN1_TIME_set(X509_getm_notAfter(cert.get()),
                std::chrono::duration_cast<std::chrono::seconds>(not_after.time_since_epoch()).count());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key);
  X509_sign(cert.get(), key, EVP_sha256());
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert.get());
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

Timestamp now() { return SystemClock().now(); }

}  // namespace

TEST(StateDirectory, DefaultPathIsUnderHome) {
  EXPECT_EQ(StateDirectory::default_path("my-agent", fs::path("/home/u")), fs::path("/home/u/.inkbox/tunnels/my-agent"));
}

TEST(StateDirectory, CreatesMissingParentsWithMode0700) {
  TempDir tmp;
  const fs::path p = tmp.path() / "home" / ".inkbox" / "tunnels" / "demo";
  auto dir = StateDirectory::open(p);
  ASSERT_TRUE(dir) << dir.error();
  EXPECT_EQ(dir->path(), p);
  EXPECT_EQ(mode_of(p), 0700u);
  EXPECT_EQ(mode_of(tmp.path() / "home" / ".inkbox"), 0700u);
  EXPECT_TRUE(temp_files(p).empty());
}

TEST(StateDirectory, ReappliesMode0700OnEveryUse) {
  TempDir tmp;
  const fs::path p = tmp.path() / "demo";
  ASSERT_EQ(::mkdir(p.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(p.c_str(), 0755), 0);
  StateDirectory dir = must_open(p);
  EXPECT_EQ(mode_of(p), 0700u);
  ASSERT_EQ(::chmod(p.c_str(), 0777), 0);
  proto::TunnelState s;
  s.name = "demo";
  ASSERT_TRUE(dir.write_state(s));
  EXPECT_EQ(mode_of(p), 0700u);
}

TEST(StateDirectory, RefusesASymlink) {
  TempDir tmp;
  const fs::path real = tmp.path() / "real";
  const fs::path link = tmp.path() / "link";
  fs::create_directory(real);
  fs::create_directory_symlink(real, link);
  auto dir = StateDirectory::open(link);
  ASSERT_FALSE(dir);
  EXPECT_NE(dir.error().find("symlink"), std::string::npos) << dir.error();
  EXPECT_NE(dir.error().find(link.string()), std::string::npos) << dir.error();
  // A dangling symlink is refused too, and nothing is created at its target.
  const fs::path dangling = tmp.path() / "dangling";
  fs::create_directory_symlink(tmp.path() / "nowhere", dangling);
  EXPECT_FALSE(StateDirectory::open(dangling));
  EXPECT_FALSE(fs::exists(tmp.path() / "nowhere"));
}

TEST(StateDirectory, RefusesARegularFile) {
  TempDir tmp;
  write_file(tmp.path() / "file", "x");
  auto dir = StateDirectory::open(tmp.path() / "file");
  ASSERT_FALSE(dir);
  EXPECT_NE(dir.error().find("not a directory"), std::string::npos) << dir.error();
}

TEST(StateDirectory, MissingOrCorruptStateIsNoState) {
  TempDir tmp;
  StateDirectory dir = must_open(tmp.path() / "s");
  EXPECT_FALSE(dir.read_state());
  write_file(dir.state_file(), "{\"tunnel_id\": \"abc\", ");
  EXPECT_FALSE(dir.read_state());
  write_file(dir.state_file(), "[1, 2]");
  EXPECT_FALSE(dir.read_state());
  write_file(dir.state_file(), "");
  EXPECT_FALSE(dir.read_state());
}

TEST(StateDirectory, ReadsADirectoryWrittenByThePythonSdk) {
  TempDir tmp;
  StateDirectory dir = must_open(tmp.path() / "py");
  // json.dump(state, f, indent=2, sort_keys=True): sorted keys, 2-space indent, no final newline.
  const std::string python =
      "{\n"
      "  \"mode\": \"passthrough\",\n"
      "  \"name\": \"my-agent\",\n"
      "  \"public_host\": \"my-agent.tunnels.example.com\",\n"
      "  \"secret\": \"tsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\n"
      "  \"tunnel_id\": \"0b7c2f1e-4d7a-4c59-9a51-2f0c7e3f9d10\",\n"
      "  \"zone\": \"tunnels.example.com\"\n"
      "}";
  write_file(dir.state_file(), python);
  ::chmod(dir.state_file().c_str(), 0600);
  auto pkey = pki::generate_p256_key();
  ASSERT_TRUE(pkey);
  auto key_pem = pki::private_key_pem(pkey->get());
  ASSERT_TRUE(key_pem);
  write_file(dir.private_key_file(), *key_pem);
  // Python concatenates cert_pem + chain_pem as they are.
  const std::string leaf = self_signed_pem(pkey->get(), now() + std::chrono::hours(24 * 90), "my-agent.tunnels.example.com");
  auto other = pki::generate_p256_key();
  const std::string ca = self_signed_pem(other->get(), now() + std::chrono::hours(24 * 3650), "CA");
  write_file(dir.cert_chain_file(), leaf + ca);

  const auto state = dir.read_state();
  ASSERT_TRUE(state);
  EXPECT_EQ(state->tunnel_id, "0b7c2f1e-4d7a-4c59-9a51-2f0c7e3f9d10");
  EXPECT_EQ(state->name, "my-agent");
  EXPECT_EQ(state->secret, "tsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  EXPECT_EQ(state->mode, "passthrough");
  EXPECT_EQ(state->zone, "tunnels.example.com");
  EXPECT_EQ(state->public_host, "my-agent.tunnels.example.com");

  auto key = dir.load_or_create_private_key();
  ASSERT_TRUE(key) << key.error();
  EXPECT_EQ(EVP_PKEY_eq(key->get(), pkey->get()), 1);
  EXPECT_EQ(read_file(dir.private_key_file()), *key_pem) << "an existing key is never rewritten";
  const CertificateCheck check = dir.check_certificate(key->get(), now());
  EXPECT_EQ(check.status, CertificateStatus::valid) << check.reason;

  // Our rewrite is byte-identical to Python's, so a shared directory does not churn.
  ASSERT_TRUE(dir.write_state(*state));
  EXPECT_EQ(read_file(dir.state_file()), python);
}

TEST(StateDirectory, ReadsTheTypeScriptSdkOrderAndUnknownKeys) {
  TempDir tmp;
  StateDirectory dir = must_open(tmp.path() / "ts");
  write_file(dir.state_file(),
             "{\n  \"tunnel_id\": \"0b7c2f1e-4d7a-4c59-9a51-2f0c7e3f9d10\",\n  \"name\": \"my-agent\",\n"
             "  \"secret\": \"tsec_x\",\n  \"mode\": \"edge\",\n  \"extra\": {\"a\": 1}\n}\n");
  const auto state = dir.read_state();
  ASSERT_TRUE(state);
  EXPECT_EQ(state->name, "my-agent");
  EXPECT_EQ(state->secret, "tsec_x");
  EXPECT_FALSE(state->zone);
}

TEST(StateDirectory, WritesStateAtomicallyWithMode0600) {
  TempDir tmp;
  StateDirectory dir = must_open(tmp.path() / "w");
  proto::TunnelState s;
  s.tunnel_id = "0b7c2f1e-4d7a-4c59-9a51-2f0c7e3f9d10";
  s.name = "demo";
  s.secret = "tsec_one";
  s.mode = "edge";
  ASSERT_TRUE(dir.write_state(s));
  EXPECT_EQ(mode_of(dir.state_file()), 0600u);
  EXPECT_EQ(read_file(dir.state_file()), proto::serialize_state_json(s));
  EXPECT_EQ(read_file(dir.state_file()),
            "{\n  \"mode\": \"edge\",\n  \"name\": \"demo\",\n  \"secret\": \"tsec_one\",\n"
            "  \"tunnel_id\": \"0b7c2f1e-4d7a-4c59-9a51-2f0c7e3f9d10\"\n}");

  // A reader holding the old file keeps seeing the old content: the new one is a new inode that
  // replaced the name in one rename, never a file truncated and rewritten in place.
  std::ifstream old_reader(dir.state_file());
  const ino_t before = inode_of(dir.state_file());
  ::chmod(dir.state_file().c_str(), 0644);
  s.secret = "tsec_two";
  ASSERT_TRUE(dir.write_state(s));
  EXPECT_NE(inode_of(dir.state_file()), before);
  EXPECT_EQ(mode_of(dir.state_file()), 0600u);
  std::stringstream old_content;
  old_content << old_reader.rdbuf();
  EXPECT_NE(old_content.str().find("tsec_one"), std::string::npos);
  EXPECT_EQ(dir.read_state()->secret, "tsec_two");
  EXPECT_TRUE(temp_files(dir.path()).empty());
}

TEST(StateDirectory, RewriteReplacesASymlinkedStateFileWithoutFollowingIt) {
  TempDir tmp;
  StateDirectory dir = must_open(tmp.path() / "w");
  const fs::path victim = tmp.path() / "victim";
  write_file(victim, "precious");
  fs::create_symlink(victim, dir.state_file());
  EXPECT_FALSE(dir.read_state()) << "a symlinked state.json is not read through";
  proto::TunnelState s;
  s.name = "demo";
  ASSERT_TRUE(dir.write_state(s));
  EXPECT_EQ(read_file(victim), "precious");
  EXPECT_FALSE(fs::is_symlink(dir.state_file()));
}

TEST(StateDirectory, CreatesThePrivateKeyOnceAsPkcs8Pem) {
  TempDir tmp;
  StateDirectory dir = must_open(tmp.path() / "k");
  auto key = dir.load_or_create_private_key();
  ASSERT_TRUE(key) << key.error();
  EXPECT_EQ(mode_of(dir.private_key_file()), 0600u);
  const std::string pem = read_file(dir.private_key_file());
  EXPECT_EQ(pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u) << pem;
  EXPECT_TRUE(pem.ends_with("-----END PRIVATE KEY-----\n")) << pem;
  EXPECT_EQ(pem.find('\r'), std::string::npos);
  std::istringstream lines(pem);
  std::string line;
  std::vector<std::size_t> lengths;
  while (std::getline(lines, line))
    if (line.rfind("-----", 0) != 0) lengths.push_back(line.size());
  ASSERT_FALSE(lengths.empty());
  for (std::size_t i = 0; i + 1 < lengths.size(); ++i) EXPECT_EQ(lengths[i], 64u);
  EXPECT_LE(lengths.back(), 64u);
  EXPECT_EQ(EVP_PKEY_get_base_id(key->get()), EVP_PKEY_EC);
  char curve[64] = {};
  size_t curve_len = 0;
  EVP_PKEY_get_utf8_string_param(key->get(), "group", curve, sizeof curve, &curve_len);
  EXPECT_STREQ(curve, "prime256v1");

  auto again = dir.load_or_create_private_key();
  ASSERT_TRUE(again);
  EXPECT_EQ(EVP_PKEY_eq(key->get(), again->get()), 1);
  EXPECT_EQ(read_file(dir.private_key_file()), pem);
}

TEST(StateDirectory, NeverFollowsOrReplacesAPlantedKeyPath) {
  TempDir tmp;
  StateDirectory dir = must_open(tmp.path() / "k");
  const fs::path target = tmp.path() / "elsewhere.pem";
  fs::create_symlink(target, dir.private_key_file());
  EXPECT_FALSE(dir.load_or_create_private_key());
  EXPECT_FALSE(fs::exists(target)) << "O_EXCL|O_NOFOLLOW must not create the symlink's target";

  fs::remove(dir.private_key_file());
  write_file(dir.private_key_file(), "not a key");
  auto bad = dir.load_or_create_private_key();
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("private_key.pem"), std::string::npos) << bad.error();
  EXPECT_EQ(read_file(dir.private_key_file()), "not a key") << "an unusable key file is never overwritten";
}

TEST(StateDirectory, WritesTheCertificateChainTheTypeScriptWay) {
  TempDir tmp;
  StateDirectory dir = must_open(tmp.path() / "c");
  auto key = dir.load_or_create_private_key();
  ASSERT_TRUE(key);
  const std::string leaf = self_signed_pem(key->get(), now() + std::chrono::hours(24 * 90));
  auto other = pki::generate_p256_key();
  const std::string ca = self_signed_pem(other->get(), now() + std::chrono::hours(24 * 3650), "CA");
  auto crlf = [](std::string s) {
    std::string out;
    for (char c : s) {
      if (c == '\n') out += '\r';
      out += c;
    }
    return out;
  };
  ASSERT_TRUE(dir.write_cert_chain(crlf(leaf) + "\r\n\r\n", ca.substr(0, ca.size() - 1)));
  EXPECT_EQ(mode_of(dir.cert_chain_file()), 0600u);
  EXPECT_EQ(read_file(dir.cert_chain_file()), leaf + ca);

  // A rewrite (renewal) replaces the file atomically; an empty chain adds nothing.
  const ino_t before = inode_of(dir.cert_chain_file());
  ASSERT_TRUE(dir.write_cert_chain(leaf, ""));
  EXPECT_EQ(read_file(dir.cert_chain_file()), leaf);
  EXPECT_NE(inode_of(dir.cert_chain_file()), before);
  EXPECT_EQ(mode_of(dir.cert_chain_file()), 0600u);
  EXPECT_TRUE(temp_files(dir.path()).empty());
}

TEST(StateDirectory, DecidesWhenToSignAgain) {
  TempDir tmp;
  StateDirectory dir = must_open(tmp.path() / "c");
  auto key = dir.load_or_create_private_key();
  ASSERT_TRUE(key);
  const Timestamp t0 = now();

  EXPECT_EQ(dir.check_certificate(key->get(), t0).status, CertificateStatus::missing);

  write_file(dir.cert_chain_file(), "garbage\n");
  EXPECT_EQ(dir.check_certificate(key->get(), t0).status, CertificateStatus::unreadable);

  const Timestamp expiry = t0 + std::chrono::hours(24 * 30);
  ASSERT_TRUE(dir.write_cert_chain(self_signed_pem(key->get(), expiry), ""));
  auto check = dir.check_certificate(key->get(), t0);
  EXPECT_EQ(check.status, CertificateStatus::valid) << check.reason;
  EXPECT_FALSE(check.needs_signing());
  ASSERT_TRUE(check.not_after);
  EXPECT_LE(std::chrono::abs(*check.not_after - expiry), std::chrono::seconds(1));
  // 14 days and a minute left: still fine; 13 days 23 hours: renew.
  EXPECT_EQ(dir.check_certificate(key->get(), expiry - std::chrono::hours(24 * 14) - std::chrono::minutes(1)).status,
            CertificateStatus::valid);
  EXPECT_EQ(dir.check_certificate(key->get(), expiry - std::chrono::hours(24 * 14 - 1)).status,
            CertificateStatus::expiring);
  EXPECT_EQ(dir.check_certificate(key->get(), expiry + std::chrono::hours(1)).status, CertificateStatus::expiring);

  auto other = pki::generate_p256_key();
  ASSERT_TRUE(dir.write_cert_chain(self_signed_pem(other->get(), expiry), ""));
  check = dir.check_certificate(key->get(), t0);
  EXPECT_EQ(check.status, CertificateStatus::key_mismatch);
  EXPECT_TRUE(check.needs_signing());
}

TEST(StateDirectory, BuildsTheCsrTheSdksSend) {
  TempDir tmp;
  StateDirectory dir = must_open(tmp.path() / "csr");
  const std::string host = "my-agent.tunnels.example.com";
  auto csr_pem = dir.build_csr(host);
  ASSERT_TRUE(csr_pem) << csr_pem.error();
  EXPECT_EQ(csr_pem->rfind("-----BEGIN CERTIFICATE REQUEST-----\n", 0), 0u);

  BioPtr bio(BIO_new_mem_buf(csr_pem->data(), static_cast<int>(csr_pem->size())));
  X509ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(req);
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  ASSERT_NE(pub, nullptr);
  EXPECT_EQ(X509_REQ_verify(req.get(), pub), 1) << "the CSR signature verifies";
  auto key = dir.load_private_key();
  ASSERT_TRUE(key);
  EXPECT_EQ(EVP_PKEY_eq(pub, key->get()), 1) << "the CSR is over the key on disk";
  EXPECT_EQ(X509_REQ_get_signature_nid(req.get()), NID_ecdsa_with_SHA256);

  // Subject: exactly CN=<host>.
  const X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  ASSERT_EQ(X509_NAME_entry_count(subject), 1);
  const X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, 0);
  EXPECT_EQ(OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry)), NID_commonName);
  const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(entry);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)), ASN1_STRING_length(cn)), host);

  // Extensions: exactly one, a non-critical SAN with exactly DNS:<host>.
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req.get());
  ASSERT_NE(exts, nullptr);
  ASSERT_EQ(sk_X509_EXTENSION_num(exts), 1);
  X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts, 0);
  EXPECT_EQ(OBJ_obj2nid(X509_EXTENSION_get_object(ext)), NID_subject_alt_name);
  EXPECT_EQ(X509_EXTENSION_get_critical(ext), 0);
  auto* names = static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext));
  ASSERT_NE(names, nullptr);
  ASSERT_EQ(sk_GENERAL_NAME_num(names), 1);
  const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, 0);
  ASSERT_EQ(gn->type, GEN_DNS);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                        ASN1_STRING_length(gn->d.dNSName)),
            host);
  GENERAL_NAMES_free(names);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

TEST(StateDirectory, RefusesCsrHostsThatAreNotBareDnsNames) {
  TempDir tmp;
  StateDirectory dir = must_open(tmp.path() / "csr");
  EXPECT_FALSE(dir.build_csr("host.example:8443"));
  EXPECT_FALSE(dir.build_csr("a,DNS:evil.example"));
  EXPECT_FALSE(dir.build_csr(""));
  EXPECT_FALSE(dir.build_csr(std::string(60, 'a') + ".example.com"));  // CN over 64 characters
}
