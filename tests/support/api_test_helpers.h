#pragma once
// Small helpers shared by the REST API integration tests (tunnels, bad input, API keys and audit
// log): JSON shape checks, an independent RFC 3339 parser, CSR generation with the OpenSSL C API,
// and a minimal parser for raw HTTP responses. Header-only.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/http_client.h"

namespace inkwire::testing::api {

inline constexpr const char* kTunnels = "/api/v1/tunnels";
inline constexpr const char* kTunnelsSlash = "/api/v1/tunnels/";

inline std::string tunnel_path(std::string_view id) { return std::string(kTunnels) + "/" + std::string(id); }

inline std::string create_body(std::string_view name, std::string_view tls_mode = "edge") {
  boost::json::object o;
  o["tunnel_name"] = name;
  o["tls_mode"] = tls_mode;
  return boost::json::serialize(o);
}

// POST /api/v1/tunnels/ the way the SDK sends it (trailing slash, JSON body).
inline HttpResult create_tunnel(const HttpClient& client, const std::string& key, std::string_view name,
                                std::string_view tls_mode = "edge") {
  return client.post(kTunnelsSlash, key, create_body(name, tls_mode));
}

// Creates a tunnel and returns its JSON object (the "tunnel" member); fails the test otherwise.
inline boost::json::object must_create(const HttpClient& client, const std::string& key, std::string_view name,
                                       std::string_view tls_mode = "edge") {
  auto r = create_tunnel(client, key, name, tls_mode);
  EXPECT_EQ(r.status, 201) << "create " << name << ": " << r.body;
  auto v = r.json();
  if (!v.is_object() || !v.as_object().contains("tunnel") || !v.at("tunnel").is_object()) {
    ADD_FAILURE() << "create " << name << " returned no tunnel: " << r.body;
    return {};
  }
  return v.at("tunnel").as_object();
}

inline std::string str(const boost::json::value& v, std::string_view member) {
  if (!v.is_object()) return {};
  const auto* m = v.as_object().if_contains(member);
  if (!m || !m->is_string()) return {};
  return std::string(m->as_string());
}

inline std::string str(const boost::json::object& o, std::string_view member) {
  return str(boost::json::value(o), member);
}

// The status code, a JSON content type and a non-empty string "detail": the error shape of §2.1.
inline ::testing::AssertionResult is_json_error(const HttpResult& r, int status) {
  if (r.status != status)
    return ::testing::AssertionFailure() << "status " << r.status << " (expected " << status << "), body " << r.body;
  const auto type = r.header("content-type").value_or("");
  if (type.rfind("application/json", 0) != 0)
    return ::testing::AssertionFailure() << "content-type '" << type << "' for a " << status << " error";
  const auto v = r.json();
  if (!v.is_object()) return ::testing::AssertionFailure() << "error body is not a JSON object: " << r.body;
  const auto* d = v.as_object().if_contains("detail");
  if (!d || !d->is_string() || d->as_string().empty())
    return ::testing::AssertionFailure() << "error body has no non-empty string detail: " << r.body;
  return ::testing::AssertionSuccess();
}

inline bool is_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// Canonical 8-4-4-4-12 lowercase hex.
inline bool is_canonical_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!is_lower_hex(s.substr(i, 1))) {
      return false;
    }
  }
  return true;
}

inline bool is_base64url(std::string_view s) {
  for (char c : s)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  return true;
}

// Parses "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (UTC with a trailing Z, as our server writes it) into
// microseconds since the epoch. Written independently of the server's own formatter.
inline std::optional<std::int64_t> parse_utc_micros(std::string_view s) {
  auto digits = [&](std::size_t pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, se;
  if (!digits(0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(5, 2, mo) || s[7] != '-' || !digits(8, 2, d) ||
      s[10] != 'T' || !digits(11, 2, h) || s[13] != ':' || !digits(14, 2, mi) || s[16] != ':' || !digits(17, 2, se))
    return std::nullopt;
  std::size_t pos = 19;
  std::int64_t frac = 0;
  if (s[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (n < 6) frac = frac * 10 + (s[pos] - '0');
      ++n;
      ++pos;
    }
    if (n == 0) return std::nullopt;
    for (; n < 6; ++n) frac *= 10;
  }
  if (pos + 1 != s.size() || s[pos] != 'Z') return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(mo)},
                                        std::chrono::day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || se > 59) return std::nullopt;
  const auto days = std::chrono::sys_days{ymd}.time_since_epoch().count();
  return ((static_cast<std::int64_t>(days) * 24 + h) * 60 + mi) * 60'000'000LL + se * 1'000'000LL + frac;
}

template <typename TimePoint>
std::int64_t micros_of(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

inline constexpr std::int64_t kHourMicros = 3'600'000'000LL;
inline constexpr std::int64_t kDayMicros = 24 * kHourMicros;

inline std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xF]);
  }
  return out;
}

struct OpenSslFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};

// A PEM CSR as the SDK builds it (§2.5.9): EC P-256 key, ECDSA-SHA256, subject CN=<cn>, and one
// non-critical SubjectAltName with the given DNS names (none: no extension at all).
inline std::string make_csr_pem(const std::string& cn, const std::vector<std::string>& san_dns) {
  std::unique_ptr<EVP_PKEY, OpenSslFree> key(EVP_EC_gen("P-256"));
  std::unique_ptr<X509_REQ, OpenSslFree> req(X509_REQ_new());
  if (!key || !req) return {};
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                             -1, 0);
  if (!san_dns.empty()) {
    std::string value;
    for (const auto& name : san_dns) value += (value.empty() ? "DNS:" : ",DNS:") + name;
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, value.c_str());
    sk_X509_EXTENSION_push(exts, ext);
    X509_REQ_add_extensions(req.get(), exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  X509_REQ_set_pubkey(req.get(), key.get());
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) return {};
  std::unique_ptr<BIO, OpenSslFree> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req.get());
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

inline std::string csr_body(const std::string& csr_pem) {
  boost::json::object o;
  o["csr_pem"] = csr_pem;
  return boost::json::serialize(o);
}

// The first certificate of a PEM text, or null.
inline std::unique_ptr<X509, OpenSslFree> parse_certificate(std::string_view pem) {
  std::unique_ptr<BIO, OpenSslFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return std::unique_ptr<X509, OpenSslFree>(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

inline std::string certificate_der(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  if (len <= 0) return {};
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

// A response read with HttpClient::send_raw, split into status and body.
struct RawResponse {
  int status = 0;
  std::string head;
  std::string body;
  boost::json::value json() const {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec) return nullptr;
    return v;
  }
};

inline RawResponse parse_raw_response(const std::string& raw) {
  RawResponse r;
  const auto end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return r;
  r.status = std::stoi(raw.substr(9, 3));
  r.head = raw.substr(0, end);
  r.body = raw.substr(end + 4);
  return r;
}

// Every field of the Tunnel object (PROTOCOL.md §2.2) with its JSON type, plus the invariants that
// hold in every state. `public_zone` is the configured zone (public_host = name.zone) and
// `data_plane_host` what the Tunnel JSON must report as `zone`.
inline void expect_tunnel_shape(const boost::json::value& v, std::string_view public_zone,
                                std::string_view data_plane_host) {
  enum class T { string, nullable_string, time, nullable_time, boolean, object };
  static const std::vector<std::pair<const char*, T>> kFields = {
      {"id", T::string},
      {"organization_id", T::string},
      {"tunnel_name", T::string},
      {"description", T::nullable_string},
      {"tls_mode", T::string},
      {"cert_pem", T::nullable_string},
      {"cert_fingerprint_sha256", T::nullable_string},
      {"cert_expires_at", T::nullable_time},
      {"status", T::string},
      {"last_connected_at", T::nullable_time},
      {"last_connected_ip_addr", T::nullable_string},
      {"restore_deadline_at", T::nullable_time},
      {"currently_connected", T::boolean},
      {"public_host", T::string},
      {"zone", T::string},
      {"metadata", T::object},
      {"created_at", T::time},
      {"updated_at", T::time},
  };
  ASSERT_TRUE(v.is_object()) << v;
  const auto& o = v.as_object();
  for (const auto& [name, type] : kFields) {
    SCOPED_TRACE(name);
    const auto* f = o.if_contains(name);
    ASSERT_NE(f, nullptr) << "missing member in " << v;
    switch (type) {
      case T::string: EXPECT_TRUE(f->is_string()) << *f; break;
      case T::nullable_string: EXPECT_TRUE(f->is_string() || f->is_null()) << *f; break;
      case T::time:
        ASSERT_TRUE(f->is_string()) << *f;
        EXPECT_TRUE(parse_utc_micros(f->as_string())) << "not RFC 3339 UTC: " << *f;
        break;
      case T::nullable_time:
        ASSERT_TRUE(f->is_string() || f->is_null()) << *f;
        if (f->is_string()) {
          EXPECT_TRUE(parse_utc_micros(f->as_string())) << "not RFC 3339 UTC: " << *f;
        }
        break;
      case T::boolean: EXPECT_TRUE(f->is_bool()) << *f; break;
      case T::object: EXPECT_TRUE(f->is_object()) << *f; break;
    }
  }
  EXPECT_TRUE(is_canonical_uuid(str(o, "id"))) << o.at("id");
  EXPECT_TRUE(is_canonical_uuid(str(o, "organization_id"))) << o.at("organization_id");
  const std::string mode = str(o, "tls_mode");
  EXPECT_TRUE(mode == "edge" || mode == "passthrough") << mode;
  const std::string status = str(o, "status");
  EXPECT_TRUE(status == "awaiting_cert" || status == "active" || status == "delete_pending" || status == "deleted")
      << status;
  EXPECT_EQ(status == "delete_pending", o.at("restore_deadline_at").is_string()) << "status " << status;
  if (mode == "edge") {
    EXPECT_NE(status, "awaiting_cert");
  }
  EXPECT_EQ(str(o, "public_host"), str(o, "tunnel_name") + "." + std::string(public_zone));
  EXPECT_EQ(str(o, "zone"), data_plane_host);
  const bool has_cert = o.at("cert_pem").is_string();
  EXPECT_EQ(has_cert, o.at("cert_fingerprint_sha256").is_string());
  EXPECT_EQ(has_cert, o.at("cert_expires_at").is_string());
  if (has_cert) {
    const std::string fp = str(o, "cert_fingerprint_sha256");
    EXPECT_EQ(fp.size(), 64u);
    EXPECT_TRUE(is_lower_hex(fp)) << fp;
  }
}

// The id part of an "ApiKey_<uuid>.<secret>" key.
inline std::string key_id_of(std::string_view key) {
  constexpr std::string_view prefix = "ApiKey_";
  if (key.size() < prefix.size() + 36) return {};
  return std::string(key.substr(prefix.size(), 36));
}

}  // namespace inkwire::testing::api
