#pragma once
// A tcp-stream envelope of a passthrough tunnel (PROTOCOL.md §4.9, §6.5): the agent opens the tcp
// bridge, terminates the third party's TLS itself with the tunnel's certificate (cert_chain.pem,
// private_key.pem; ALPN h2, http/1.1), and serves the plaintext with the passthrough plaintext
// service. The bridge carries raw TLS bytes in RFC 6455 frames; they are moved between the bridge
// and one end of a local socket pair, and the TLS server runs on the other end, so the TLS code
// is the same TlsSocket that serves every other connection.
#include <boost/asio/awaitable.hpp>

#include "agent/data_plane_session.h"
#include "agent/envelope.h"
#include "agent/http_exchange.h"
#include "agent/plaintext_server.h"
#include "common/random_source.h"
#include "common/tls_server_context.h"

namespace inkwire::agent {

struct PassthroughService {
  SslCtxPtr tls;  // the tunnel's certificate and key, ALPN h2 then http/1.1
  PlaintextServerSettings plaintext;
  std::chrono::seconds bridge_wait{10};      // for the relay's 200 on the CONNECT (§4.9 step 2)
  std::chrono::seconds handshake_timeout{10};
  std::chrono::seconds close_linger{5};      // the other direction, after one ended (§4.9 step 4)
};

// Loads cert_chain.pem and private_key.pem into a server context. Error: one line.
Expected<SslCtxPtr, std::string> make_passthrough_tls_context(const std::string& cert_chain_file,
                                                              const std::string& key_file);

boost::asio::awaitable<ExchangeOutcome> forward_tcp(DataPlaneSession& session, PassthroughService& service,
                                                    HttpForwarder& forwarder, RandomSource& random,
                                                    Envelope& envelope);

}  // namespace inkwire::agent
