#include "proto/envelope.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <optional>

#include "proto/request_target.h"

namespace inkwire::proto {

namespace {

using Code = EnvelopeError::Code;

// Request ids and bridge ids end up in /_system/response/{id} and friends (§4.6).
constexpr std::size_t kMaxIdLength = 128;
// Methods are short tokens; a long one would only eat the agent's header budget.
constexpr std::size_t kMaxMethodLength = 64;
constexpr std::size_t kMaxSniLength = 253;
// Room the relay needs after us: content-length with up to 20 digits (§4.1 counts it).
constexpr std::size_t kContentLengthReserve = std::string_view("content-length").size() + 20 + kHpackFieldOverhead;

Unexpected<EnvelopeError> fail(Code code, int status, std::string_view reason, std::string header_name = {}) {
  return unexpected(EnvelopeError{code, status, reason, std::move(header_name)});
}

bool is_url_path_safe_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  for (char c : id) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                            c == '-' || c == '.' || c == '_' || c == '~';
    if (!unreserved) return false;
  }
  return id != "." && id != "..";  // would be dot segments inside the control path
}

// §4.6: "one plain address (IPv6 without brackets)". Brackets and a zone id are stripped and an
// IPv4-mapped IPv6 address becomes dotted IPv4, which is what X-Forwarded-For readers expect from a
// dual-stack listener. Anything that does not parse is left out rather than sent: the header is only
// recommended, and an odd string could break the agent's session (§4.1).
std::optional<std::string> plain_ip_address(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (const auto zone = text.find('%'); zone != std::string_view::npos) text = text.substr(0, zone);
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  const std::string c_text(text);
  char buf[INET6_ADDRSTRLEN] = {};
  in_addr v4{};
  if (inet_pton(AF_INET, c_text.c_str(), &v4) == 1) {
    if (inet_ntop(AF_INET, &v4, buf, sizeof buf) == nullptr) return std::nullopt;
    return std::string(buf);
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, c_text.c_str(), &v6) != 1) return std::nullopt;
  static constexpr std::array<unsigned char, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), v6.s6_addr)) {
    std::copy(v6.s6_addr + 12, v6.s6_addr + 16, reinterpret_cast<unsigned char*>(&v4.s_addr));
    if (inet_ntop(AF_INET, &v4, buf, sizeof buf) == nullptr) return std::nullopt;
    return std::string(buf);
  }
  if (inet_ntop(AF_INET6, &v6, buf, sizeof buf) == nullptr) return std::nullopt;
  return std::string(buf);
}

// The SNI is optional metadata; a name that is not a plain DNS name is left out, never sent raw.
std::optional<std::string> plain_sni_host(std::string_view sni) {
  if (sni.empty() || sni.size() > kMaxSniLength) return std::nullopt;
  std::string host = lowercase_ascii(sni);
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
    if (!ok) return std::nullopt;
  }
  return host;
}

std::optional<EnvelopeError> check_method(std::string_view method, RouteKind kind) {
  if (!is_token(method) || method.size() > kMaxMethodLength) {
    return EnvelopeError{Code::bad_method, 400, "method is not a token", {}};
  }
  if (kind == RouteKind::ws_upgrade) {
    // GET for an HTTP/1.1 upgrade, CONNECT for an HTTP/2 extended CONNECT (RFC 8441).
    if (method == "GET" || method == "CONNECT") return std::nullopt;
    return EnvelopeError{Code::method_not_allowed, 405, "a WebSocket handshake must be GET or CONNECT", {}};
  }
  // §4.6 rule 9. Compared without case because fetch (the TS SDK's client) refuses these names in
  // any case, so "trace" would fail there as surely as "TRACE".
  if (iequals_ascii(method, "CONNECT") || iequals_ascii(method, "TRACE") || iequals_ascii(method, "TRACK")) {
    return EnvelopeError{Code::method_not_allowed, 405, "method cannot be forwarded", {}};
  }
  return std::nullopt;
}

// Names listed in a Connection header are hop-by-hop for this message too (RFC 9110 §7.6.1).
std::vector<std::string> connection_nominated(const InboundRequest& request) {
  std::vector<std::string> names;
  for (const auto& [name, value] : request.headers) {
    if (!iequals_ascii(name, "connection")) continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view item = trim_ows(rest.substr(0, comma));
      if (is_token(item)) names.push_back(lowercase_ascii(item));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  return names;
}

// §4.6 rules 3 and 4: what never reaches the agent.
bool is_dropped(std::string_view lname, const std::vector<std::string>& nominated) {
  if (is_hop_by_hop_request_header(lname)) return true;
  // proxy-connection and http2-settings are connection-level; the edge answers 100-continue
  // itself, so expect would only make an upstream wait for a continue that never comes.
  if (lname == "proxy-connection" || lname == "http2-settings" || lname == "expect") return true;
  // The agent writes its own forwarding headers from inkbox-forwarded-for; a third party's would
  // be spoofable (defence in depth: the agent ignores them too).
  if (lname == "x-forwarded-for" || lname == "x-forwarded-host" || lname == "x-forwarded-proto" ||
      lname == "forwarded") {
    return true;
  }
  return std::find(nominated.begin(), nominated.end(), lname) != nominated.end();
}

std::string forwarded_name(std::string_view lname) {
  std::string name(kInkboxForwardedHeaderPrefix);
  name += lname;
  return name;
}

// Appends the inkbox-h-* fields for the request's headers (§4.6 rules 1–7).
std::optional<EnvelopeError> append_forwarded(const InboundRequest& request, const EnvelopeLimits& limits,
                                              std::vector<HeaderField>& out) {
  const std::vector<std::string> nominated = connection_nominated(request);
  std::optional<std::size_t> cookie_at;  // index in `out` of the one joined cookie field
  bool identity_placed = false;
  std::size_t fields = 0;
  std::size_t bytes = 0;
  // Counted before anything is stored, so an oversized request costs bounded work and memory.
  auto charge = [&](std::size_t more_fields, std::size_t more_bytes) -> std::optional<EnvelopeError> {
    fields += more_fields;
    bytes += more_bytes;
    if (fields > limits.max_fields) return EnvelopeError{Code::too_many_headers, 431, "too many header fields", {}};
    if (bytes > limits.max_header_bytes) {
      return EnvelopeError{Code::headers_too_large, 431, "header fields too large", {}};
    }
    return std::nullopt;
  };

  for (const auto& [name, raw_value] : request.headers) {
    if (!name.empty() && name.front() == ':') continue;  // pseudo-headers: the edge consumed them
    std::string lname = lowercase_ascii(name);
    if (!is_token(lname)) return EnvelopeError{Code::bad_header_name, 400, "header name is not a token", {}};
    // Rule 6 applies to every field, forwarded or not: CR/LF/NUL anywhere mark a malformed or
    // smuggling request, and one rule is easier to reason about than two.
    const std::string_view value = trim_ows(raw_value);
    if (!is_valid_field_value(value, /*require_utf8=*/true)) {
      return EnvelopeError{Code::bad_header_value, 400, "header value has a control character or invalid UTF-8",
                           std::move(lname)};
    }
    if (is_dropped(lname, nominated)) continue;

    if (lname == "cookie") {
      // Rule 2: one field for all cookies, at the first one's place, or the TS SDK (Node) would
      // see them joined with ", ", which breaks cookie parsing. Empty cookie fields add nothing.
      if (value.empty()) continue;
      if (!cookie_at) {
        if (auto error = charge(1, lname.size() + value.size())) return error;
        cookie_at = out.size();
        out.push_back({forwarded_name(lname), std::string(value)});
      } else {
        if (auto error = charge(0, 2 + value.size())) return error;
        out[*cookie_at].value.append("; ").append(value);
      }
    } else if (lname == "accept-encoding" && limits.force_identity_encoding) {
      // Rule 7 / A16: replaced in place; repeated fields collapse into the one replacement.
      if (identity_placed) continue;
      identity_placed = true;
      if (auto error = charge(1, lname.size() + std::string_view("identity").size())) return error;
      out.push_back({forwarded_name(lname), "identity"});
    } else {
      // Rule 1: one field per value, in arrival order; repeats stay separate.
      if (auto error = charge(1, lname.size() + value.size())) return error;
      out.push_back({forwarded_name(lname), std::string(value)});
    }
  }
  // Asking for identity matters most when the third party sent no accept-encoding at all, because
  // the agent's HTTP client would then ask for gzip by itself. This field is ours, not the third
  // party's, so it is not charged to the third party's limits.
  if (limits.force_identity_encoding && !identity_placed) out.push_back({forwarded_name("accept-encoding"), "identity"});
  return std::nullopt;
}

}  // namespace

Expected<std::vector<HeaderField>, EnvelopeError> build_envelope_headers(const InboundRequest& request,
                                                                         RouteKind kind,
                                                                         std::string_view request_id,
                                                                         std::string_view bridge_id,
                                                                         const EnvelopeLimits& limits) {
  if (!is_url_path_safe_id(request_id)) return fail(Code::internal, 500, "request id is not URL-path-safe");
  if (kind != RouteKind::webhook && !is_url_path_safe_id(bridge_id)) {
    return fail(Code::internal, 500, "bridge id is not URL-path-safe");
  }
  if (kind != RouteKind::tcp_stream) {
    if (auto error = check_method(request.method, kind)) return unexpected(std::move(*error));
    if (request.target.size() > limits.max_target_bytes) return fail(Code::uri_too_long, 414, "request target too long");
    if (auto reason = request_target_error(request.target); !reason.empty()) return fail(Code::bad_path, 400, reason);
  }

  std::vector<HeaderField> out;
  out.reserve(8 + (kind == RouteKind::tcp_stream ? 0 : request.headers.size() + 1));
  out.push_back({std::string(meta_header::kRequestId), std::string(request_id)});
  out.push_back({std::string(meta_header::kRouteKind), std::string(route_kind_name(kind))});
  if (kind != RouteKind::tcp_stream) {
    out.push_back({std::string(meta_header::kMethod), kind == RouteKind::ws_upgrade ? "GET" : request.method});
    out.push_back({std::string(meta_header::kPath), request.target});
  }
  if (kind == RouteKind::ws_upgrade) out.push_back({std::string(meta_header::kWsId), std::string(bridge_id)});
  if (kind == RouteKind::tcp_stream) out.push_back({std::string(meta_header::kTcpId), std::string(bridge_id)});
  if (auto sni = plain_sni_host(request.sni_host)) out.push_back({std::string(meta_header::kSniHost), std::move(*sni)});
  if (auto ip = plain_ip_address(request.client_ip)) {
    out.push_back({std::string(meta_header::kForwardedFor), std::move(*ip)});
  }
  if (kind != RouteKind::tcp_stream) {
    if (auto error = append_forwarded(request, limits, out)) return unexpected(std::move(*error));
  }

  // With the default limits this cannot fail (about 110 fields and 45 KiB at most); it guards
  // deployments that raise the limits past what the agent's HTTP/2 stacks accept (§4.1).
  if (auto reason = agent_header_list_error(out, 1, kContentLengthReserve); !reason.empty()) {
    return fail(Code::headers_too_large, 431, reason);
  }
  return out;
}

}  // namespace inkwire::proto
