#pragma once
#include <memory>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

// Owning handles for the OpenSSL objects the agent touches, so no error path can leak one. The
// agent does not link the control plane, so it has its own small set.
namespace inkwire::agent {

template <auto Free>
struct OpenSslDeleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};

using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<&BIO_free_all>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<&EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<&X509_free>>;
using X509ReqPtr = std::unique_ptr<X509_REQ, OpenSslDeleter<&X509_REQ_free>>;

}  // namespace inkwire::agent
