#pragma once
#include <string>

#include "common/clock.h"
#include "common/expected.h"
#include "common/openssl_ptr.h"

// Where the installation CA's key and certificate come from: operator files, or a directory in
// which the CA is generated on first start. Kept apart from CertificateAuthority so signing code
// does not mix with file-system races and permissions.
namespace inkwire::controlplane {

struct CaMaterial {
  EvpPkeyPtr key;
  X509Ptr cert;     // the issuing certificate: the first one in the certificate file
  std::string pem;  // every certificate from the file, re-encoded; ends in "\n"
};

// Operator-supplied files. The first certificate must be a CA (basicConstraints CA:TRUE, and
// keyCertSign if it has a keyUsage), unexpired at `now`, and match the (unencrypted) key.
Expected<CaMaterial, std::string> load_ca_files(const std::string& cert_file, const std::string& key_file,
                                                Timestamp now);

// dir/ca.pem + dir/ca.key if both exist; otherwise creates `dir` (0700, with parents) and generates
// an EC P-256 CA there. Safe against several processes starting at once on one host: generation
// happens under an exclusive flock on dir/ca.lock, the files are written under temporary names and
// renamed key first, certificate last, so a present ca.pem always has its key next to it.
Expected<CaMaterial, std::string> load_or_create_ca_dir(const std::string& dir, Timestamp now);

}  // namespace inkwire::controlplane
