#include "controlplane/ca/ca_files.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <system_error>

#include "common/encoding.h"
#include "common/time_format.h"
#include "controlplane/ca/x509_util.h"

namespace inkwire::controlplane {
namespace {

using namespace std::chrono_literals;

// A CA file is a few KiB; anything much larger is a wrong path, not a certificate.
constexpr std::size_t kMaxCaFileBytes = 1 << 20;
constexpr auto kCaLifetime = std::chrono::days(3650);
// Clocks of the machines that verify our certificates may lag ours a little.
constexpr auto kClockSkew = 5min;

std::string errno_text(int err) { return std::generic_category().message(err); }

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  // close() can report a deferred write error, which must not be ignored for a key file.
  int close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Removes a temporary file unless it was renamed into place.
class TempFileGuard {
 public:
  explicit TempFileGuard(std::string path) : path_(std::move(path)) {}
  ~TempFileGuard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  const std::string& path() const { return path_; }
  void release() { path_.clear(); }

 private:
  std::string path_;
};

Expected<std::string, std::string> random_hex(std::size_t bytes) {
  std::array<std::uint8_t, 16> buf{};
  if (bytes > buf.size() || RAND_bytes(buf.data(), static_cast<int>(bytes)) != 1) {
    return inkwire::unexpected("cannot draw random bytes: " + x509::take_openssl_error());
  }
  return hex_encode(std::span<const std::uint8_t>(buf.data(), bytes));
}

Expected<std::string, std::string> read_small_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return inkwire::unexpected("cannot read " + path + ": " + errno_text(errno));
  std::string out;
  std::array<char, 8192> buf{};
  while (true) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return inkwire::unexpected("cannot read " + path + ": " + errno_text(errno));
    if (n == 0) break;
    out.append(buf.data(), static_cast<std::size_t>(n));
    if (out.size() > kMaxCaFileBytes) return inkwire::unexpected(path + " is larger than 1 MiB");
  }
  return out;
}

// Never prompt on a terminal for a pass phrase: a server has nobody to answer.
int refuse_password(char*, int, int, void*) { return -1; }

Expected<EvpPkeyPtr, std::string> parse_private_key(const std::string& text, const std::string& path) {
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  EvpPkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_password, nullptr) : nullptr);
  if (!key) {
    return inkwire::unexpected(path + " holds no unencrypted PEM private key (" + x509::take_openssl_error() + ")");
  }
  return key;
}

Expected<std::vector<X509Ptr>, std::string> parse_certificates(const std::string& text, const std::string& path) {
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  std::vector<X509Ptr> certs;
  while (bio) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, refuse_password, nullptr));
    if (!cert) break;
    certs.push_back(std::move(cert));
  }
  // The loop ends on "no start line" at the end of the text; a damaged block shows up as no
  // certificate at all or as a different error.
  unsigned long err = ERR_peek_last_error();
  bool clean_end = err == 0 || (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE);
  if (certs.empty() || !clean_end) {
    return inkwire::unexpected(path + " holds no readable PEM certificate (" +
                               x509::take_openssl_error("no certificate found") + ")");
  }
  ERR_clear_error();
  return certs;
}

Expected<CaMaterial, std::string> check_ca(EvpPkeyPtr key, std::vector<X509Ptr> certs, const std::string& cert_file,
                                           const std::string& key_file, Timestamp now) {
  X509* cert = certs.front().get();
  if (X509_check_private_key(cert, key.get()) != 1) {
    x509::take_openssl_error();
    return inkwire::unexpected(key_file + " does not match the certificate in " + cert_file);
  }
  std::uint32_t flags = X509_get_extension_flags(cert);
  bool is_ca = (flags & EXFLAG_CA) != 0 && (flags & EXFLAG_INVALID) == 0;
  if (is_ca && (flags & EXFLAG_KUSAGE) != 0) is_ca = (X509_get_key_usage(cert) & KU_KEY_CERT_SIGN) != 0;
  if (!is_ca) {
    return inkwire::unexpected(cert_file + " is not a CA certificate (needs basicConstraints CA:TRUE and keyCertSign)");
  }
  auto not_after = x509::asn1_time_to_timestamp(X509_get0_notAfter(cert));
  if (!not_after) return inkwire::unexpected(cert_file + " has an unreadable notAfter");
  if (*not_after <= now) {
    return inkwire::unexpected(cert_file + " expired at " + format_rfc3339(*not_after));
  }
  // Extra certificates (an operator's intermediate and root) travel in chain_pem too.
  std::string all_pem;
  for (const auto& c : certs) {
    auto pem = x509::certificate_pem(c.get());
    if (!pem) return inkwire::unexpected(cert_file + ": " + pem.error());
    all_pem += *pem;
  }
  CaMaterial material{std::move(key), std::move(certs.front()), std::move(all_pem)};
  return material;
}

Expected<Unit, std::string> write_new_file(const std::string& path, std::string_view content, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (fd.get() < 0) return inkwire::unexpected("cannot create " + path + ": " + errno_text(errno));
  // open() applied the umask; the promised mode is exact, not "at most".
  if (::fchmod(fd.get(), mode) != 0) return inkwire::unexpected("cannot chmod " + path + ": " + errno_text(errno));
  while (!content.empty()) {
    ssize_t n = ::write(fd.get(), content.data(), content.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return inkwire::unexpected("cannot write " + path + ": " + errno_text(errno));
    content.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::fsync(fd.get()) != 0 || fd.close() != 0) {
    return inkwire::unexpected("cannot write " + path + ": " + errno_text(errno));
  }
  return Unit{};
}

void sync_directory(const std::string& dir) {
  // Best effort: makes the renames durable; some file systems refuse fsync on a directory.
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() >= 0) ::fsync(fd.get());
}

// mkdir -p with mode 0700 for every directory created here (existing ones are left alone).
Expected<Unit, std::string> make_private_dirs(const std::string& dir) {
  for (std::size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return inkwire::unexpected("cannot create directory " + prefix + ": " + errno_text(errno));
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return inkwire::unexpected(dir + " is not a directory");
  }
  return Unit{};
}

Expected<bool, std::string> file_exists(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return inkwire::unexpected("cannot stat " + path + ": " + errno_text(errno));
}

Expected<CaMaterial, std::string> generate_ca(const std::string& dir, const std::string& cert_path,
                                              const std::string& key_path, Timestamp now) {
  auto key = x509::generate_p256_key();
  if (!key) return inkwire::unexpected(key.error());
  // A random suffix tells installations apart in trust stores and certificate viewers.
  auto suffix = random_hex(4);
  if (!suffix) return inkwire::unexpected(suffix.error());
  auto name = x509::make_name("inkwire installation CA " + *suffix, "inkwire");
  if (!name) return inkwire::unexpected(name.error());

  x509::CertificateSpec spec;
  spec.subject_key = key->get();
  spec.subject = name->get();
  spec.issuer_key = key->get();
  spec.not_before = x509::floor_to_seconds(now) - kClockSkew;
  spec.not_after = x509::floor_to_seconds(now) + kCaLifetime;
  // pathlen:0 - this CA signs leaves only, never another CA.
  spec.basic_constraints = "critical,CA:TRUE,pathlen:0";
  spec.key_usage = "critical,keyCertSign,cRLSign";
  spec.authority_key_id = false;
  auto cert = x509::make_certificate(spec);
  if (!cert) return inkwire::unexpected("cannot create the CA certificate: " + cert.error());
  auto cert_pem = x509::certificate_pem(cert->get());
  if (!cert_pem) return inkwire::unexpected(cert_pem.error());
  auto key_pem = x509::pkcs8_private_key_pem(key->get());
  if (!key_pem) return inkwire::unexpected(key_pem.error());

  auto tag = random_hex(8);
  if (!tag) return inkwire::unexpected(tag.error());
  TempFileGuard key_tmp(key_path + ".tmp-" + *tag);
  TempFileGuard cert_tmp(cert_path + ".tmp-" + *tag);
  if (auto r = write_new_file(key_tmp.path(), *key_pem, 0600); !r) return inkwire::unexpected(r.error());
  if (auto r = write_new_file(cert_tmp.path(), *cert_pem, 0644); !r) return inkwire::unexpected(r.error());
  // Key first, certificate last: readers treat ca.pem as the "CA is complete" marker.
  if (::rename(key_tmp.path().c_str(), key_path.c_str()) != 0) {
    return inkwire::unexpected("cannot rename " + key_tmp.path() + " to " + key_path + ": " + errno_text(errno));
  }
  key_tmp.release();
  if (::rename(cert_tmp.path().c_str(), cert_path.c_str()) != 0) {
    return inkwire::unexpected("cannot rename " + cert_tmp.path() + " to " + cert_path + ": " + errno_text(errno));
  }
  cert_tmp.release();
  sync_directory(dir);

  CaMaterial material{std::move(*key), std::move(*cert), std::move(*cert_pem)};
  return material;
}

}  // namespace

Expected<CaMaterial, std::string> load_ca_files(const std::string& cert_file, const std::string& key_file,
                                                Timestamp now) {
  auto cert_text = read_small_file(cert_file);
  if (!cert_text) return inkwire::unexpected(cert_text.error());
  auto key_text = read_small_file(key_file);
  if (!key_text) return inkwire::unexpected(key_text.error());
  auto certs = parse_certificates(*cert_text, cert_file);
  if (!certs) return inkwire::unexpected(certs.error());
  auto key = parse_private_key(*key_text, key_file);
  // The key text may not outlive this call in memory we do not control.
  OPENSSL_cleanse(key_text->data(), key_text->size());
  if (!key) return inkwire::unexpected(key.error());
  return check_ca(std::move(*key), std::move(*certs), cert_file, key_file, now);
}

Expected<CaMaterial, std::string> load_or_create_ca_dir(const std::string& dir, Timestamp now) {
  if (dir.empty()) return inkwire::unexpected(std::string("ca.dir is empty and no ca.cert_file/ca.key_file given"));
  const std::string cert_path = dir + "/ca.pem";
  const std::string key_path = dir + "/ca.key";

  // Fast path without the lock, so an existing CA also loads from a read-only directory.
  auto cert_exists = file_exists(cert_path);
  if (!cert_exists) return inkwire::unexpected(cert_exists.error());
  auto key_exists = file_exists(key_path);
  if (!key_exists) return inkwire::unexpected(key_exists.error());
  if (*cert_exists && *key_exists) return load_ca_files(cert_path, key_path, now);

  if (auto r = make_private_dirs(dir); !r) return inkwire::unexpected(r.error());
  const std::string lock_path = dir + "/ca.lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (lock.get() < 0) return inkwire::unexpected("cannot open " + lock_path + ": " + errno_text(errno));
  while (::flock(lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return inkwire::unexpected("cannot lock " + lock_path + ": " + errno_text(errno));
  }

  // Another process may have finished generating while we waited for the lock.
  cert_exists = file_exists(cert_path);
  if (!cert_exists) return inkwire::unexpected(cert_exists.error());
  key_exists = file_exists(key_path);
  if (!key_exists) return inkwire::unexpected(key_exists.error());
  if (*cert_exists && *key_exists) return load_ca_files(cert_path, key_path, now);
  if (*cert_exists) return inkwire::unexpected(cert_path + " exists but " + key_path + " is missing");
  if (*key_exists) {
    // Only an interrupted first start leaves a key without a certificate. Never overwrite key
    // material on our own: the operator decides.
    return inkwire::unexpected(key_path + " exists without " + cert_path +
                               " (interrupted first start?); remove it to generate a new CA");
  }
  return generate_ca(dir, cert_path, key_path, now);
}

}  // namespace inkwire::controlplane
