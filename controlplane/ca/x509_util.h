#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/expected.h"
#include "common/openssl_ptr.h"

// Small building blocks over OpenSSL 3 shared by the CA's file handling and its signing paths.
// Every function reports failure as a one-line string and leaves the thread's OpenSSL error queue
// empty, so a later unrelated call never picks up a stale error.
namespace inkwire::controlplane::x509 {

// The oldest queued OpenSSL error as text (or `fallback` if none), clearing the queue.
std::string take_openssl_error(std::string_view fallback = "unknown OpenSSL error");

Expected<EvpPkeyPtr, std::string> generate_p256_key();

// PEM of one certificate, ending in exactly one "\n".
Expected<std::string, std::string> certificate_pem(X509* cert);
// Unencrypted PKCS#8 ("BEGIN PRIVATE KEY"), the format every TLS stack reads.
Expected<std::string, std::string> pkcs8_private_key_pem(EVP_PKEY* key);
// The DER encoding of a certificate (what fingerprints are computed over).
Expected<std::string, std::string> certificate_der(X509* cert);

// A DNS name we are willing to put into a certificate: LDH labels of 1–63 characters, at most 253
// in all, no trailing dot; "*" allowed only as the whole leftmost label when `allow_wildcard`.
bool is_valid_dns_name(std::string_view name, bool allow_wildcard);
bool equals_ignore_ascii_case(std::string_view a, std::string_view b);

std::optional<Timestamp> asn1_time_to_timestamp(const ASN1_TIME* time);
// Truncated to whole seconds, which is all a certificate can hold.
Timestamp floor_to_seconds(Timestamp t);

// What a certificate signed by `issuer_key` should say. Extension values are OpenSSL config
// strings and must be constants: names go through `dns_names`/`ip_addresses`, never a config string.
struct CertificateSpec {
  EVP_PKEY* subject_key = nullptr;  // public key certified
  X509_NAME* subject = nullptr;
  X509* issuer_cert = nullptr;      // null: self-signed (issuer = subject)
  EVP_PKEY* issuer_key = nullptr;
  Timestamp not_before;
  Timestamp not_after;
  const char* basic_constraints = nullptr;   // e.g. "critical,CA:FALSE"
  const char* key_usage = nullptr;           // e.g. "critical,digitalSignature"
  const char* extended_key_usage = nullptr;  // null: none
  bool authority_key_id = true;
  std::vector<std::string> dns_names;     // SAN; validated by the caller
  std::vector<std::string> ip_addresses;  // SAN; textual IPv4/IPv6, parsed strictly here
  bool san_critical = false;              // RFC 5280 §4.2.1.6: required when the subject is empty
};

// Builds and signs a v3 certificate with a random positive 128-bit serial and a SKI.
Expected<X509Ptr, std::string> make_certificate(const CertificateSpec& spec);

// A subject holding just CN=<common_name> (and O=<organization> when not empty).
Expected<X509NamePtr, std::string> make_name(std::string_view common_name, std::string_view organization = {});

// The subject of a server certificate for `name`: CN=<name>, or an empty subject (with a critical
// SAN) when the name is longer than the 64 characters a CN may hold, as public CAs do.
struct LeafSubject {
  X509NamePtr name;
  bool san_critical = false;
};
Expected<LeafSubject, std::string> make_leaf_subject(std::string_view name);

}  // namespace inkwire::controlplane::x509
