#include "agent/state_directory.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "agent/pki.h"

namespace inkwire::agent {
namespace {

namespace fs = std::filesystem;

// Bounds on what is read back: the files are a few KiB; a huge file is not ours.
constexpr std::size_t kMaxStateBytes = 1024 * 1024;
constexpr std::size_t kMaxPemBytes = 1024 * 1024;

std::string errno_text(int err) { return std::strerror(err); }

int retry_close(int fd) { return ::close(fd); }  // never retried on EINTR (Linux closes anyway)

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

struct ReadResult {
  int error = 0;  // errno, or EFBIG when over the bound
  std::string data;
};

// Reads a regular file in the directory without following a symlink.
ReadResult read_at(int dir_fd, std::string_view name, std::size_t max_bytes) {
  ReadResult r;
  const std::string n(name);
  const int fd = ::openat(dir_fd, n.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    r.error = errno;
    return r;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    r.error = errno;
    retry_close(fd);
    return r;
  }
  if (!S_ISREG(st.st_mode)) {  // a FIFO or device would block or never end
    r.error = EINVAL;
    retry_close(fd);
    return r;
  }
  char buffer[8192];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      r.error = errno;
      break;
    }
    if (got == 0) break;
    r.data.append(buffer, static_cast<std::size_t>(got));
    if (r.data.size() > max_bytes) {
      r.error = EFBIG;
      break;
    }
  }
  retry_close(fd);
  return r;
}

// A name that cannot collide with another writer's: ".tmp-" + 16 random hex characters.
std::string temporary_name() {
  unsigned char bytes[8];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    // Uniqueness is all that matters here (O_EXCL catches a collision); the pid and address
    // are enough when the CSPRNG is unavailable.
    const auto mix = static_cast<unsigned long long>(::getpid()) ^ reinterpret_cast<std::uintptr_t>(&bytes);
    std::memcpy(bytes, &mix, sizeof bytes);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = ".tmp-";
  for (unsigned char b : bytes) {
    name.push_back(kHex[b >> 4]);
    name.push_back(kHex[b & 0xF]);
  }
  return name;
}

// PEM text with LF line endings that ends in exactly one LF ("" stays "").
std::string normalize_pem(std::string_view pem) {
  std::string out;
  out.reserve(pem.size() + 1);
  for (std::size_t i = 0; i < pem.size(); ++i) {
    if (pem[i] == '\r') {
      if (i + 1 < pem.size() && pem[i + 1] == '\n') continue;  // CRLF -> LF
      out.push_back('\n');                                      // a lone CR ends a line too
      continue;
    }
    out.push_back(pem[i]);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ' || out.back() == '\t')) out.pop_back();
  if (!out.empty()) out.push_back('\n');
  return out;
}

// mkdir -p with 0700 for every directory it creates (existing parents are left as they are).
Expected<Unit, std::string> make_directories(const fs::path& path) {
  fs::path prefix;
  for (const auto& part : path) {
    prefix /= part;
    if (part == "/" || part.empty()) continue;
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST)
      return unexpected("cannot create the state directory " + prefix.string() + ": " + errno_text(errno));
  }
  return Unit{};
}

}  // namespace

Expected<fs::path, std::string> StateDirectory::default_path(std::string_view tunnel_name) {
  const char* home = std::getenv("HOME");
  if (home != nullptr && *home != '\0') return default_path(tunnel_name, fs::path(home));
  // Like Python's Path.home(): fall back to the password database when HOME is unset.
  if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr && *pw->pw_dir != '\0')
    return default_path(tunnel_name, fs::path(pw->pw_dir));
  return unexpected(std::string("cannot find the home directory (HOME is not set); pass a state directory"));
}

fs::path StateDirectory::default_path(std::string_view tunnel_name, const fs::path& home) {
  return home / ".inkbox" / "tunnels" / fs::path(std::string(tunnel_name));
}

Expected<StateDirectory, std::string> StateDirectory::open(fs::path path) {
  if (path.empty()) return unexpected(std::string("the state directory path is empty"));
  // "a/b/" and "a/b" are the same directory; keep the name without a trailing separator so that
  // messages and path() match what the user typed.
  if (!path.has_filename() && path.has_parent_path() && path != path.root_path()) path = path.parent_path();
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode))
      return unexpected("the state directory " + path.string() + " is a symlink; refusing to use it");
    if (!S_ISDIR(st.st_mode)) return unexpected("the state directory " + path.string() + " is not a directory");
  } else if (errno == ENOENT) {
    if (auto made = make_directories(path); !made) return unexpected(made.error());
  } else {
    return unexpected("cannot inspect the state directory " + path.string() + ": " + errno_text(errno));
  }
  // O_NOFOLLOW closes the race between the lstat above and this open.
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP) return unexpected("the state directory " + path.string() + " is a symlink; refusing to use it");
    return unexpected("cannot open the state directory " + path.string() + ": " + errno_text(errno));
  }
  StateDirectory dir(std::move(path), fd);
  if (auto ok = dir.reapply_mode(); !ok) return unexpected(ok.error());
  return dir;
}

StateDirectory::StateDirectory(StateDirectory&& other) noexcept
    : path_(std::move(other.path_)), dir_fd_(std::exchange(other.dir_fd_, -1)) {}

StateDirectory& StateDirectory::operator=(StateDirectory&& other) noexcept {
  if (this != &other) {
    if (dir_fd_ >= 0) retry_close(dir_fd_);
    path_ = std::move(other.path_);
    dir_fd_ = std::exchange(other.dir_fd_, -1);
  }
  return *this;
}

StateDirectory::~StateDirectory() {
  if (dir_fd_ >= 0) retry_close(dir_fd_);
}

std::string StateDirectory::describe(std::string_view name) const { return (path_ / std::string(name)).string(); }

Expected<Unit, std::string> StateDirectory::reapply_mode() const {
  if (::fchmod(dir_fd_, 0700) != 0)
    return unexpected("cannot set mode 0700 on the state directory " + path_.string() + ": " + errno_text(errno));
  return Unit{};
}

std::optional<proto::TunnelState> StateDirectory::read_state() const {
  const ReadResult r = read_at(dir_fd_, kStateFile, kMaxStateBytes);
  if (r.error != 0) return std::nullopt;
  return proto::parse_state_json(r.data);
}

Expected<Unit, std::string> StateDirectory::write_state(const proto::TunnelState& state) {
  if (auto ok = reapply_mode(); !ok) return ok;
  return replace_file(kStateFile, proto::serialize_state_json(state));
}

Expected<Unit, std::string> StateDirectory::replace_file(std::string_view name, std::string_view content) {
  const std::string target(name);
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 8 && fd < 0; ++attempt) {
    tmp = temporary_name();
    fd = ::openat(dir_fd_, tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) return unexpected("cannot create a temporary file in " + path_.string() + ": " + errno_text(errno));
  auto fail = [&](std::string_view what) {
    const int err = errno;
    if (fd >= 0) retry_close(fd);
    ::unlinkat(dir_fd_, tmp.c_str(), 0);
    return unexpected(std::string(what) + " " + describe(target) + ": " + errno_text(err));
  };
  // The umask can only have removed bits from 0600; fchmod makes the mode exactly 0600.
  if (::fchmod(fd, 0600) != 0) return fail("cannot set mode 0600 for");
  if (!write_all(fd, content)) return fail("cannot write");
  if (::fsync(fd) != 0) return fail("cannot sync");
  const int closed = retry_close(fd);
  fd = -1;
  if (closed != 0) return fail("cannot write");
  if (::renameat(dir_fd_, tmp.c_str(), dir_fd_, target.c_str()) != 0) return fail("cannot replace");
  // The rename is durable only once the directory entry is on disk.
  ::fsync(dir_fd_);
  return Unit{};
}

Expected<Unit, std::string> StateDirectory::create_exclusive(std::string_view name, std::string_view content,
                                                             bool& existed) {
  existed = false;
  const std::string target(name);
  const int fd = ::openat(dir_fd_, target.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      existed = true;
      return Unit{};
    }
    return unexpected("cannot create " + describe(target) + ": " + errno_text(errno));
  }
  int err = 0;
  if (::fchmod(fd, 0600) != 0 || !write_all(fd, content) || ::fsync(fd) != 0) err = errno;
  if (retry_close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    // A half-written key or certificate would be worse than none: remove it.
    ::unlinkat(dir_fd_, target.c_str(), 0);
    return unexpected("cannot write " + describe(target) + ": " + errno_text(err));
  }
  ::fsync(dir_fd_);
  return Unit{};
}

Expected<EvpPkeyPtr, std::string> StateDirectory::load_private_key() const {
  const ReadResult r = read_at(dir_fd_, kPrivateKeyFile, kMaxPemBytes);
  if (r.error != 0) return unexpected("cannot read " + describe(kPrivateKeyFile) + ": " + errno_text(r.error));
  auto key = pki::parse_private_key_pem(r.data);
  if (!key)
    return unexpected(describe(kPrivateKeyFile) + " is not a usable private key (" + key.error() +
                      "); move it away to have a new key created");
  return key;
}

Expected<EvpPkeyPtr, std::string> StateDirectory::load_or_create_private_key() {
  if (auto ok = reapply_mode(); !ok) return unexpected(ok.error());
  // Two rounds at most: if another process creates the key between our read and our O_EXCL
  // create, its key is the one to use.
  for (int round = 0; round < 2; ++round) {
    const ReadResult r = read_at(dir_fd_, kPrivateKeyFile, kMaxPemBytes);
    if (r.error == 0) {
      auto key = pki::parse_private_key_pem(r.data);
      if (!key)
        return unexpected(describe(kPrivateKeyFile) + " is not a usable private key (" + key.error() +
                          "); move it away to have a new key created");
      // Tighten a key file someone loosened; never loosen anything.
      const std::string name(kPrivateKeyFile);
      struct stat st {};
      if (::fstatat(dir_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
          (st.st_mode & 077) != 0)
        ::fchmodat(dir_fd_, name.c_str(), st.st_mode & 0700, 0);
      return key;
    }
    if (r.error != ENOENT) return unexpected("cannot read " + describe(kPrivateKeyFile) + ": " + errno_text(r.error));
    auto key = pki::generate_p256_key();
    if (!key) return unexpected(key.error());
    auto pem = pki::private_key_pem(key->get());
    if (!pem) return unexpected(pem.error());
    bool existed = false;
    if (auto ok = create_exclusive(kPrivateKeyFile, *pem, existed); !ok) return unexpected(ok.error());
    if (!existed) return key;
  }
  return unexpected("cannot create " + describe(kPrivateKeyFile) + ": another process keeps replacing it");
}

Expected<Unit, std::string> StateDirectory::write_cert_chain(std::string_view cert_pem, std::string_view chain_pem) {
  if (auto ok = reapply_mode(); !ok) return ok;
  const std::string content = normalize_pem(cert_pem) + normalize_pem(chain_pem);
  bool existed = false;
  if (auto ok = create_exclusive(kCertChainFile, content, existed); !ok) return ok;
  if (existed) return replace_file(kCertChainFile, content);
  return Unit{};
}

CertificateCheck StateDirectory::check_certificate(const EVP_PKEY* key, Timestamp now) const {
  CertificateCheck check;
  const ReadResult r = read_at(dir_fd_, kCertChainFile, kMaxPemBytes);
  if (r.error == ENOENT) {
    check.status = CertificateStatus::missing;
    check.reason = describe(kCertChainFile) + " does not exist";
    return check;
  }
  if (r.error != 0) {
    check.status = CertificateStatus::unreadable;
    check.reason = "cannot read " + describe(kCertChainFile) + ": " + errno_text(r.error);
    return check;
  }
  auto cert = pki::parse_first_certificate(r.data);
  if (!cert) {
    check.status = CertificateStatus::unreadable;
    check.reason = describe(kCertChainFile) + " holds no readable certificate (" + cert.error() + ")";
    return check;
  }
  check.not_after = pki::certificate_not_after(cert->get());
  if (!pki::certificate_matches_key(cert->get(), key)) {
    check.status = CertificateStatus::key_mismatch;
    check.reason = "the certificate in " + describe(kCertChainFile) + " is for another key than " +
                   describe(kPrivateKeyFile);
    return check;
  }
  if (!check.not_after || *check.not_after - now < kRenewBefore) {
    check.status = CertificateStatus::expiring;
    check.reason = "the certificate in " + describe(kCertChainFile) + " expires in less than 14 days";
    return check;
  }
  check.status = CertificateStatus::valid;
  return check;
}

Expected<std::string, std::string> StateDirectory::build_csr(std::string_view public_host) {
  auto key = load_or_create_private_key();
  if (!key) return unexpected(key.error());
  return pki::make_csr_pem(key->get(), public_host);
}

}  // namespace inkwire::agent
