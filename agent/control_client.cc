#include "agent/control_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <exception>
#include <utility>

#include "common/uuid.h"
#include "proto/forward_target.h"

namespace inkwire::agent {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using boost::system::error_code;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// A list of 10,000 tunnels is ~12 MB; anything far beyond that is not a sane answer.
constexpr std::size_t kMaxResponseBody = 64 * 1024 * 1024;
constexpr std::size_t kMaxResponseHeader = 64 * 1024;
constexpr std::size_t kMaxDetail = 500;

// Control characters (a detail may hold newlines) become spaces, runs of spaces collapse, and the
// text is cut at kMaxDetail: every error is one line.
std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(std::min(text.size(), kMaxDetail));
  for (char c : text) {
    const bool space = static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == ' ';
    if (space) {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else {
      out.push_back(c);
    }
    if (out.size() >= kMaxDetail) {
      out += "...";
      break;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string seconds_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

// FastAPI-style validation lists ([{"loc": [...], "msg": "..."}]) read better as "loc: msg; ...".
std::string detail_text(const json::value& detail) {
  if (detail.is_string()) return std::string(detail.as_string());
  if (detail.is_array()) {
    std::string out;
    for (const auto& item : detail.as_array()) {
      const auto* obj = item.if_object();
      const auto* msg = obj ? obj->if_contains("msg") : nullptr;
      if (!msg || !msg->is_string()) return json::serialize(detail);
      if (!out.empty()) out += "; ";
      if (const auto* loc = obj->if_contains("loc"); loc && loc->is_array()) {
        std::string where;
        for (const auto& part : loc->as_array()) {
          if (!where.empty()) where += '.';
          where += part.is_string() ? std::string(part.as_string()) : json::serialize(part);
        }
        if (!where.empty()) out += where + ": ";
      }
      out += msg->as_string();
    }
    return out;
  }
  return json::serialize(detail);
}

// The SDKs' reading of an error body (§2.1): the `detail` member, else the raw text, else the
// status text.
std::string error_detail(std::string_view body, std::string_view reason) {
  error_code ec;
  const json::value v = json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (const auto* d = v.as_object().if_contains("detail")) return one_line(detail_text(*d));
  }
  std::string text = one_line(body);
  if (!text.empty()) return text;
  if (!reason.empty()) return std::string(reason);
  return "no detail";
}

std::string percent_encode_segment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                            c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::optional<std::string> optional_string(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string(v->as_string());
}

// The connect secret travels as an HTTP/2 header value: visible ASCII, no spaces (§2.2).
bool is_visible_ascii(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

struct RawResponse {
  int status = 0;
  std::string reason;
  std::string body;
  std::string location;
};

struct Request {
  http::verb verb = http::verb::get;
  std::string target;
  std::optional<std::string> body;  // nullopt: no body and no Content-Type (bodiless POST, §2.1)
  std::chrono::milliseconds timeout{};
  std::string operation;
};

}  // namespace

std::string_view to_string(ControlErrorKind kind) {
  switch (kind) {
    case ControlErrorKind::http_status: return "http_status";
    case ControlErrorKind::invalid_config: return "invalid_config";
    case ControlErrorKind::resolve: return "resolve";
    case ControlErrorKind::connect: return "connect";
    case ControlErrorKind::timeout: return "timeout";
    case ControlErrorKind::tls_handshake: return "tls_handshake";
    case ControlErrorKind::tls_verify: return "tls_verify";
    case ControlErrorKind::transport: return "transport";
    case ControlErrorKind::bad_response: return "bad_response";
  }
  return "unknown";
}

std::string ControlError::message() const {
  std::string out = operation.empty() ? std::string() : operation + ": ";
  if (kind == ControlErrorKind::http_status) out += "HTTP " + std::to_string(status) + ": ";
  out += detail;
  return out;
}

Expected<Tunnel, std::string> parse_tunnel(const json::value& value) {
  const auto* o = value.if_object();
  if (!o) return unexpected(std::string("a tunnel is not a JSON object"));
  Tunnel t;
  auto required = [&](std::string_view key, std::string& out) -> bool {
    const auto* v = o->if_contains(key);
    if (!v || !v->is_string()) return false;
    out = std::string(v->as_string());
    return true;
  };
  for (auto [key, field] : {std::pair<std::string_view, std::string*>{"id", &t.id},
                            {"organization_id", &t.organization_id},
                            {"tunnel_name", &t.tunnel_name},
                            {"tls_mode", &t.tls_mode},
                            {"status", &t.status},
                            {"created_at", &t.created_at},
                            {"updated_at", &t.updated_at}}) {
    if (!required(key, *field)) return unexpected("a tunnel has no string '" + std::string(key) + "'");
  }
  const auto id = Uuid::parse(t.id);
  if (!id || id->to_string() != t.id) return unexpected("a tunnel's id is not a canonical UUID: '" + one_line(t.id) + "'");
  if (t.tls_mode != "edge" && t.tls_mode != "passthrough")
    return unexpected("tunnel " + t.tunnel_name + " has an unknown tls_mode '" + one_line(t.tls_mode) + "'");
  t.description = optional_string(*o, "description");
  t.cert_pem = optional_string(*o, "cert_pem");
  t.cert_fingerprint_sha256 = optional_string(*o, "cert_fingerprint_sha256");
  t.cert_expires_at = optional_string(*o, "cert_expires_at");
  t.last_connected_at = optional_string(*o, "last_connected_at");
  t.last_connected_ip_addr = optional_string(*o, "last_connected_ip_addr");
  t.restore_deadline_at = optional_string(*o, "restore_deadline_at");
  if (const auto* c = o->if_contains("currently_connected"); c && c->is_bool()) t.currently_connected = c->as_bool();
  // Python skips empty strings here (§2.8); so do we, so the fallbacks apply the same way.
  t.public_host = optional_string(*o, "public_host");
  if (t.public_host && t.public_host->empty()) t.public_host.reset();
  t.zone = optional_string(*o, "zone");
  if (t.zone && t.zone->empty()) t.zone.reset();
  if (const auto* m = o->if_contains("metadata"); m && m->is_object()) t.metadata = m->as_object();
  t.json = *o;
  return t;
}

// ---- the connection ------------------------------------------------------------------------

struct ControlClient::Impl {
  ControlClientOptions options;
  bool tls = false;
  std::string host;         // IPv6 without brackets
  std::string port;         // decimal
  std::string host_header;  // as the URL wrote it, for Host
  bool host_is_ip = false;
  std::string display;      // host:port, for messages
  std::string api_prefix;   // base path + "/api/v1"
  std::string api_base;     // scheme://authority + api_prefix
  std::unique_ptr<ssl::context> tls_context;

  Expected<RawResponse, ControlError> perform(const Request& request) const;
  asio::awaitable<void> run(const Request& request, Expected<RawResponse, ControlError>& out) const;
  template <typename Stream>
  asio::awaitable<Expected<RawResponse, ControlError>> exchange(Stream& stream, const Request& request,
                                                                const bool& expired) const;
  ControlError error(const Request& request, ControlErrorKind kind, std::string detail, int status = 0) const {
    return ControlError{kind, status, std::move(detail), request.operation};
  }
};

Expected<RawResponse, ControlError> ControlClient::Impl::perform(const Request& request) const {
  // A private io_context per call keeps calls independent and lets them block the caller's thread
  // without an executor of their own.
  asio::io_context io(1);
  Expected<RawResponse, ControlError> out = unexpected(error(request, ControlErrorKind::transport, "no answer"));
  asio::co_spawn(io, run(request, out), [&](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        out = unexpected(error(request, ControlErrorKind::transport, one_line(ex.what())));
      } catch (...) {
        out = unexpected(error(request, ControlErrorKind::transport, "unexpected failure"));
      }
    }
  });
  io.run();
  return out;
}

asio::awaitable<void> ControlClient::Impl::run(const Request& request, Expected<RawResponse, ControlError>& out) const {
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  std::optional<ssl::stream<tcp::socket>> tls_stream;
  std::optional<tcp::socket> plain_socket;
  if (tls) {
    tls_stream.emplace(executor, *tls_context);
  } else {
    plain_socket.emplace(executor);
  }
  tcp::socket& socket = tls ? tls_stream->next_layer() : *plain_socket;

  // One watchdog per phase: when it fires, everything pending is cancelled and completes with an
  // error, which is then reported as a timeout of that phase. Its handler may already be queued
  // when the phase ends, or when this coroutine returns, so it acts only while its own phase is
  // still the current one; the phase counter outlives the frame.
  struct Watch {
    std::uint64_t phase = 0;
    bool expired = false;
    tcp::resolver* resolver = nullptr;
    tcp::socket* socket = nullptr;
  };
  auto watch = std::make_shared<Watch>();
  watch->resolver = &resolver;
  watch->socket = &socket;
  struct EndPhases {  // destroyed before the resolver and the socket
    std::shared_ptr<Watch> watch;
    ~EndPhases() { ++watch->phase; }
  } end_phases{watch};
  asio::steady_timer watchdog(executor);
  const bool& expired = watch->expired;
  auto arm = [&](std::chrono::milliseconds d) {
    const std::uint64_t phase = ++watch->phase;
    watchdog.expires_after(d);
    watchdog.async_wait([watch, phase](const error_code& ec) {
      if (ec || watch->phase != phase) return;
      watch->expired = true;
      watch->resolver->cancel();
      error_code ignored;
      watch->socket->close(ignored);
    });
  };

  arm(options.connect_timeout);
  auto [resolve_ec, endpoints] = co_await resolver.async_resolve(host, port, kNoThrow);
  if (resolve_ec) {
    out = unexpected(expired ? error(request, ControlErrorKind::timeout,
                                     "cannot resolve " + host + " within " + seconds_text(options.connect_timeout))
                             : error(request, ControlErrorKind::resolve,
                                     "cannot resolve " + host + ": " + resolve_ec.message()));
    co_return;
  }
  auto [connect_ec, endpoint] = co_await asio::async_connect(socket, endpoints, kNoThrow);
  if (connect_ec) {
    out = unexpected(expired ? error(request, ControlErrorKind::timeout,
                                     "cannot connect to " + display + " within " + seconds_text(options.connect_timeout))
                             : error(request, ControlErrorKind::connect,
                                     "cannot connect to " + display + ": " + connect_ec.message()));
    co_return;
  }
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);

  arm(request.timeout);
  if (tls) {
    SSL* ssl_handle = tls_stream->native_handle();
    // Names: SNI plus a host-name check. IP literals: no SNI (RFC 6066 forbids it) and an IP SAN.
    const int named = host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle), host.c_str())
                                 : (SSL_set_tlsext_host_name(ssl_handle, host.c_str()) == 1 &&
                                    SSL_set1_host(ssl_handle, host.c_str()) == 1);
    if (named != 1) {
      out = unexpected(error(request, ControlErrorKind::invalid_config, "cannot verify TLS for host " + host));
      co_return;
    }
    auto [handshake_ec] = co_await tls_stream->async_handshake(ssl::stream_base::client, kNoThrow);
    if (handshake_ec) {
      const long verify = SSL_get_verify_result(ssl_handle);
      if (expired) {
        out = unexpected(error(request, ControlErrorKind::timeout,
                               "no TLS handshake with " + display + " within " + seconds_text(request.timeout)));
      } else if (verify != X509_V_OK) {
        out = unexpected(error(request, ControlErrorKind::tls_verify,
                               "TLS certificate verification failed for " + display + ": " +
                                   X509_verify_cert_error_string(verify) +
                                   (options.ca_file.empty() ? " (no CA file given)" : "")));
      } else {
        std::string why = one_line(handshake_ec.message());
        // The commonest cause by far: an https:// URL pointing at a plain-HTTP port.
        if (why.find("wrong version number") != std::string::npos) why += " (is the server plain http://?)";
        out = unexpected(error(request, ControlErrorKind::tls_handshake, "TLS handshake with " + display + " failed: " + why));
      }
      co_return;
    }
    out = co_await exchange(*tls_stream, request, expired);
  } else {
    out = co_await exchange(*plain_socket, request, expired);
  }
  ++watch->phase;
  watchdog.cancel();
  socket.close(ignored);
}

template <typename Stream>
asio::awaitable<Expected<RawResponse, ControlError>> ControlClient::Impl::exchange(Stream& stream,
                                                                                   const Request& request,
                                                                                   const bool& expired) const {
  http::request<http::string_body> req{request.verb, request.target, 11};
  req.set(http::field::host, host_header);
  req.set(http::field::user_agent, options.user_agent);
  req.set(http::field::accept, "application/json");
  req.set("X-API-Key", options.api_key);
  if (request.body) {
    req.set(http::field::content_type, "application/json");
    req.body() = *request.body;
  }
  req.keep_alive(false);
  // Content-Length from the body; a bodiless POST (restore, rotate-secret) gets "0" and no
  // Content-Type, as the SDKs send it (§2.1).
  req.prepare_payload();

  auto [write_ec, written] = co_await http::async_write(stream, req, kNoThrow);
  (void)written;
  if (write_ec) {
    if (expired)
      co_return unexpected(error(request, ControlErrorKind::timeout,
                                 "cannot send the request to " + display + " within " + seconds_text(request.timeout)));
    co_return unexpected(error(request, ControlErrorKind::transport,
                               "cannot send the request to " + display + ": " + one_line(write_ec.message())));
  }

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBody);
  parser.header_limit(kMaxResponseHeader);
  auto [read_ec, read] = co_await http::async_read(stream, buffer, parser, kNoThrow);
  (void)read;
  if (read_ec) {
    if (expired)
      co_return unexpected(error(request, ControlErrorKind::timeout,
                                 "no answer from " + display + " within " + seconds_text(request.timeout)));
    if (read_ec == http::error::body_limit)
      co_return unexpected(error(request, ControlErrorKind::bad_response,
                                 "the answer from " + display + " is larger than " +
                                     std::to_string(kMaxResponseBody / (1024 * 1024)) + " MiB"));
    if (read_ec.category() == http::make_error_code(http::error::bad_version).category())
      co_return unexpected(error(request, ControlErrorKind::bad_response,
                                 "the answer from " + display + " is not valid HTTP/1.1: " + one_line(read_ec.message())));
    co_return unexpected(error(request, ControlErrorKind::transport,
                               "the connection to " + display + " failed before the answer: " + one_line(read_ec.message())));
  }
  auto& res = parser.get();
  RawResponse raw;
  raw.status = static_cast<int>(res.result_int());
  raw.reason = std::string(res.reason());
  raw.body = std::move(res.body());
  if (auto it = res.find(http::field::location); it != res.end()) raw.location = std::string(it->value());
  co_return raw;
}

// ---- the client ----------------------------------------------------------------------------

ControlClient::ControlClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControlClient::ControlClient(ControlClient&&) noexcept = default;
ControlClient& ControlClient::operator=(ControlClient&&) noexcept = default;
ControlClient::~ControlClient() = default;

const std::string& ControlClient::api_base() const { return impl_->api_base; }

Expected<ControlClient, ControlError> ControlClient::create(ControlClientOptions options) {
  auto config_error = [](std::string detail) {
    return unexpected(ControlError{ControlErrorKind::invalid_config, 0, std::move(detail), {}});
  };
  if (options.api_url.empty()) return config_error("no API URL given");
  if (options.api_key.empty()) return config_error("no API key given");
  if (!is_visible_ascii(options.api_key)) return config_error("the API key holds spaces or control characters");
  auto target = proto::parse_forward_target(options.api_url, /*allow_remote=*/true);
  if (!target) return config_error("bad API URL '" + one_line(options.api_url) + "': " + target.error());
  auto impl = std::make_unique<Impl>();
  impl->tls = target->scheme == "https";
  if (!impl->tls && !proto::parse_forward_target(options.api_url, /*allow_remote=*/false)) {
    // The SDKs' rule: an API key never crosses a network in the clear.
    return config_error("the API URL " + one_line(options.api_url) +
                        " must use https:// (plain http:// is allowed for loopback hosts only)");
  }
  impl->host = target->host;
  impl->port = target->port_text.empty() ? (impl->tls ? "443" : "80") : target->port_text;
  error_code ec;
  asio::ip::make_address(impl->host, ec);
  impl->host_is_ip = !ec;
  impl->host_header = proto::host_header(*target);
  const bool v6 = impl->host.find(':') != std::string::npos;
  impl->display = (v6 ? "[" + impl->host + "]" : impl->host) + ":" + impl->port;
  std::string base = target->base_path;
  while (!base.empty() && base.back() == '/') base.pop_back();  // like Python: every trailing '/'
  impl->api_prefix = base + "/api/v1";
  impl->api_base = target->scheme + "://" + impl->host_header + impl->api_prefix;

  if (impl->tls) {
    impl->tls_context = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(impl->tls_context->native_handle(), TLS1_2_VERSION);
    impl->tls_context->set_default_verify_paths(ec);  // system roots; a missing store is not fatal
    if (!options.ca_file.empty()) {
      impl->tls_context->load_verify_file(options.ca_file, ec);
      if (ec) return config_error("cannot load the CA file " + options.ca_file + ": " + one_line(ec.message()));
    }
    impl->tls_context->set_verify_mode(ssl::verify_peer);
  }
  impl->options = std::move(options);
  return ControlClient(std::move(impl));
}

namespace {

// Turns a raw answer into the JSON value the contract promises, or the error the SDK would raise.
Expected<json::value, ControlError> expect_json(Expected<RawResponse, ControlError> raw, const std::string& operation) {
  if (!raw) return unexpected(raw.error());
  if (raw->status >= 400)
    return unexpected(ControlError{ControlErrorKind::http_status, raw->status, error_detail(raw->body, raw->reason),
                                   operation});
  if (raw->status >= 300)
    return unexpected(ControlError{ControlErrorKind::bad_response, raw->status,
                                   "unexpected redirect (HTTP " + std::to_string(raw->status) + ")" +
                                       (raw->location.empty() ? "" : " to " + one_line(raw->location)) +
                                       "; is the API URL right?",
                                   operation});
  if (raw->status < 200)
    return unexpected(ControlError{ControlErrorKind::bad_response, raw->status,
                                   "unexpected HTTP " + std::to_string(raw->status), operation});
  error_code ec;
  json::value v = json::parse(raw->body, ec);
  if (ec)
    return unexpected(ControlError{ControlErrorKind::bad_response, raw->status,
                                   "HTTP " + std::to_string(raw->status) + " without a JSON body; is the API URL right?",
                                   operation});
  return v;
}

ControlError bad(const std::string& operation, std::string detail) {
  return ControlError{ControlErrorKind::bad_response, 0, std::move(detail), operation};
}

Expected<Tunnel, ControlError> expect_tunnel(Expected<RawResponse, ControlError> raw, const std::string& operation) {
  auto v = expect_json(std::move(raw), operation);
  if (!v) return unexpected(v.error());
  auto t = parse_tunnel(*v);
  if (!t) return unexpected(bad(operation, t.error()));
  return std::move(*t);
}

}  // namespace

Expected<std::vector<Tunnel>, ControlError> ControlClient::list() const {
  const Request r{http::verb::get, impl_->api_prefix + "/tunnels/", std::nullopt, impl_->options.request_timeout,
                  "list tunnels"};
  auto v = expect_json(impl_->perform(r), r.operation);
  if (!v) return unexpected(v.error());
  // The object form is canonical; both SDKs also take a bare array (§2.2).
  const json::array* items = v->if_array();
  if (const auto* o = v->if_object()) {
    if (const auto* t = o->if_contains("tunnels")) items = t->if_array();
  }
  if (!items) return unexpected(bad(r.operation, "the answer has no 'tunnels' array"));
  std::vector<Tunnel> out;
  out.reserve(items->size());
  for (const auto& item : *items) {
    auto t = parse_tunnel(item);
    if (!t) return unexpected(bad(r.operation, t.error()));
    out.push_back(std::move(*t));
  }
  return out;
}

Expected<Tunnel, ControlError> ControlClient::get(std::string_view id) const {
  const Request r{http::verb::get, impl_->api_prefix + "/tunnels/" + percent_encode_segment(id), std::nullopt,
                  impl_->options.request_timeout, "get tunnel " + one_line(id)};
  return expect_tunnel(impl_->perform(r), r.operation);
}

Expected<CreatedTunnel, ControlError> ControlClient::create(const CreateTunnelRequest& request) const {
  json::object body;
  body["tunnel_name"] = request.tunnel_name;
  body["tls_mode"] = request.tls_mode;
  if (request.description) body["description"] = *request.description;  // left out unless given, as the SDK does
  const Request r{http::verb::post, impl_->api_prefix + "/tunnels/", json::serialize(body),
                  impl_->options.request_timeout, "create tunnel " + one_line(request.tunnel_name)};
  auto v = expect_json(impl_->perform(r), r.operation);
  if (!v) return unexpected(v.error());
  const auto* o = v->if_object();
  const auto* tunnel = o ? o->if_contains("tunnel") : nullptr;
  const auto* secret = o ? o->if_contains("connect_secret") : nullptr;
  if (!tunnel || !secret || !secret->is_string())
    return unexpected(bad(r.operation, "the answer is not {\"tunnel\": ..., \"connect_secret\": ...}"));
  if (!is_visible_ascii(secret->as_string()))
    return unexpected(bad(r.operation, "the connect secret is not visible ASCII"));
  auto t = parse_tunnel(*tunnel);
  if (!t) return unexpected(bad(r.operation, t.error()));
  CreatedTunnel created{std::move(*t), std::string(secret->as_string()), std::nullopt};
  if (request.metadata) {
    TunnelUpdate patch;
    patch.metadata = *request.metadata;
    auto updated = update(created.tunnel.id, patch);
    if (updated) {
      created.tunnel = std::move(*updated);
    } else {
      created.metadata_error = updated.error();
    }
  }
  return created;
}

Expected<Tunnel, ControlError> ControlClient::update(std::string_view id, const TunnelUpdate& update) const {
  json::object body;
  if (update.description) {
    if (*update.description) {
      body["description"] = **update.description;
    } else {
      body["description"] = nullptr;
    }
  }
  if (update.metadata) body["metadata"] = *update.metadata;
  const Request r{http::verb::patch, impl_->api_prefix + "/tunnels/" + percent_encode_segment(id),
                  json::serialize(body), impl_->options.request_timeout, "update tunnel " + one_line(id)};
  return expect_tunnel(impl_->perform(r), r.operation);
}

Expected<Tunnel, ControlError> ControlClient::delete_tunnel(std::string_view id) const {
  const Request r{http::verb::delete_, impl_->api_prefix + "/tunnels/" + percent_encode_segment(id), std::nullopt,
                  impl_->options.request_timeout, "delete tunnel " + one_line(id)};
  return expect_tunnel(impl_->perform(r), r.operation);
}

Expected<Tunnel, ControlError> ControlClient::restore(std::string_view id) const {
  const Request r{http::verb::post, impl_->api_prefix + "/tunnels/" + percent_encode_segment(id) + "/restore",
                  std::nullopt, impl_->options.request_timeout, "restore tunnel " + one_line(id)};
  return expect_tunnel(impl_->perform(r), r.operation);
}

Expected<Tunnel, ControlError> ControlClient::force_delete(std::string_view id) const {
  const Request r{http::verb::delete_, impl_->api_prefix + "/tunnels/" + percent_encode_segment(id) + "/force",
                  std::nullopt, impl_->options.request_timeout, "force-delete tunnel " + one_line(id)};
  return expect_tunnel(impl_->perform(r), r.operation);
}

Expected<std::string, ControlError> ControlClient::rotate_secret(std::string_view id) const {
  const Request r{http::verb::post, impl_->api_prefix + "/tunnels/" + percent_encode_segment(id) + "/rotate-secret",
                  std::nullopt, impl_->options.request_timeout, "rotate the secret of tunnel " + one_line(id)};
  auto v = expect_json(impl_->perform(r), r.operation);
  if (!v) return unexpected(v.error());
  const auto* o = v->if_object();
  const auto* secret = o ? o->if_contains("connect_secret") : nullptr;
  if (!secret || !secret->is_string() || !is_visible_ascii(secret->as_string()))
    return unexpected(bad(r.operation, "the answer has no usable 'connect_secret'"));
  return std::string(secret->as_string());
}

Expected<SignedCertificate, ControlError> ControlClient::sign_csr(std::string_view id, std::string_view csr_pem) const {
  json::object body;
  body["csr_pem"] = csr_pem;
  const Request r{http::verb::post, impl_->api_prefix + "/tunnels/" + percent_encode_segment(id) + "/sign-csr",
                  json::serialize(body), impl_->options.sign_csr_timeout, "sign a certificate for tunnel " + one_line(id)};
  auto v = expect_json(impl_->perform(r), r.operation);
  if (!v) return unexpected(v.error());
  const auto* o = v->if_object();
  if (!o) return unexpected(bad(r.operation, "the answer is not a JSON object"));
  SignedCertificate out;
  for (auto [key, field] : {std::pair<std::string_view, std::string*>{"cert_pem", &out.cert_pem},
                            {"chain_pem", &out.chain_pem},
                            {"cert_fingerprint_sha256", &out.cert_fingerprint_sha256},
                            {"cert_expires_at", &out.cert_expires_at}}) {
    const auto* f = o->if_contains(key);
    if (!f || !f->is_string()) return unexpected(bad(r.operation, "the answer has no string '" + std::string(key) + "'"));
    *field = std::string(f->as_string());
  }
  return out;
}

}  // namespace inkwire::agent
