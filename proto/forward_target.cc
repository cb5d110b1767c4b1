#include "proto/forward_target.h"

#include <cstdint>
#include <optional>

namespace inkwire::proto {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Strict dotted quad: four decimal parts 0-255, no leading zeros (Python's ipaddress rule), so an
// octal or hex spelling can never be read as something else by a later parser.
std::optional<std::uint8_t> ipv4_first_octet(std::string_view host) {
  std::optional<std::uint8_t> first;
  int parts = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = host.find('.', start);
    const std::string_view part = host.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (part.empty() || part.size() > 3 || (part.size() > 1 && part[0] == '0')) return std::nullopt;
    int value = 0;
    for (const char c : part) {
      if (!is_digit(c)) return std::nullopt;
      value = value * 10 + (c - '0');
    }
    if (value > 255) return std::nullopt;
    if (parts == 0) first = static_cast<std::uint8_t>(value);
    ++parts;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (parts != 4) return std::nullopt;
  return first;
}

bool is_loopback_host(std::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  const auto first = ipv4_first_octet(host);
  return first && *first == 127;
}

// What may appear in a host when remote targets are allowed; resolution is the HTTP client's job.
bool is_reg_name(std::string_view host) {
  if (host.empty()) return false;
  for (const char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool is_ipv6_text(std::string_view host) {
  if (host.find(':') == std::string_view::npos) return false;
  for (const char c : host) {
    const bool ok = (c >= 'a' && c <= 'f') || is_digit(c) || c == ':' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Expected<ForwardTarget, std::string> parse_forward_target(std::string_view url, bool allow_remote) {
  for (const char c : url) {
    const auto byte = static_cast<std::uint8_t>(c);
    if (byte <= 0x20 || byte >= 0x7F) return unexpected(std::string("forward_to contains a space, control or non-ASCII character"));
  }
  const std::size_t sep = url.find("://");
  if (sep == std::string_view::npos) return unexpected(std::string("forward_to must be an absolute http:// or https:// URL"));
  ForwardTarget target;
  target.scheme = lowercase(url.substr(0, sep));
  if (target.scheme != "http" && target.scheme != "https")
    return unexpected(std::string("forward_to scheme must be http or https"));
  std::string_view rest = url.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos) return unexpected(std::string("forward_to must not have a fragment"));
  // A query on the base would have to be merged with each request's query; no SDK does that.
  if (rest.find('?') != std::string_view::npos) return unexpected(std::string("forward_to must not have a query"));

  const std::size_t path_start = rest.find('/');
  std::string_view authority = rest.substr(0, path_start);
  if (path_start != std::string_view::npos) target.base_path = std::string(rest.substr(path_start));
  if (authority.find('@') != std::string_view::npos)
    return unexpected(std::string("forward_to must not contain user information"));

  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return unexpected(std::string("forward_to has an unterminated [IPv6] host"));
    target.host = lowercase(authority.substr(1, close - 1));
    if (!is_ipv6_text(target.host)) return unexpected(std::string("forward_to has an invalid IPv6 host"));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return unexpected(std::string("forward_to has junk after the IPv6 host"));
      has_port = true;
      port = after.substr(1);
    }
  } else {
    const std::size_t colon = authority.find(':');
    target.host = lowercase(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      has_port = true;
      port = authority.substr(colon + 1);
    }
    if (!is_reg_name(target.host)) return unexpected(std::string("forward_to has an invalid host"));
  }
  if (has_port) {
    if (port.empty() || port.size() > 5) return unexpected(std::string("forward_to has an invalid port"));
    std::uint32_t value = 0;
    for (const char c : port) {
      if (!is_digit(c)) return unexpected(std::string("forward_to has an invalid port"));
      value = value * 10 + static_cast<std::uint32_t>(c - '0');
    }
    if (value == 0 || value > 65535) return unexpected(std::string("forward_to port must be 1 to 65535"));
    // Normalised like the SDKs' URL parsers: the default port is dropped, leading zeros go.
    const std::uint32_t default_port = target.scheme == "https" ? 443 : 80;
    if (value != default_port) target.port_text = std::to_string(value);
  }
  if (!allow_remote && !is_loopback_host(target.host))
    return unexpected(std::string(
        "forward_to host must be localhost, [::1] or a 127.x.x.x address unless remote forwarding is allowed"));
  return target;
}

std::string host_header(const ForwardTarget& target) {
  std::string out;
  const bool ipv6 = target.host.find(':') != std::string::npos;
  if (ipv6) out += '[';
  out += target.host;
  if (ipv6) out += ']';
  if (!target.port_text.empty()) {
    out += ':';
    out += target.port_text;
  }
  return out;
}

std::string join_forward_url(const ForwardTarget& target, std::string_view inkbox_path) {
  std::string out = target.scheme;
  out += "://";
  out += host_header(target);
  std::string_view base = target.base_path;
  if (!base.empty() && base.back() == '/') base.remove_suffix(1);  // exactly one, as the SDKs do
  out += base;
  if (inkbox_path.empty() || inkbox_path.front() != '/') out += '/';
  out += inkbox_path;  // path and query, both undecoded
  return out;
}

}  // namespace inkwire::proto
