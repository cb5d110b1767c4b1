#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "common/openssl_ptr.h"
#include "common/clock.h"
#include "common/expected.h"

// The few key and certificate operations a passthrough agent needs (PROTOCOL.md §5), over OpenSSL
// 3 directly. Every function reports failure as one line and leaves the thread's OpenSSL error
// queue empty, so a later unrelated call never picks up a stale error.
namespace inkwire::agent::pki {

// The oldest queued OpenSSL error as text (or `fallback` if none), clearing the queue.
std::string take_openssl_error(std::string_view fallback = "unknown OpenSSL error");

// A fresh EC P-256 key, the only kind the SDKs create.
Expected<EvpPkeyPtr, std::string> generate_p256_key();

// Unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY", LF line endings, 64-character lines): what OpenSSL's
// PEM_write_PrivateKey and the SDKs' key serialisation both write.
Expected<std::string, std::string> private_key_pem(EVP_PKEY* key);
// Any unencrypted private key PEM (PKCS#8 or traditional).
Expected<EvpPkeyPtr, std::string> parse_private_key_pem(std::string_view pem);

// The CSR the SDKs send to sign-csr (§2.5.9): subject CN=<public_host> only, one non-critical
// SubjectAltName DNS:<public_host>, ECDSA-with-SHA256 (SHA-256 for any key), PEM
// "CERTIFICATE REQUEST". `public_host` must be a bare DNS name of at most 64 characters (a CN's
// limit).
Expected<std::string, std::string> make_csr_pem(EVP_PKEY* key, std::string_view public_host);

// The first certificate of a PEM text (the leaf of a cert_chain.pem).
Expected<X509Ptr, std::string> parse_first_certificate(std::string_view pem);
std::optional<Timestamp> certificate_not_after(const X509* cert);
// Whether the certificate certifies exactly this key's public half.
bool certificate_matches_key(const X509* cert, const EVP_PKEY* key);
// 64 lowercase hex characters of SHA-256 over the DER, as the API's cert_fingerprint_sha256 (§8 A22).
std::string certificate_fingerprint_sha256(const X509* cert);

}  // namespace inkwire::agent::pki
