#include "common/config.h"

#include <arpa/inet.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <variant>

namespace inkwire {
namespace {

// ---------------------------------------------------------------------------------------------------
// The schema: every key once, with its type and where it lives in Config. The loader, the environment
// mapping, --set, describe_config and docs/CONFIG.md all follow this table, so a key added here is
// reachable from every source at once.

using StringList = std::vector<std::string>;

template <auto Member>
auto* top_level(Config& config) {
  return &(config.*Member);
}
template <auto Section, auto Member>
auto* in_section(Config& config) {
  return &((config.*Section).*Member);
}

// The alternative held is the key's type; the index order matches type_name() below.
using Binding = std::variant<std::string* (*)(Config&), int* (*)(Config&), std::uint64_t* (*)(Config&),
                             std::int64_t* (*)(Config&), StringList* (*)(Config&), bool* (*)(Config&)>;

struct KeySpec {
  std::string_view name;  // dotted: "api.listen"
  Binding binding;
};

// Shorthands keep the table one line per key.
#define INKWIRE_TOP(member) &top_level<&Config::member>
#define INKWIRE_KEY(section, type, member) &in_section<&Config::section, &type::member>

constexpr KeySpec kSchema[] = {
    {"roles", INKWIRE_TOP(roles)},
    {"zone", INKWIRE_TOP(zone)},
    {"data_plane_host", INKWIRE_TOP(data_plane_host)},
    {"database.url", INKWIRE_KEY(database, DatabaseConfig, url)},
    {"database.pool_size", INKWIRE_KEY(database, DatabaseConfig, pool_size)},
    {"database.connect_timeout_seconds", INKWIRE_KEY(database, DatabaseConfig, connect_timeout_seconds)},
    {"database.statement_timeout_ms", INKWIRE_KEY(database, DatabaseConfig, statement_timeout_ms)},
    {"api.listen", INKWIRE_KEY(api, ApiConfig, listen)},
    {"api.public_url", INKWIRE_KEY(api, ApiConfig, public_url)},
    {"api.threads", INKWIRE_KEY(api, ApiConfig, threads)},
    {"api.max_body_bytes", INKWIRE_KEY(api, ApiConfig, max_body_bytes)},
    {"api.max_header_bytes", INKWIRE_KEY(api, ApiConfig, max_header_bytes)},
    {"api.read_timeout_seconds", INKWIRE_KEY(api, ApiConfig, read_timeout_seconds)},
    {"api.idle_timeout_seconds", INKWIRE_KEY(api, ApiConfig, idle_timeout_seconds)},
    {"api.max_connections", INKWIRE_KEY(api, ApiConfig, max_connections)},
    {"api.shutdown_grace_seconds", INKWIRE_KEY(api, ApiConfig, shutdown_grace_seconds)},
    {"metrics.listen", INKWIRE_KEY(metrics, MetricsConfig, listen)},
    {"controlplane.daily_create_limit", INKWIRE_KEY(controlplane, ControlPlaneConfig, daily_create_limit)},
    {"controlplane.delete_grace_seconds", INKWIRE_KEY(controlplane, ControlPlaneConfig, delete_grace_seconds)},
    {"controlplane.reaper_interval_seconds", INKWIRE_KEY(controlplane, ControlPlaneConfig, reaper_interval_seconds)},
    {"controlplane.reserved_names", INKWIRE_KEY(controlplane, ControlPlaneConfig, reserved_names)},
    {"controlplane.reserved_prefixes", INKWIRE_KEY(controlplane, ControlPlaneConfig, reserved_prefixes)},
    {"controlplane.max_metadata_bytes", INKWIRE_KEY(controlplane, ControlPlaneConfig, max_metadata_bytes)},
    {"controlplane.max_description_chars", INKWIRE_KEY(controlplane, ControlPlaneConfig, max_description_chars)},
    {"controlplane.api_key_cache_seconds", INKWIRE_KEY(controlplane, ControlPlaneConfig, api_key_cache_seconds)},
    {"controlplane.audit_log_page_max", INKWIRE_KEY(controlplane, ControlPlaneConfig, audit_log_page_max)},
    {"ca.dir", INKWIRE_KEY(ca, CaConfig, dir)},
    {"ca.cert_file", INKWIRE_KEY(ca, CaConfig, cert_file)},
    {"ca.key_file", INKWIRE_KEY(ca, CaConfig, key_file)},
    {"ca.leaf_days", INKWIRE_KEY(ca, CaConfig, leaf_days)},
    {"tls.cert_file", INKWIRE_KEY(tls, TlsConfig, cert_file)},
    {"tls.key_file", INKWIRE_KEY(tls, TlsConfig, key_file)},
    {"relay.listen", INKWIRE_KEY(relay, RelayConfig, listen)},
    {"relay.default_pool_size", INKWIRE_KEY(relay, RelayConfig, default_pool_size)},
    {"relay.response_deadline_seconds", INKWIRE_KEY(relay, RelayConfig, response_deadline_seconds)},
    {"relay.response_grace_seconds", INKWIRE_KEY(relay, RelayConfig, response_grace_seconds)},
    {"relay.intake_idle_seconds", INKWIRE_KEY(relay, RelayConfig, intake_idle_seconds)},
    {"relay.queue_max_requests", INKWIRE_KEY(relay, RelayConfig, queue_max_requests)},
    {"relay.queue_wait_seconds", INKWIRE_KEY(relay, RelayConfig, queue_wait_seconds)},
    {"relay.bridge_open_timeout_seconds", INKWIRE_KEY(relay, RelayConfig, bridge_open_timeout_seconds)},
    {"relay.handshake_timeout_seconds", INKWIRE_KEY(relay, RelayConfig, handshake_timeout_seconds)},
    {"relay.hello_timeout_seconds", INKWIRE_KEY(relay, RelayConfig, hello_timeout_seconds)},
    {"relay.max_sessions", INKWIRE_KEY(relay, RelayConfig, max_sessions)},
    {"relay.max_sessions_per_organization", INKWIRE_KEY(relay, RelayConfig, max_sessions_per_organization)},
    {"relay.max_streams_per_session", INKWIRE_KEY(relay, RelayConfig, max_streams_per_session)},
    {"relay.max_header_list_bytes", INKWIRE_KEY(relay, RelayConfig, max_header_list_bytes)},
    {"relay.max_response_body_bytes", INKWIRE_KEY(relay, RelayConfig, max_response_body_bytes)},
    {"relay.stream_window_bytes", INKWIRE_KEY(relay, RelayConfig, stream_window_bytes)},
    {"relay.connection_window_bytes", INKWIRE_KEY(relay, RelayConfig, connection_window_bytes)},
    {"relay.pipe_buffer_bytes", INKWIRE_KEY(relay, RelayConfig, pipe_buffer_bytes)},
    {"relay.max_ws_message_bytes", INKWIRE_KEY(relay, RelayConfig, max_ws_message_bytes)},
    {"relay.max_resets_per_minute", INKWIRE_KEY(relay, RelayConfig, max_resets_per_minute)},
    {"relay.ping_interval_seconds", INKWIRE_KEY(relay, RelayConfig, ping_interval_seconds)},
    {"relay.ping_timeout_seconds", INKWIRE_KEY(relay, RelayConfig, ping_timeout_seconds)},
    {"relay.drain_timeout_seconds", INKWIRE_KEY(relay, RelayConfig, drain_timeout_seconds)},
    {"relay.directory_cache_seconds", INKWIRE_KEY(relay, RelayConfig, directory_cache_seconds)},
    {"edge.listen", INKWIRE_KEY(edge, EdgeConfig, listen)},
    {"edge.http_listen", INKWIRE_KEY(edge, EdgeConfig, http_listen)},
    {"edge.serve_plain_http", INKWIRE_KEY(edge, EdgeConfig, serve_plain_http)},
    {"edge.public_https_port", INKWIRE_KEY(edge, EdgeConfig, public_https_port)},
    {"edge.handshake_timeout_seconds", INKWIRE_KEY(edge, EdgeConfig, handshake_timeout_seconds)},
    {"edge.max_client_hello_bytes", INKWIRE_KEY(edge, EdgeConfig, max_client_hello_bytes)},
    {"edge.request_head_timeout_seconds", INKWIRE_KEY(edge, EdgeConfig, request_head_timeout_seconds)},
    {"edge.idle_timeout_seconds", INKWIRE_KEY(edge, EdgeConfig, idle_timeout_seconds)},
    {"edge.send_timeout_seconds", INKWIRE_KEY(edge, EdgeConfig, send_timeout_seconds)},
    {"edge.min_body_bytes_per_second", INKWIRE_KEY(edge, EdgeConfig, min_body_bytes_per_second)},
    {"edge.body_rate_window_seconds", INKWIRE_KEY(edge, EdgeConfig, body_rate_window_seconds)},
    {"edge.max_connections", INKWIRE_KEY(edge, EdgeConfig, max_connections)},
    {"edge.max_connections_per_ip", INKWIRE_KEY(edge, EdgeConfig, max_connections_per_ip)},
    {"edge.max_request_body_bytes", INKWIRE_KEY(edge, EdgeConfig, max_request_body_bytes)},
    {"edge.max_header_fields", INKWIRE_KEY(edge, EdgeConfig, max_header_fields)},
    {"edge.max_header_bytes", INKWIRE_KEY(edge, EdgeConfig, max_header_bytes)},
    {"edge.max_target_bytes", INKWIRE_KEY(edge, EdgeConfig, max_target_bytes)},
    {"edge.force_identity_encoding", INKWIRE_KEY(edge, EdgeConfig, force_identity_encoding)},
    {"edge.h2_max_concurrent_streams", INKWIRE_KEY(edge, EdgeConfig, h2_max_concurrent_streams)},
    {"edge.h2_max_header_list_bytes", INKWIRE_KEY(edge, EdgeConfig, h2_max_header_list_bytes)},
    {"edge.h2_header_table_bytes", INKWIRE_KEY(edge, EdgeConfig, h2_header_table_bytes)},
    {"edge.h2_stream_window_bytes", INKWIRE_KEY(edge, EdgeConfig, h2_stream_window_bytes)},
    {"edge.h2_max_continuations", INKWIRE_KEY(edge, EdgeConfig, h2_max_continuations)},
    {"edge.h2_reset_burst", INKWIRE_KEY(edge, EdgeConfig, h2_reset_burst)},
    {"edge.h2_reset_rate_per_second", INKWIRE_KEY(edge, EdgeConfig, h2_reset_rate_per_second)},
    {"edge.h2_max_glitches_per_minute", INKWIRE_KEY(edge, EdgeConfig, h2_max_glitches_per_minute)},
    {"edge.max_ws_message_bytes", INKWIRE_KEY(edge, EdgeConfig, max_ws_message_bytes)},
    {"edge.ws_ping_interval_seconds", INKWIRE_KEY(edge, EdgeConfig, ws_ping_interval_seconds)},
    {"edge.retry_after_seconds", INKWIRE_KEY(edge, EdgeConfig, retry_after_seconds)},
    {"edge.cert_check_seconds", INKWIRE_KEY(edge, EdgeConfig, cert_check_seconds)},
    {"edge.access_log", INKWIRE_KEY(edge, EdgeConfig, access_log)},
    {"edge.metrics_max_tunnels", INKWIRE_KEY(edge, EdgeConfig, metrics_max_tunnels)},
    {"edge.shutdown_grace_seconds", INKWIRE_KEY(edge, EdgeConfig, shutdown_grace_seconds)},
    {"log.level", INKWIRE_KEY(log, LogConfig, level)},
};

#undef INKWIRE_TOP
#undef INKWIRE_KEY

const KeySpec* find_key(std::string_view name) {
  for (const KeySpec& key : kSchema) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

// A section is a prefix of some key ("api" for "api.listen"); the TOML walk needs it to tell an
// unknown table from a known one.
bool is_section(std::string_view name) {
  for (const KeySpec& key : kSchema) {
    if (key.name.size() > name.size() && key.name.starts_with(name) && key.name[name.size()] == '.') return true;
  }
  return false;
}

const char* type_name(const Binding& binding) {
  static constexpr const char* kNames[] = {"string", "integer", "non-negative integer", "integer", "list of strings", "boolean"};
  static_assert(std::size(kNames) == std::variant_size_v<Binding>);
  return kNames[binding.index()];
}

std::string env_name(std::string_view dotted) {
  std::string out = "INKWIRE_";
  for (char c : dotted) {
    out.push_back(c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Text values (environment and --set).

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Surrounding whitespace is forgiven (shell quoting leaves it easily); anything else that is not part
// of the number — a sign on an unsigned key, a unit suffix, a second number — is refused, as is a
// value that does not fit the key's type.
template <typename T>
std::optional<std::string> parse_integer(std::string_view text, T& out) {
  const std::string_view digits = trim(text);
  T value{};
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec == std::errc::result_out_of_range) return "'" + std::string(text) + "' is out of range";
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size()) {
    const char* what = std::is_unsigned_v<T> ? "a non-negative integer" : "an integer";
    return "expected " + std::string(what) + ", got '" + std::string(text) + "'";
  }
  out = value;
  return std::nullopt;
}

// Comma-separated, items trimmed; empty items are dropped so "a,b," and "" (an empty list) work.
StringList split_list(std::string_view text) {
  StringList items;
  while (true) {
    const std::size_t comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    if (!item.empty()) items.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

// Returns the reason when `text` is not a valid value for the key.
std::optional<std::string> assign_text(Config& config, const KeySpec& key, std::string_view text) {
  switch (key.binding.index()) {
    case 0: *std::get<0>(key.binding)(config) = std::string(text); return std::nullopt;
    case 1: {
      std::int64_t wide = 0;
      if (auto reason = parse_integer(text, wide)) return reason;
      if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max()) {
        return "'" + std::string(text) + "' is out of range";
      }
      *std::get<1>(key.binding)(config) = static_cast<int>(wide);
      return std::nullopt;
    }
    case 2: return parse_integer(text, *std::get<2>(key.binding)(config));
    case 3: return parse_integer(text, *std::get<3>(key.binding)(config));
    case 4: *std::get<4>(key.binding)(config) = split_list(text); return std::nullopt;
    default: {
      const std::string word = lowercase(trim(text));
      if (word == "true" || word == "1" || word == "yes" || word == "on") {
        *std::get<5>(key.binding)(config) = true;
      } else if (word == "false" || word == "0" || word == "no" || word == "off") {
        *std::get<5>(key.binding)(config) = false;
      } else {
        return "expected a boolean (true/false), got '" + std::string(text) + "'";
      }
      return std::nullopt;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// TOML values.

const char* toml_type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
    default: return "nothing";
  }
}

std::optional<std::string> assign_node(Config& config, const KeySpec& key, const toml::node& node) {
  const std::string wrong_type =
      std::string("has the wrong type: expected ") + type_name(key.binding) + ", got " + toml_type_name(node);
  if (key.binding.index() == 0) {
    const auto* value = node.as_string();
    if (value == nullptr) return wrong_type;
    *std::get<0>(key.binding)(config) = value->get();
    return std::nullopt;
  }
  if (key.binding.index() == 4) {
    const auto* array = node.as_array();
    if (array == nullptr) return wrong_type;
    StringList items;
    for (const toml::node& element : *array) {
      const auto* value = element.as_string();
      if (value == nullptr) {
        return std::string("has the wrong type: expected a list of strings, found an element of type ") +
               toml_type_name(element);
      }
      items.push_back(value->get());
    }
    *std::get<4>(key.binding)(config) = std::move(items);
    return std::nullopt;
  }
  if (key.binding.index() == 5) {
    const auto* value = node.as_boolean();
    if (value == nullptr) return wrong_type;
    *std::get<5>(key.binding)(config) = value->get();
    return std::nullopt;
  }
  const auto* integer = node.as_integer();
  if (integer == nullptr) return wrong_type;
  const std::int64_t value = integer->get();
  const std::string out_of_range = "is out of range: " + std::to_string(value);
  switch (key.binding.index()) {
    case 1:
      if (value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max()) return out_of_range;
      *std::get<1>(key.binding)(config) = static_cast<int>(value);
      return std::nullopt;
    case 2:
      if (value < 0) return "must be a non-negative integer, got " + std::to_string(value);
      *std::get<2>(key.binding)(config) = static_cast<std::uint64_t>(value);
      return std::nullopt;
    default: *std::get<3>(key.binding)(config) = value; return std::nullopt;
  }
}

// Walks every leaf below `table`; `prefix` is the dotted name of the table itself ("" for the root).
std::optional<ConfigError> apply_table(Config& config, const toml::table& table, const std::string& prefix,
                                       const std::string& file) {
  for (const auto& [toml_key, node] : table) {
    const std::string name = prefix.empty() ? std::string(toml_key.str()) : prefix + "." + std::string(toml_key.str());
    if (const KeySpec* key = find_key(name)) {
      if (auto reason = assign_node(config, *key, node)) {
        return ConfigError{"configuration key '" + name + "' in " + file + " " + *reason};
      }
      continue;
    }
    const bool section = is_section(name);
    if (const auto* sub = node.as_table()) {
      // An unknown non-empty table is reported by its first leaf, which cannot be in the schema.
      if (auto error = apply_table(config, *sub, name, file)) return error;
      if (section || !sub->empty()) continue;
    } else if (section) {
      return ConfigError{"configuration key '" + name + "' in " + file + " must be a table, got " +
                         toml_type_name(node)};
    }
    return ConfigError{"unknown configuration key '" + name + "' in " + file};
  }
  return std::nullopt;
}

std::string one_line(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

std::optional<ConfigError> apply_file(Config& config, const std::string& file) {
  // Read the file ourselves so "not found" and "permission denied" get errno's words rather than a
  // parse error at line 0.
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    return ConfigError{"cannot read configuration file " + file + ": it is a directory"};
  }
  errno = 0;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    const char* why = errno != 0 ? std::strerror(errno) : "cannot open";
    return ConfigError{"cannot read configuration file " + file + ": " + why};
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return ConfigError{"cannot read configuration file " + file + ": read error"};

  toml::table root;
  try {
    root = toml::parse(contents.str(), file);
  } catch (const toml::parse_error& error) {
    const auto& where = error.source().begin;
    return ConfigError{file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) +
                       ": invalid TOML: " + one_line(error.description())};
  }
  return apply_table(config, root, "", file);
}

std::optional<ConfigError> apply_environment(Config& config, const std::map<std::string, std::string>& environment) {
  for (const KeySpec& key : kSchema) {
    const std::string name = env_name(key.name);
    const auto found = environment.find(name);
    if (found == environment.end()) continue;
    if (auto reason = assign_text(config, key, found->second)) {
      return ConfigError{"environment variable " + name + " (" + std::string(key.name) + "): " + *reason};
    }
  }
  return std::nullopt;
}

std::optional<ConfigError> apply_overrides(Config& config,
                                           const std::vector<std::pair<std::string, std::string>>& overrides) {
  for (const auto& [name, value] : overrides) {
    const KeySpec* key = find_key(name);
    if (key == nullptr) return ConfigError{"unknown configuration key '" + name + "' (from --set)"};
    if (auto reason = assign_text(config, *key, value)) {
      return ConfigError{"invalid value for '" + name + "' (from --set): " + *reason};
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------------
// Validation: after every source, so a rule sees the effective value whichever source set it.

bool is_ipv4(std::string_view text) {
  // inet_pton accepts exactly four dotted decimal octets (no octal, no shorthand forms).
  in_addr address{};
  return inet_pton(AF_INET, std::string(text).c_str(), &address) == 1;
}

bool is_ipv6(std::string_view text) {
  in6_addr address{};
  return inet_pton(AF_INET6, std::string(text).c_str(), &address) == 1;
}

bool is_dns_label(std::string_view label) {
  if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
  for (char c : label) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

// A lowercase DNS name whose last label is not all digits: "1.2.3.999" must be a valid IPv4 address
// or nothing, never silently a host name.
bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::string_view last;
  while (true) {
    const std::size_t dot = name.find('.');
    last = name.substr(0, dot);
    if (!is_dns_label(last)) return false;
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  return last.find_first_not_of("0123456789") != std::string_view::npos;
}

bool is_host(std::string_view host) { return is_dns_name(host) || is_ipv4(host); }

bool parse_port(std::string_view text, int min_port) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string_view::npos) return false;
  int port = 0;
  std::from_chars(text.data(), text.data() + text.size(), port);
  return port >= min_port && port <= 65535;
}

// "host:port", "[v6]:port", and when the port is optional also "host" and a bare IPv6 literal.
bool is_host_port(std::string_view text, bool port_required, int min_port) {
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || !is_ipv6(text.substr(1, close - 1))) return false;
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty()) return !port_required;
    return rest.front() == ':' && parse_port(rest.substr(1), min_port);
  }
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return !port_required && is_host(text);
  const std::string_view host = text.substr(0, colon);
  if (host.find(':') != std::string_view::npos) return !port_required && is_ipv6(text);
  return is_host(host) && parse_port(text.substr(colon + 1), min_port);
}

ConfigError invalid(std::string_view key, const std::string& why) {
  return ConfigError{"invalid " + std::string(key) + ": " + why};
}

std::string single_quoted(std::string_view text) { return "'" + std::string(text) + "'"; }


std::optional<ConfigError> check_range(std::string_view key, std::int64_t value, std::int64_t min,
                                       std::int64_t max = std::numeric_limits<std::int64_t>::max()) {
  if (value >= min && value <= max) return std::nullopt;
  if (max == std::numeric_limits<std::int64_t>::max()) {
    return invalid(key, "must be at least " + std::to_string(min) + ", got " + std::to_string(value));
  }
  return invalid(
      key, "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + std::to_string(value));
}

std::optional<ConfigError> check_listen(std::string_view key, const std::string& value) {
  if (is_host_port(value, true, 0)) return std::nullopt;
  return invalid(key, single_quoted(value) + " is not host:port (a DNS name or IP, IPv6 as [::1]:port; port 0-65535)");
}

std::optional<ConfigError> validate_roles(const Config& config) {
  if (config.roles.empty()) return invalid("roles", "at least one of controlplane, relay, edge is required");
  for (std::size_t i = 0; i < config.roles.size(); ++i) {
    const std::string& role = config.roles[i];
    if (role != "controlplane" && role != "relay" && role != "edge") {
      return invalid("roles", "unknown role " + single_quoted(role) + " (known: controlplane, relay, edge)");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (config.roles[j] == role) return invalid("roles", "role " + single_quoted(role) + " is listed twice");
    }
  }
  // The edge hands requests to the relay in the same process; nodes that forward to each other
  // come with scale-out.
  if (config.has_role("edge") && !config.has_role("relay")) {
    return invalid("roles", "the edge role needs the relay role in the same process");
  }
  return std::nullopt;
}

std::optional<ConfigError> validate_hosts(const Config& config) {
  if (!is_host(config.zone)) {
    return invalid("zone", single_quoted(config.zone) + " is not a lowercase DNS name or an IPv4 address");
  }
  if (!config.data_plane_host.empty() && !is_host_port(config.data_plane_host, false, 1)) {
    return invalid("data_plane_host", single_quoted(config.data_plane_host) +
                                          " is not a host (DNS name or IP) with an optional :port (1-65535)");
  }
  if (auto error = check_listen("api.listen", config.api.listen)) return error;
  if (!config.relay.listen.empty() || !config.has_role("edge")) {
    if (auto error = check_listen("relay.listen", config.relay.listen)) return error;
  }
  if (auto error = check_listen("edge.listen", config.edge.listen)) return error;
  if (config.has_role("edge") && !config.relay.listen.empty() && config.relay.listen == config.edge.listen) {
    return invalid("relay.listen", "is the same address as edge.listen; with the edge role set relay.listen = \"\" "
                                   "(agents reach the relay through the edge's listener) or another address");
  }
  if (!config.edge.http_listen.empty()) {
    if (auto error = check_listen("edge.http_listen", config.edge.http_listen)) return error;
  }
  if (!config.metrics.listen.empty()) {
    if (auto error = check_listen("metrics.listen", config.metrics.listen)) return error;
  }
  const std::string& url = config.api.public_url;
  if (!url.empty() && !url.starts_with("http://") && !url.starts_with("https://")) {
    return invalid("api.public_url", single_quoted(url) + " must start with http:// or https://");
  }
  return std::nullopt;
}

std::optional<ConfigError> validate_limits(const Config& config) {
  const auto& db = config.database;
  const auto& api = config.api;
  const auto& cp = config.controlplane;
  // Unsigned limits are compared as signed; anything past INT64_MAX is "large enough" for a minimum.
  const auto as_signed = [](std::uint64_t v) {
    return static_cast<std::int64_t>(std::min<std::uint64_t>(v, std::numeric_limits<std::int64_t>::max()));
  };
  // Each check is (key, value, minimum[, maximum]); grace periods and caches may be 0 (= off), every
  // other limit must be positive so nothing is accidentally unbounded or impossible.
  const std::optional<ConfigError> checks[] = {
      check_range("database.pool_size", db.pool_size, 1, 64),
      check_range("database.connect_timeout_seconds", db.connect_timeout_seconds, 1),
      check_range("database.statement_timeout_ms", db.statement_timeout_ms, 1),
      check_range("api.threads", api.threads, 1, 64),
      check_range("api.max_body_bytes", as_signed(api.max_body_bytes), 1),
      check_range("api.max_header_bytes", as_signed(api.max_header_bytes), 1),
      check_range("api.read_timeout_seconds", api.read_timeout_seconds, 1),
      check_range("api.idle_timeout_seconds", api.idle_timeout_seconds, 1),
      check_range("api.max_connections", api.max_connections, 1),
      check_range("api.shutdown_grace_seconds", api.shutdown_grace_seconds, 0),
      check_range("controlplane.daily_create_limit", cp.daily_create_limit, 1),
      check_range("controlplane.delete_grace_seconds", cp.delete_grace_seconds, 0),
      check_range("controlplane.reaper_interval_seconds", cp.reaper_interval_seconds, 1),
      check_range("controlplane.max_metadata_bytes", as_signed(cp.max_metadata_bytes), 1),
      check_range("controlplane.max_description_chars", as_signed(cp.max_description_chars), 1),
      check_range("controlplane.api_key_cache_seconds", cp.api_key_cache_seconds, 0),
      check_range("controlplane.audit_log_page_max", cp.audit_log_page_max, 1),
      check_range("ca.leaf_days", config.ca.leaf_days, 1),
      check_range("relay.default_pool_size", config.relay.default_pool_size, 1, 32),
      check_range("relay.response_deadline_seconds", config.relay.response_deadline_seconds, 1),
      check_range("relay.response_grace_seconds", config.relay.response_grace_seconds, 0),
      check_range("relay.intake_idle_seconds", config.relay.intake_idle_seconds, 1),
      check_range("relay.queue_max_requests", config.relay.queue_max_requests, 0),
      check_range("relay.queue_wait_seconds", config.relay.queue_wait_seconds, 0),
      check_range("relay.bridge_open_timeout_seconds", config.relay.bridge_open_timeout_seconds, 1),
      check_range("relay.handshake_timeout_seconds", config.relay.handshake_timeout_seconds, 1),
      check_range("relay.hello_timeout_seconds", config.relay.hello_timeout_seconds, 1),
      check_range("relay.max_sessions", config.relay.max_sessions, 1),
      check_range("relay.max_sessions_per_organization", config.relay.max_sessions_per_organization, 1),
      check_range("relay.max_streams_per_session", config.relay.max_streams_per_session, 256, 65536),
      check_range("relay.max_header_list_bytes", as_signed(config.relay.max_header_list_bytes), 16384, 1 << 20),
      check_range("relay.max_response_body_bytes", as_signed(config.relay.max_response_body_bytes), 1),
      check_range("relay.stream_window_bytes", as_signed(config.relay.stream_window_bytes), 65535, 16777215),
      check_range("relay.connection_window_bytes", as_signed(config.relay.connection_window_bytes), 65535, 16777216),
      check_range("relay.pipe_buffer_bytes", as_signed(config.relay.pipe_buffer_bytes), 16384),
      check_range("relay.max_ws_message_bytes", as_signed(config.relay.max_ws_message_bytes), 1024, 1 << 30),
      check_range("relay.max_resets_per_minute", config.relay.max_resets_per_minute, 1),
      check_range("relay.ping_interval_seconds", config.relay.ping_interval_seconds, 0),
      check_range("relay.ping_timeout_seconds", config.relay.ping_timeout_seconds, 1),
      check_range("relay.drain_timeout_seconds", config.relay.drain_timeout_seconds, 0),
      check_range("relay.directory_cache_seconds", config.relay.directory_cache_seconds, 1),
      check_range("edge.public_https_port", config.edge.public_https_port, 1, 65535),
      check_range("edge.handshake_timeout_seconds", config.edge.handshake_timeout_seconds, 1),
      check_range("edge.max_client_hello_bytes", as_signed(config.edge.max_client_hello_bytes), 512, 65536),
      check_range("edge.request_head_timeout_seconds", config.edge.request_head_timeout_seconds, 1),
      check_range("edge.idle_timeout_seconds", config.edge.idle_timeout_seconds, 1),
      check_range("edge.send_timeout_seconds", config.edge.send_timeout_seconds, 1),
      check_range("edge.min_body_bytes_per_second", as_signed(config.edge.min_body_bytes_per_second), 0),
      check_range("edge.body_rate_window_seconds", config.edge.body_rate_window_seconds, 1),
      check_range("edge.max_connections", config.edge.max_connections, 1),
      check_range("edge.max_connections_per_ip", config.edge.max_connections_per_ip, 1),
      check_range("edge.max_request_body_bytes", as_signed(config.edge.max_request_body_bytes), 0),
      check_range("edge.max_header_fields", config.edge.max_header_fields, 1, 100),
      check_range("edge.max_header_bytes", as_signed(config.edge.max_header_bytes), 1024, 32768),
      check_range("edge.max_target_bytes", as_signed(config.edge.max_target_bytes), 256, 16384),
      check_range("edge.h2_max_concurrent_streams", config.edge.h2_max_concurrent_streams, 1, 1000),
      check_range("edge.h2_max_header_list_bytes", as_signed(config.edge.h2_max_header_list_bytes), 4096, 1 << 20),
      check_range("edge.h2_header_table_bytes", as_signed(config.edge.h2_header_table_bytes), 0, 65536),
      check_range("edge.h2_stream_window_bytes", as_signed(config.edge.h2_stream_window_bytes), 65535, 16777215),
      check_range("edge.h2_max_continuations", config.edge.h2_max_continuations, 1, 1000),
      check_range("edge.h2_reset_burst", config.edge.h2_reset_burst, 1),
      check_range("edge.h2_reset_rate_per_second", config.edge.h2_reset_rate_per_second, 1),
      check_range("edge.h2_max_glitches_per_minute", config.edge.h2_max_glitches_per_minute, 1),
      check_range("edge.max_ws_message_bytes", as_signed(config.edge.max_ws_message_bytes), 1024, 1 << 30),
      check_range("edge.ws_ping_interval_seconds", config.edge.ws_ping_interval_seconds, 0),
      check_range("edge.retry_after_seconds", config.edge.retry_after_seconds, 0),
      check_range("edge.cert_check_seconds", config.edge.cert_check_seconds, 0),
      check_range("edge.metrics_max_tunnels", config.edge.metrics_max_tunnels, 0),
      check_range("edge.shutdown_grace_seconds", config.edge.shutdown_grace_seconds, 0),
  };
  for (const auto& check : checks) {
    if (check) return check;
  }
  return std::nullopt;
}

std::optional<ConfigError> validate_controlplane(const Config& config) {
  for (const auto& [key, list] :
       {std::pair{"controlplane.reserved_names", &config.controlplane.reserved_names},
        std::pair{"controlplane.reserved_prefixes", &config.controlplane.reserved_prefixes}}) {
    for (const std::string& item : *list) {
      // An empty prefix would reserve every name.
      if (item.empty()) return invalid(key, "entries may not be empty");
    }
  }
  const CaConfig& ca = config.ca;
  if (ca.cert_file.empty() != ca.key_file.empty()) {
    return invalid("ca.cert_file", "ca.cert_file and ca.key_file must be given together");
  }
  if (!ca.cert_file.empty() && !ca.dir.empty()) {
    return invalid("ca.dir", "ca.dir (a generated CA) and ca.cert_file/ca.key_file (your own CA) are alternatives");
  }
  if (!config.has_role("controlplane")) return std::nullopt;
  if (config.database.url.empty()) {
    return invalid("database.url", "required when the controlplane role runs (INKWIRE_DATABASE_URL)");
  }
  if (ca.dir.empty() && ca.cert_file.empty()) {
    return invalid("ca.dir", "the controlplane role needs ca.dir or ca.cert_file and ca.key_file");
  }
  return std::nullopt;
}

std::optional<ConfigError> validate(const Config& config) {
  if (auto error = validate_roles(config)) return error;
  if (auto error = validate_hosts(config)) return error;
  if (auto error = validate_limits(config)) return error;
  if (auto error = validate_controlplane(config)) return error;
  const std::string& level = config.log.level;
  if (level != "trace" && level != "debug" && level != "info" && level != "warn" && level != "error") {
    return invalid("log.level", single_quoted(level) + " is not one of trace, debug, info, warn, error");
  }
  return std::nullopt;
}

// Tunnel names are lowercase, so reserved entries are compared in lowercase whatever the operator typed.
void normalise(Config& config) {
  for (StringList* list : {&config.controlplane.reserved_names, &config.controlplane.reserved_prefixes}) {
    for (std::string& item : *list) item = lowercase(trim(item));
  }
}

// ---------------------------------------------------------------------------------------------------
// Masking.

bool starts_with_icase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && lowercase(text.substr(0, prefix.size())) == prefix;
}

// Masks `password=value` in a libpq key=value string. Every occurrence of the keyword at a token start
// is masked, even one that turns out to sit inside another quoted value: over-masking a log line is
// harmless, under-masking leaks.
std::string mask_conninfo(const std::string& text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const bool token_start = i == 0 || is_space(text[i - 1]);
    if (!token_start || !starts_with_icase(std::string_view(text).substr(i), "password")) {
      out.push_back(text[i++]);
      continue;
    }
    std::size_t j = i + 8;
    while (j < text.size() && is_space(text[j])) ++j;
    if (j >= text.size() || text[j] != '=') {
      out.push_back(text[i++]);
      continue;
    }
    ++j;
    while (j < text.size() && is_space(text[j])) ++j;
    out.append(text, i, j - i);
    out.append("***");
    // Skip the value: quoted with backslash escapes, or unquoted up to whitespace (escapes allowed too).
    if (j < text.size() && text[j] == '\'') {
      ++j;
      while (j < text.size() && text[j] != '\'') j += text[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, text.size());
    } else {
      while (j < text.size() && !is_space(text[j])) j += text[j] == '\\' ? 2 : 1;
      j = std::min(j, text.size());
    }
    i = j;
  }
  return out;
}

// Masks the password in a postgres[ql]:// URI's user info and in a `password` query parameter.
std::string mask_uri(const std::string& url, std::size_t authority) {
  std::string out = url;
  std::size_t query_from = authority;
  // The last '@' ends the user info: a raw '@', '/' or '?' in a password then stays masked.
  const std::size_t at = out.rfind('@');
  if (at != std::string::npos && at >= authority) {
    const std::size_t colon = out.find(':', authority);
    if (colon < at) {
      out.replace(colon + 1, at - colon - 1, "***");
      query_from = colon + 5;
    } else {
      query_from = at;
    }
  }
  std::size_t param = out.find('?', query_from);
  while (param != std::string::npos && param < out.size()) {
    ++param;
    std::size_t end = out.find_first_of("&#", param);
    if (end == std::string::npos) end = out.size();
    const std::size_t eq = out.find('=', param);
    if (eq < end && lowercase(std::string_view(out).substr(param, eq - param)) == "password") {
      out.replace(eq + 1, end - eq - 1, "***");
      end = eq + 4;
    }
    if (end >= out.size() || out[end] == '#') break;
    param = end;
  }
  return out;
}

std::string render(Config& config, const KeySpec& key) {
  switch (key.binding.index()) {
    case 0: return *std::get<0>(key.binding)(config);
    case 1: return std::to_string(*std::get<1>(key.binding)(config));
    case 2: return std::to_string(*std::get<2>(key.binding)(config));
    case 3: return std::to_string(*std::get<3>(key.binding)(config));
    case 5: return *std::get<5>(key.binding)(config) ? "true" : "false";
    default: {
      std::string joined;
      for (const std::string& item : *std::get<4>(key.binding)(config)) {
        if (!joined.empty()) joined.push_back(',');
        joined += item;
      }
      return joined;
    }
  }
}

}  // namespace

Expected<Config, ConfigError> load_config(const ConfigSources& sources) {
  Config config;
  try {
    if (sources.file) {
      if (auto error = apply_file(config, *sources.file)) return unexpected(std::move(*error));
    }
    if (auto error = apply_environment(config, sources.environment)) return unexpected(std::move(*error));
    if (auto error = apply_overrides(config, sources.overrides)) return unexpected(std::move(*error));
    normalise(config);
    if (auto error = validate(config)) return unexpected(std::move(*error));
  } catch (const std::exception& e) {
    // Only allocation failures can get here; startup still gets one line instead of a terminate.
    return unexpected(ConfigError{std::string("cannot load configuration: ") + e.what()});
  }
  return config;
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::size_t eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return out;
}

bool Config::has_role(std::string_view role) const {
  for (const std::string& r : roles) {
    if (r == role) return true;
  }
  return false;
}

std::vector<std::string> describe_config(const Config& config) {
  Config copy = config;  // the schema's accessors take a mutable Config; reading a copy keeps this const
  std::vector<std::string> lines;
  lines.reserve(std::size(kSchema));
  for (const KeySpec& key : kSchema) {
    std::string value = render(copy, key);
    if (key.name == "database.url") value = mask_database_url(value);
    lines.push_back(std::string(key.name) + " = " + value);
  }
  return lines;
}

std::string mask_database_url(const std::string& url) {
  for (std::string_view scheme : {"postgresql://", "postgres://"}) {
    if (starts_with_icase(url, scheme)) return mask_uri(url, scheme.size());
  }
  return mask_conninfo(url);
}

}  // namespace inkwire
