#pragma once
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.h"

namespace inkwire::agent {

enum class ControlErrorKind {
  http_status,     // the server answered >= 400 (status and detail set)
  invalid_config,  // bad API URL, missing key, unreadable CA file
  resolve,         // the host name did not resolve
  connect,         // TCP connect failed (refused, unreachable)
  timeout,         // connect or request exceeded its timeout
  tls_handshake,   // TLS failed for another reason than certificate verification
  tls_verify,      // the server's certificate was not trusted or does not name the host
  transport,       // the connection broke while sending or receiving
  bad_response,    // not HTTP, a redirect, or a 2xx without the JSON the contract requires
};

std::string_view to_string(ControlErrorKind kind);

// A failed control-plane call. `detail` is one line: the server's `detail` for http_status,
// otherwise what failed. `operation` names the call ("GET /api/v1/tunnels/{id}").
struct ControlError {
  ControlErrorKind kind = ControlErrorKind::transport;
  int status = 0;
  std::string detail;
  std::string operation;

  // One line: "<operation>: HTTP 404: tunnel not found" / "<operation>: TLS certificate
  // verification failed for host:port: hostname mismatch" ...
  std::string message() const;
  // Anything but an HTTP error status: the server was not reached or did not answer sensibly.
  bool is_transport() const {
    return kind != ControlErrorKind::http_status && kind != ControlErrorKind::bad_response &&
           kind != ControlErrorKind::invalid_config;
  }
};

// The Tunnel object of PROTOCOL.md §2.2. Timestamps stay the server's RFC 3339 strings.
struct Tunnel {
  std::string id;  // canonical UUID
  std::string organization_id;
  std::string tunnel_name;
  std::optional<std::string> description;
  std::string tls_mode;  // "edge" or "passthrough"
  std::optional<std::string> cert_pem;
  std::optional<std::string> cert_fingerprint_sha256;
  std::optional<std::string> cert_expires_at;
  std::string status;  // "awaiting_cert", "active", "delete_pending" (or a value we do not know)
  std::optional<std::string> last_connected_at;
  std::optional<std::string> last_connected_ip_addr;
  std::optional<std::string> restore_deadline_at;
  bool currently_connected = false;
  std::optional<std::string> public_host;  // empty strings are kept as nullopt (the Py SDK's reading)
  std::optional<std::string> zone;
  boost::json::object metadata;  // null on the wire becomes {}
  std::string created_at;
  std::string updated_at;
  boost::json::object json;  // the object as received, for --json output
};

// Create's answer: the tunnel and its connect secret, which is never shown again.
struct CreatedTunnel {
  Tunnel tunnel;
  std::string connect_secret;
  // Set when the metadata PATCH after the create failed (see ControlClient::create).
  std::optional<ControlError> metadata_error;
};

// sign-csr's answer (§2.2 SignedCert).
struct SignedCertificate {
  std::string cert_pem;
  std::string chain_pem;
  std::string cert_fingerprint_sha256;
  std::string cert_expires_at;
};

struct CreateTunnelRequest {
  std::string tunnel_name;
  std::string tls_mode = "edge";
  std::optional<std::string> description;
  // Not part of the create body at commit C (§2.5.3): sent as a PATCH right after the create.
  std::optional<boost::json::object> metadata;
};

// PATCH semantics of §2.5.4: an absent member leaves the field alone.
struct TunnelUpdate {
  std::optional<std::optional<std::string>> description;  // nullopt inside: clear it
  std::optional<boost::json::object> metadata;            // {} clears it
};

struct ControlClientOptions {
  // Like the SDKs' base_url: "https://host[:port][/prefix]"; trailing slashes are dropped and
  // "/api/v1" appended. Plain http:// only for loopback hosts (localhost, 127.0.0.0/8, [::1]).
  std::string api_url;
  std::string api_key;  // sent as X-API-Key; never logged
  // A PEM bundle trusted in addition to the system roots (a private installation's CA).
  std::string ca_file;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};  // resolve + TCP connect
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};  // TLS handshake, request, answer
  // sign-csr may take long upstream (§2.1: the SDKs allow 180 s); a self-hosted CA answers at once.
  std::chrono::milliseconds sign_csr_timeout{std::chrono::seconds(180)};
  std::string user_agent = "inkwire-agent";
};

// The REST client of PROTOCOL.md §2. Calls block (one connection per call, closed after the
// answer): they run before the data plane starts and from the CLI. HTTPS verifies the server's
// certificate against the system roots plus `ca_file`, checking the host name (sent as SNI) or,
// for an IP literal, an IP SAN. Thread-safe: calls share only the immutable TLS context.
class ControlClient {
 public:
  static Expected<ControlClient, ControlError> create(ControlClientOptions options);

  ControlClient(ControlClient&&) noexcept;
  ControlClient& operator=(ControlClient&&) noexcept;
  ~ControlClient();

  // "https://host:port/prefix/api/v1", for messages.
  const std::string& api_base() const;

  Expected<std::vector<Tunnel>, ControlError> list() const;
  Expected<Tunnel, ControlError> get(std::string_view id) const;
  // With metadata: create, then PATCH. If that PATCH fails the tunnel exists anyway and its secret
  // must not be lost, so the answer is still the created tunnel, with `metadata_error` set.
  Expected<CreatedTunnel, ControlError> create(const CreateTunnelRequest& request) const;
  Expected<Tunnel, ControlError> update(std::string_view id, const TunnelUpdate& update) const;
  Expected<Tunnel, ControlError> delete_tunnel(std::string_view id) const;
  Expected<Tunnel, ControlError> restore(std::string_view id) const;
  Expected<Tunnel, ControlError> force_delete(std::string_view id) const;
  // The new connect secret.
  Expected<std::string, ControlError> rotate_secret(std::string_view id) const;
  Expected<SignedCertificate, ControlError> sign_csr(std::string_view id, std::string_view csr_pem) const;

 private:
  struct Impl;
  explicit ControlClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A Tunnel from its JSON (§2.2): the members the Python SDK requires must be there with the right
// types (id a canonical UUID, tls_mode edge or passthrough). Error: one line.
Expected<Tunnel, std::string> parse_tunnel(const boost::json::value& value);

}  // namespace inkwire::agent
