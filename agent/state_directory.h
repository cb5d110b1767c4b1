#pragma once
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/openssl_ptr.h"
#include "common/clock.h"
#include "common/expected.h"
#include "proto/tunnel_state.h"

namespace inkwire::agent {

// Whether the passthrough certificate on disk can be used as it is (PROTOCOL.md §5).
enum class CertificateStatus {
  valid,
  missing,       // no cert_chain.pem
  unreadable,    // cannot be read, or its first block is not a certificate
  expiring,      // fewer than 14 days left (or already expired)
  key_mismatch,  // certifies another key than private_key.pem
};

struct CertificateCheck {
  CertificateStatus status = CertificateStatus::missing;
  std::string reason;                  // one line, for logs and status messages
  std::optional<Timestamp> not_after;  // when a certificate was read
  bool needs_signing() const { return status != CertificateStatus::valid; }
};

// The agent's state directory, in the layout and with the permissions the official SDKs use
// (PROTOCOL.md §5), so one directory can be shared between them and us:
//   (dir) 0700 | state.json 0600 | private_key.pem 0600 | cert_chain.pem 0600.
// Every file operation goes through a descriptor of the directory opened with O_NOFOLLOW, so a
// directory swapped for a symlink after open() is never followed. Errors are one line naming the
// file. Move-only; not thread-safe (one agent per state directory, like the SDKs).
class StateDirectory {
 public:
  // Re-sign when fewer than this many days are left on the certificate.
  static constexpr std::chrono::hours kRenewBefore{14 * 24};

  // ~/.inkbox/tunnels/{name}, from $HOME (else the password database's home directory).
  static Expected<std::filesystem::path, std::string> default_path(std::string_view tunnel_name);
  // The same with an explicit home directory (tests).
  static std::filesystem::path default_path(std::string_view tunnel_name, const std::filesystem::path& home);

  // Creates the directory and any missing parents (0700), refuses a symlink or a non-directory at
  // `path`, and sets its mode to 0700 (re-applied on every use, as the SDKs do).
  static Expected<StateDirectory, std::string> open(std::filesystem::path path);

  StateDirectory(StateDirectory&& other) noexcept;
  StateDirectory& operator=(StateDirectory&& other) noexcept;
  StateDirectory(const StateDirectory&) = delete;
  StateDirectory& operator=(const StateDirectory&) = delete;
  ~StateDirectory();

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path state_file() const { return path_ / kStateFile; }
  std::filesystem::path private_key_file() const { return path_ / kPrivateKeyFile; }
  std::filesystem::path cert_chain_file() const { return path_ / kCertChainFile; }

  // state.json; a missing, unreadable or corrupt file is "no state" (nullopt), as in the SDKs.
  std::optional<proto::TunnelState> read_state() const;
  // Atomically: a ".tmp-*" file in the directory (0600), fsync, rename over state.json, fsync the
  // directory. The bytes are the Python SDK's (sorted keys, 2-space indent, no trailing newline).
  Expected<Unit, std::string> write_state(const proto::TunnelState& state);

  // private_key.pem, created on first use (EC P-256, PKCS#8 PEM, O_CREAT|O_EXCL|O_NOFOLLOW, 0600).
  // An existing file that is not an unencrypted private key is an error (never silently replaced:
  // it may be the only copy of a key someone relies on).
  Expected<EvpPkeyPtr, std::string> load_or_create_private_key();
  Expected<EvpPkeyPtr, std::string> load_private_key() const;

  // cert_chain.pem = leaf PEM then chain PEM, each with LF line endings and ending in exactly one
  // LF (the TS SDK's form; an empty chain adds nothing). Created with O_EXCL the first time,
  // replaced atomically afterwards.
  Expected<Unit, std::string> write_cert_chain(std::string_view cert_pem, std::string_view chain_pem);
  // Reads cert_chain.pem's first certificate and decides whether it must be signed again: missing
  // or unreadable, certifying another key than `key`, or expiring within kRenewBefore of `now`.
  CertificateCheck check_certificate(const EVP_PKEY* key, Timestamp now) const;

  // A CSR for `public_host` (CN + non-critical SAN DNS, ECDSA-SHA256, PEM) over the key on disk,
  // which is created if missing.
  Expected<std::string, std::string> build_csr(std::string_view public_host);

  static constexpr std::string_view kStateFile = "state.json";
  static constexpr std::string_view kPrivateKeyFile = "private_key.pem";
  static constexpr std::string_view kCertChainFile = "cert_chain.pem";

 private:
  StateDirectory(std::filesystem::path path, int dir_fd) : path_(std::move(path)), dir_fd_(dir_fd) {}

  Expected<Unit, std::string> reapply_mode() const;
  Expected<Unit, std::string> replace_file(std::string_view name, std::string_view content);
  Expected<Unit, std::string> create_exclusive(std::string_view name, std::string_view content, bool& existed);
  std::string describe(std::string_view name) const;

  std::filesystem::path path_;
  int dir_fd_ = -1;
};

}  // namespace inkwire::agent
