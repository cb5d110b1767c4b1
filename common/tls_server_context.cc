#include "common/tls_server_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace inkwire {
namespace {

std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

// The server's list lives in the context's ex-data-free closure: OpenSSL passes it back as `arg`.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void* arg) {
  const auto* server = static_cast<const std::string*>(arg);
  unsigned char* selected = nullptr;
  // SSL_select_next_proto walks the server list in order and picks the first the client offered.
  if (SSL_select_next_proto(&selected, outlen, reinterpret_cast<const unsigned char*>(server->data()),
                            static_cast<unsigned int>(server->size()), in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

void free_alpn_list(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::string*>(ptr);
}

// The ALPN list lives in an ex_data slot of its own, freed by OpenSSL with the SSL_CTX. Not in
// app_data: asio::ssl::context, which may adopt this handle, treats app_data as its own verify
// callback and deletes it as one. The index is registered once per process (OpenSSL's registry).
int alpn_ex_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_alpn_list);
  return index;
}

}  // namespace

void SslCtxDeleter::operator()(SSL_CTX* ctx) const {
  if (ctx) SSL_CTX_free(ctx);
}

std::string alpn_wire_format(const std::vector<std::string>& protocols) {
  std::string out;
  for (const auto& p : protocols) {
    if (p.empty() || p.size() > 255) return {};
    out.push_back(static_cast<char>(p.size()));
    out.append(p);
  }
  return out;
}

Expected<SslCtxPtr, std::string> make_tls_server_context(const TlsServerOptions& options) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return unexpected("cannot create a TLS context: " + openssl_error());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // TLS 1.2: forward-secret AEAD suites only (Mozilla's "intermediate" list); TLS 1.3 suites are
  // all of that kind already, so OpenSSL's defaults stay.
  SSL_CTX_set_cipher_list(ctx.get(),
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), options.cert_chain_file.c_str()) != 1)
    return unexpected("cannot load the certificate chain " + options.cert_chain_file + ": " + openssl_error());
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), options.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return unexpected("cannot load the private key " + options.key_file + ": " + openssl_error());
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return unexpected("the private key " + options.key_file + " does not match " + options.cert_chain_file);
  if (!options.alpn.empty()) {
    auto wire = alpn_wire_format(options.alpn);
    if (wire.empty()) return unexpected("ALPN protocol names must be 1 to 255 bytes");
    auto* owned = new std::string(std::move(wire));
    SSL_CTX_set_ex_data(ctx.get(), alpn_ex_index(), owned);  // freed with the context
    SSL_CTX_set_alpn_select_cb(ctx.get(), select_alpn, owned);
  }
  return ctx;
}

Expected<SslCtxPtr, std::string> make_tls_client_context(const std::string& ca_file,
                                                         const std::vector<std::string>& alpn) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return unexpected("cannot create a TLS context: " + openssl_error());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) ERR_clear_error();
  if (!ca_file.empty() && SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1)
    return unexpected("cannot load the CA file " + ca_file + ": " + openssl_error());
  if (!alpn.empty()) {
    const std::string wire = alpn_wire_format(alpn);
    if (wire.empty() ||
        SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned int>(wire.size())) != 0)
      return unexpected("cannot set the ALPN offer");
  }
  return ctx;
}

}  // namespace inkwire
