#pragma once
#include <memory>
#include <string>
#include <vector>

#include "common/expected.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace inkwire {

struct TlsServerOptions {
  std::string cert_chain_file;     // PEM: leaf first, then intermediates
  std::string key_file;            // PEM private key (secret: never logged)
  std::vector<std::string> alpn;   // server preference order, e.g. {"h2"} for the relay
};

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const;
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// A server TLS context for the relay and edge listeners: TLS 1.2 or newer, the certificate chain
// and key (checked to match), compression and renegotiation off, and ALPN chosen in server
// preference order. A client that offers ALPN but none of ours gets the no_application_protocol
// alert (RFC 7301 §3.2) — an agent must never end up speaking HTTP/1.1 to the relay by accident.
// Error: one line naming the file. (Asio's ssl::context can adopt the returned handle.)
Expected<SslCtxPtr, std::string> make_tls_server_context(const TlsServerOptions& options);

// A client TLS context (the agent): TLS 1.2 or newer, peer verification against the system roots
// plus `ca_file` when given, and the ALPN offer. Error: one line.
Expected<SslCtxPtr, std::string> make_tls_client_context(const std::string& ca_file,
                                                         const std::vector<std::string>& alpn);

// ALPN wire format ("\x02h2\x08http/1.1") of a protocol list; empty when a name is empty or > 255.
std::string alpn_wire_format(const std::vector<std::string>& protocols);

}  // namespace inkwire
