#pragma once
// Helpers shared by the lifecycle integration tests (tests/integration/controlplane/{concurrency,
// lifecycle_reaper,notify,connect_sequence,migration}_test.cc). Header-only.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/time_format.h"
#include "tests/support/http_client.h"

namespace inkwire::testing {

inline const std::string kTunnels = "/api/v1/tunnels/";  // list/create form the SDK uses

inline std::string tunnel_path(const std::string& id, const std::string& suffix = "") {
  return "/api/v1/tunnels/" + id + suffix;
}

inline std::string create_body(const std::string& name, const std::string& tls_mode = "edge") {
  boost::json::object o;
  o["tunnel_name"] = name;
  o["tls_mode"] = tls_mode;
  return boost::json::serialize(o);
}

// The status, detail and body of a response, for failure messages.
inline std::string describe(const HttpResult& r) { return std::to_string(r.status) + " " + r.body; }

// Throws (failing the test) unless `r` has status `want`; returns the parsed body.
inline boost::json::value expect_status(const HttpResult& r, int want, const std::string& what) {
  if (r.status != want) throw std::runtime_error(what + ": expected " + std::to_string(want) + ", got " + describe(r));
  return r.json();
}

inline std::string str(const boost::json::value& v, std::string_view key) {
  if (!v.is_object()) throw std::runtime_error("not a JSON object: " + boost::json::serialize(v));
  const auto* m = v.as_object().if_contains(key);
  if (!m || !m->is_string())
    throw std::runtime_error("member '" + std::string(key) + "' missing or not a string in " +
                             boost::json::serialize(v));
  return std::string(m->as_string());
}

inline bool is_null_member(const boost::json::value& v, std::string_view key) {
  if (!v.is_object()) return false;
  const auto* m = v.as_object().if_contains(key);
  return m && m->is_null();
}

// Creates a tunnel (must answer 201); returns {id, connect_secret}.
inline std::pair<std::string, std::string> create_tunnel(const HttpClient& client, const std::string& key,
                                                         const std::string& name,
                                                         const std::string& tls_mode = "edge") {
  auto body = expect_status(client.post(kTunnels, key, create_body(name, tls_mode)), 201, "create " + name);
  return {str(body.at("tunnel"), "id"), str(body, "connect_secret")};
}

inline Timestamp parse_time(const std::string& text) {
  auto t = parse_rfc3339(text);
  if (!t) throw std::runtime_error("not an RFC 3339 timestamp: " + text);
  return *t;
}

inline std::string format_time(Timestamp t) { return format_rfc3339(t); }

// One GET of a tunnel, classified: the consistency checks of the race tests use this.
struct TunnelState {
  int http_status = 0;        // 200 or 404 (anything else is a failure of its own)
  std::string status;         // wire status when 200
  bool has_deadline = false;  // restore_deadline_at is a string (not null)
  std::string body;
};

inline TunnelState get_state(const HttpClient& client, const std::string& key, const std::string& id) {
  auto r = client.get(tunnel_path(id), key);
  TunnelState s;
  s.http_status = r.status;
  s.body = r.body;
  if (r.status == 200) {
    auto v = r.json();
    s.status = str(v, "status");
    const auto* d = v.as_object().if_contains("restore_deadline_at");
    s.has_deadline = d && d->is_string();
  }
  return s;
}

// Runs fn(0..n-1) on n threads released together (a latch), and waits for all of them at most
// `limit`. Exceptions thrown by fn are rethrown here (the first one). Each fn must itself be
// bounded (HttpClient requests are), so the threads are always joinable.
inline void run_together(int n, const std::function<void(int)>& fn,
                         std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  std::latch ready(n + 1);
  std::mutex mutex;
  std::condition_variable done_cv;
  int done = 0;
  std::exception_ptr first_error;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      ready.arrive_and_wait();
      std::exception_ptr error;
      try {
        fn(i);
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard lock(mutex);
      if (error && !first_error) first_error = error;
      ++done;
      done_cv.notify_all();
    });
  }
  ready.arrive_and_wait();
  bool finished;
  {
    std::unique_lock lock(mutex);
    finished = done_cv.wait_for(lock, limit, [&] { return done == n; });
  }
  // Joining is bounded by fn's own timeouts; a hung thread has already been reported below.
  if (!finished) ADD_FAILURE() << "threads did not finish within " << limit.count() << " ms";
  for (auto& t : threads) t.join();
  if (first_error) std::rethrow_exception(first_error);
}

// Sends requests the way the official SDKs do (PROTOCOL.md §2.1): X-API-Key, Accept (added by
// HttpClient), Content-Type only with a JSON body, bodiless POSTs without body or Content-Type,
// plus httpx's own User-Agent and Accept-Encoding. Every response is kept for the checks below.
class SdkClient {
 public:
  SdkClient(HttpClient client, std::string key) : client_(std::move(client)), key_(std::move(key)) {}

  HttpResult get(const std::string& target) { return send("GET", target, std::nullopt); }
  HttpResult post_json(const std::string& target, std::string body) { return send("POST", target, std::move(body)); }
  HttpResult post_empty(const std::string& target) { return send("POST", target, std::nullopt); }
  HttpResult patch_json(const std::string& target, std::string body) { return send("PATCH", target, std::move(body)); }
  HttpResult del(const std::string& target) { return send("DELETE", target, std::nullopt); }

  // Every response so far: no redirect, and every 2xx carries a JSON body (an object).
  void check_all_responses() const {
    for (const auto& [what, r] : log_) {
      EXPECT_FALSE(r.status >= 300 && r.status < 400) << what << " answered a redirect: " << describe(r);
      EXPECT_FALSE(r.header("location").has_value()) << what << " sent a Location header";
      if (r.status >= 200 && r.status < 300) {
        EXPECT_TRUE(r.json().is_object()) << what << " answered 2xx without a JSON object body: " << describe(r);
        auto type = r.header("content-type");
        EXPECT_TRUE(type && type->starts_with("application/json"))
            << what << " content-type " << type.value_or("(none)");
      } else {
        EXPECT_FALSE(r.detail().empty()) << what << " error without a string detail: " << describe(r);
      }
      EXPECT_FALSE(r.header("set-cookie").has_value()) << what << " sets a cookie";
      EXPECT_FALSE(r.header("content-encoding").has_value()) << what << " encoded the body";
    }
  }
  std::size_t requests() const { return log_.size(); }

 private:
  HttpResult send(const std::string& method, const std::string& target, std::optional<std::string> body) {
    HttpRequestSpec spec;
    spec.method = method;
    spec.target = target;
    spec.headers = {{"X-API-Key", key_}, {"User-Agent", "python-httpx/0.27.0"}, {"Accept-Encoding", "gzip, deflate"}};
    spec.body = std::move(body);
    spec.content_type = "application/json";
    auto r = client_.send(spec);
    log_.emplace_back(method + " " + target, r);
    return r;
  }

  HttpClient client_;
  std::string key_;
  std::vector<std::pair<std::string, HttpResult>> log_;
};

// A LISTEN on one NOTIFY channel over its own libpqxx connection.
//
// Tunnel changes are written to the tunnel_events outbox in the changing transaction and NOTIFYd
// by PgEventPublisher right after the commit (migrations/0002), so an event may reach listeners a
// moment after the HTTP answer. `collect()` therefore first waits (bounded) until the outbox holds
// no unpublished row, which means every event of every answered call has been NOTIFYd by a
// committed transaction; then it sends a sentinel of its own and returns every payload that
// arrived before it (PostgreSQL delivers notifications in commit order). No sleeping-and-hoping.
class ChannelListener {
 public:
  // Listens from now on: events of changes made before are published (the outbox drained) and
  // dropped here, so a later collect() sees only what happened after construction.
  ChannelListener(const std::string& url, const std::string& channel)
      : conn_(url), receiver_(conn_, channel, payloads_) {
    collect();
  }

  // Payloads received before a fresh sentinel, waiting at most `limit` in all.
  std::vector<std::string> collect(std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    wait_for_outbox(deadline);
    const std::string sentinel = "sentinel-" + std::to_string(++sentinels_);
    {
      pqxx::nontransaction tx(conn_);
      tx.exec("SELECT pg_notify(" + tx.quote(receiver_.channel()) + ", " + tx.quote(sentinel) + ")");
    }
    std::vector<std::string> out;
    for (;;) {
      conn_.get_notifs();
      while (!payloads_.empty()) {
        std::string p = std::move(payloads_.front());
        payloads_.pop_front();
        if (p == sentinel) return out;
        if (!p.starts_with("sentinel-")) out.push_back(std::move(p));
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error("no NOTIFY sentinel on " + receiver_.channel() + " within limit");
      conn_.await_notification(static_cast<long>(left.count() / 1'000'000),
                               static_cast<long>(left.count() % 1'000'000));
    }
  }

  // collect(), parsed as JSON objects (tunnel events).
  std::vector<boost::json::object> collect_json(std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    std::vector<boost::json::object> out;
    for (const auto& p : collect(limit)) {
      boost::system::error_code ec;
      auto v = boost::json::parse(p, ec);
      if (ec || !v.is_object()) throw std::runtime_error("NOTIFY payload is not a JSON object: " + p);
      out.push_back(std::move(v.as_object()));
    }
    return out;
  }

 private:
  class Receiver final : public pqxx::notification_receiver {
   public:
    Receiver(pqxx::connection_base& c, const std::string& channel, std::deque<std::string>& sink)
        : pqxx::notification_receiver(c, channel), sink_(sink) {}
    void operator()(const std::string& payload, int) override { sink_.push_back(payload); }

   private:
    std::deque<std::string>& sink_;
  };

  // Until no event in the outbox is unpublished.
  void wait_for_outbox(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      {
        pqxx::nontransaction tx(conn_);
        auto r = tx.exec1("SELECT count(*) FROM tunnel_events WHERE published_at IS NULL");
        if (r[0].as<long>() == 0) return;
      }
      if (std::chrono::steady_clock::now() >= deadline)
        throw std::runtime_error("tunnel events still unpublished in the outbox after the time limit");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  pqxx::connection conn_;
  std::deque<std::string> payloads_;
  Receiver receiver_;
  int sentinels_ = 0;
};

inline std::string member_string(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string("(missing)");
}

// Sum of every sample of a counter family in a Prometheus text exposition (GET /metrics).
inline double metric_value(const std::string& exposition, const std::string& name) {
  double total = 0;
  bool found = false;
  std::size_t pos = 0;
  while (pos < exposition.size()) {
    auto end = exposition.find('\n', pos);
    if (end == std::string::npos) end = exposition.size();
    std::string_view line(exposition.data() + pos, end - pos);
    pos = end + 1;
    if (line.starts_with("#") || !line.starts_with(name)) continue;
    const auto rest = line.substr(name.size());
    if (!rest.empty() && rest[0] != ' ' && rest[0] != '{') continue;
    const auto space = line.rfind(' ');
    total += std::stod(std::string(line.substr(space + 1)));
    found = true;
  }
  if (!found) throw std::runtime_error("metric " + name + " not in the exposition");
  return total;
}

// ---- Passthrough certificates: what the SDK does with OpenSSL (PROTOCOL.md §2.5.9, §5) ----

struct KeyAndCsr {
  std::shared_ptr<EVP_PKEY> key;
  std::string csr_pem;
};

// EC P-256 key and an ECDSA-SHA256 CSR with subject CN=`cn` and, unless `san_dns` is empty, one
// non-critical subjectAltName holding DNS:<each name>.
inline KeyAndCsr make_ec_csr(const std::string& cn, const std::vector<std::string>& san_dns) {
  KeyAndCsr out;
  out.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
  if (!out.key) throw std::runtime_error("EC P-256 key generation failed");
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> req(X509_REQ_new(), X509_REQ_free);
  bool ok = req && X509_REQ_set_version(req.get(), 0) == 1;
  X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  ok = ok && X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()),
                                        -1, -1, 0) == 1;
  ok = ok && X509_REQ_set_pubkey(req.get(), out.key.get()) == 1;
  if (ok && !san_dns.empty()) {
    std::string value;
    for (const auto& d : san_dns) value += (value.empty() ? "DNS:" : ",DNS:") + d;
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, value.c_str());
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    ok = san && exts && X509_EXTENSION_get_critical(san) == 0 && sk_X509_EXTENSION_push(exts, san) > 0;
    if (ok) san = nullptr;  // owned by exts now
    ok = ok && X509_REQ_add_extensions(req.get(), exts) == 1;
    if (san) X509_EXTENSION_free(san);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  ok = ok && X509_REQ_sign(req.get(), out.key.get(), EVP_sha256()) > 0;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  ok = ok && bio && PEM_write_bio_X509_REQ(bio.get(), req.get()) == 1;
  if (!ok) throw std::runtime_error("building the CSR failed");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  out.csr_pem.assign(data, static_cast<std::size_t>(n));
  return out;
}

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

inline std::vector<X509Ptr> read_certs(const std::string& pem) {
  std::vector<X509Ptr> out;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(c, X509_free);
  return out;
}

inline std::string sha256_fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return {};
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < len; ++i) {
    s += hex[md[i] >> 4];
    s += hex[md[i] & 15];
  }
  return s;
}

// "" when `cert_pem` is one leaf that chains to `chain_pem` (X509_verify_cert at time `at`, TLS
// server purpose, host `host`) and holds the public half of `key`; otherwise what is wrong.
inline std::string verify_leaf(const std::string& cert_pem, const std::string& chain_pem, EVP_PKEY* key,
                               const std::string& host, Timestamp at) {
  auto leaves = read_certs(cert_pem);
  if (leaves.size() != 1) return "cert_pem holds " + std::to_string(leaves.size()) + " certificates, expected 1";
  auto chain = read_certs(chain_pem);
  if (chain.empty()) return "chain_pem holds no certificate";
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  for (auto& c : chain) X509_STORE_add_cert(store.get(), c.get());
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaves[0].get(), nullptr) != 1) return "X509_STORE_CTX_init failed";
  X509_STORE_CTX_set_time(
      ctx.get(), 0,
      std::chrono::system_clock::to_time_t(std::chrono::time_point_cast<std::chrono::system_clock::duration>(at)));
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx.get()), host.c_str(), host.size());
  if (X509_verify_cert(ctx.get()) != 1)
    return std::string("X509_verify_cert: ") + X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  if (X509_check_private_key(leaves[0].get(), key) != 1) return "the leaf does not match the private key";
  return {};
}

}  // namespace inkwire::testing
