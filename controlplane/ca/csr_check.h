#pragma once
#include <string>
#include <string_view>

#include "common/expected.h"
#include "common/openssl_ptr.h"

// sign-csr's input rules (PROTOCOL.md §2.5.9, §8 A23), apart from the signing itself, so the rules
// can be read in one place. Nothing from the CSR except its public key reaches the certificate:
// requested extensions are checked, never copied.
namespace inkwire::controlplane {

constexpr std::size_t kMaxCsrPemBytes = 64 * 1024;

struct CheckedCsr {
  X509ReqPtr req;
  EVP_PKEY* public_key = nullptr;  // owned by req
  bool is_rsa = false;             // RSA leaves also get keyEncipherment
};

// Exactly one "CERTIFICATE REQUEST" PEM block (surrounding whitespace allowed, nothing else), at most
// 64 KiB; key EC P-256 (named curve) or RSA >= 2048 bits; valid self-signature; exactly one CN,
// equal to `public_host` (ASCII case-insensitive); SAN, if present, only DNS names equal to it.
// Error: one line for a 422 detail.
Expected<CheckedCsr, std::string> check_csr(std::string_view csr_pem, std::string_view public_host);

}  // namespace inkwire::controlplane
