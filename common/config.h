#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/expected.h"

namespace inkwire {

// Settings of one inkwired process. Sources, later ones winning: built-in defaults, the TOML file,
// INKWIRE_* environment variables, then `--set key=value` flags. Every key has a dotted name
// ("api.listen"), an environment name ("INKWIRE_API_LISTEN": INKWIRE_ + upper-case, '.' -> '_'),
// and is documented in docs/CONFIG.md.
struct DatabaseConfig {
  std::string url;              // libpq URI or key=value string (secret: password masked in logs)
  int pool_size = 4;            // connections (and threads) for blocking libpqxx calls
  int connect_timeout_seconds = 5;
  int statement_timeout_ms = 10000;
};

struct ApiConfig {
  std::string listen = "127.0.0.1:8081";  // host:port of the REST API (port 0 = any free port)
  std::string public_url;                  // base URL clients use; informational (logs, OpenAPI servers)
  int threads = 2;                         // I/O threads
  std::uint64_t max_body_bytes = 65536;    // request bodies over this get 413
  std::uint64_t max_header_bytes = 16384;  // request headers over this get 431
  int read_timeout_seconds = 30;           // time to receive one whole request
  int idle_timeout_seconds = 75;           // keep-alive idle time between requests
  int max_connections = 4096;              // concurrent client connections; more are closed at accept
  int shutdown_grace_seconds = 10;         // graceful drain on SIGTERM before a forced stop
};

struct MetricsConfig {
  std::string listen = "127.0.0.1:9464";  // Prometheus /metrics (empty = only on the API listener)
};

struct ControlPlaneConfig {
  int daily_create_limit = 100;                  // tunnels created per organisation per UTC day (429 above)
  std::int64_t delete_grace_seconds = 86400;     // delete_pending window (24 h)
  int reaper_interval_seconds = 60;              // how often expired tunnels are finalised
  std::vector<std::string> reserved_names;       // extra names refused with 409 (defaults always apply)
  std::vector<std::string> reserved_prefixes;    // name prefixes refused with 409
  std::uint64_t max_metadata_bytes = 4096;       // serialised compact JSON
  std::uint64_t max_description_chars = 1000;
  int api_key_cache_seconds = 30;                // positive auth results cached; revocation invalidates at once
  int audit_log_page_max = 500;
};

struct CaConfig {
  std::string dir;        // where a generated CA lives (ca.pem, ca.key); created at first start
  std::string cert_file;  // or an operator's own CA: both files given, nothing generated
  std::string key_file;   // (secret: never logged)
  int leaf_days = 90;     // lifetime of certificates issued by sign-csr
};

// The zone's certificate, presented by the data-plane listeners (relay, and later the edge).
struct TlsConfig {
  std::string cert_file;  // PEM chain: leaf first (DNS:{zone}, *.{zone}; IP SAN when the zone is an IP)
  std::string key_file;   // PEM private key (secret: never logged)
};

// The agent data plane (PROTOCOL.md §4, §8). Durations are whole seconds unless the name says ms.
struct RelayConfig {
  // TLS + HTTP/2 listener for agents (443 in production, A31). "" = none: with the edge role the
  // agents arrive through the edge's shared listener (edge.listen).
  std::string listen = "127.0.0.1:8443";
  int default_pool_size = 4;              // hello's default_pool_size when the agent sends no x-pool-size (A5)
  int response_deadline_seconds = 30;     // hello's response_deadline_seconds (A7)
  int response_grace_seconds = 2;         // extra wait for a post before the relay answers 504 itself
  int intake_idle_seconds = 300;          // a parked intake is answered 204 after this (A6)
  int queue_max_requests = 1024;          // per tunnel, requests waiting for a parked intake (A12)
  int queue_wait_seconds = 10;            // then 503 (no session) or 504 (no intake)
  int bridge_open_timeout_seconds = 10;   // wait for the agent's bridge CONNECT (A10)
  int handshake_timeout_seconds = 10;     // TCP accept to the end of the TLS handshake
  int hello_timeout_seconds = 10;         // TLS handshake to a successful hello
  int max_sessions = 20000;               // agent connections on this relay; more are closed at accept
  int max_sessions_per_organization = 1000;  // sessions holding a hello for the organisation's tunnels
  int max_streams_per_session = 256;      // SETTINGS_MAX_CONCURRENT_STREAMS (§4.1: at least 256)
  std::uint64_t max_header_list_bytes = 65536;  // SETTINGS_MAX_HEADER_LIST_SIZE, inbound header blocks
  std::uint64_t max_response_body_bytes = 33554432;  // a response post's body (32 MiB, §4.12)
  std::uint64_t stream_window_bytes = 1048576;       // SETTINGS_INITIAL_WINDOW_SIZE we advertise
  std::uint64_t connection_window_bytes = 16777216;  // connection-level receive window
  std::uint64_t pipe_buffer_bytes = 262144;          // per body or bridge direction, server side
  std::uint64_t max_ws_message_bytes = 16777216;     // one WebSocket message on a bridge (1009 above)
  int max_resets_per_minute = 600;        // RST_STREAMs and rejected frames one session may cause; then GOAWAY
  int ping_interval_seconds = 30;         // our PINGs to an agent; 0 = off
  int ping_timeout_seconds = 20;          // no ACK within this: the session is dropped
  int drain_timeout_seconds = 30;         // SIGTERM: bridges and posts may finish within this
  int directory_cache_seconds = 60;       // tunnel state kept between NOTIFY invalidations; stale copies serve through a DB outage
};

// The public edge (issue 4): the shared TLS listener (§8 A31), public HTTP/1.1, HTTP/2 and
// WebSocket, SNI passthrough, and the plain-HTTP listener. Every limit faces the internet.
struct EdgeConfig {
  std::string listen = "127.0.0.1:8443";      // shared TLS listener: agents (no SNI / SNI = zone) and third parties
  std::string http_listen = "127.0.0.1:8080";  // plain HTTP; "" = off
  bool serve_plain_http = false;               // serve tunnels on http_listen instead of a 308 to HTTPS
  int public_https_port = 443;                 // the port in 308 Location headers
  int handshake_timeout_seconds = 10;          // accept to the end of the ClientHello and TLS handshake
  std::uint64_t max_client_hello_bytes = 16384;  // ClientHello read before routing by SNI
  int request_head_timeout_seconds = 10;       // first byte to the end of a request head (slowloris)
  int idle_timeout_seconds = 60;               // keep-alive: between requests, and an h2 connection with no streams
  int send_timeout_seconds = 30;               // a client that takes no bytes for this long is cut
  std::uint64_t min_body_bytes_per_second = 1024;  // request bodies slower than this (over body_rate_window) are cut
  int body_rate_window_seconds = 10;
  int max_connections = 20000;                 // public connections on this node; more are closed at accept
  int max_connections_per_ip = 256;            // per client address
  std::uint64_t max_request_body_bytes = 33554432;  // 413 above (§4.6 rule 8)
  int max_header_fields = 100;                 // forwarded fields; 431 above (§8 A14)
  std::uint64_t max_header_bytes = 32768;      // forwarded header bytes; 431 above
  std::uint64_t max_target_bytes = 8192;       // request target; 414 above
  bool force_identity_encoding = true;         // send accept-encoding: identity to the agent (§8 A16)
  int h2_max_concurrent_streams = 100;
  std::uint64_t h2_max_header_list_bytes = 65536;  // inbound header block (HPACK-decoded) cap
  std::uint64_t h2_header_table_bytes = 4096;       // HPACK dynamic table we let clients use
  std::uint64_t h2_stream_window_bytes = 262144;    // upload window per stream
  int h2_max_continuations = 8;
  int h2_reset_burst = 1000;                   // RST_STREAM token bucket (Rapid Reset)
  int h2_reset_rate_per_second = 33;
  int h2_max_glitches_per_minute = 1000;       // rejected frames and resets a connection may cause; then GOAWAY
  std::uint64_t max_ws_message_bytes = 16777216;  // one WebSocket message (1009 above, §4.8.2)
  int ws_ping_interval_seconds = 30;           // edge PINGs to an idle third-party WebSocket; 0 = off
  int retry_after_seconds = 5;                 // Retry-After on 503 overload
  int cert_check_seconds = 5;                  // how often the certificate files are checked for changes
  bool access_log = true;                      // one structured line per request
  int metrics_max_tunnels = 1000;              // tunnels with their own metric labels; the rest count as "_other"
  int shutdown_grace_seconds = 10;             // SIGTERM: in-flight requests may finish within this
};

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error
};

struct Config {
  std::vector<std::string> roles = {"controlplane"};  // which roles `serve` runs
  std::string zone = "inkwire.localhost";             // public hosts are {name}.{zone}
  std::string data_plane_host;                        // the Tunnel JSON `zone` (agents dial it); empty = zone
  DatabaseConfig database;
  ApiConfig api;
  MetricsConfig metrics;
  ControlPlaneConfig controlplane;
  CaConfig ca;
  TlsConfig tls;
  RelayConfig relay;
  EdgeConfig edge;
  LogConfig log;

  bool has_role(std::string_view role) const;
  // The data-plane host the Tunnel JSON reports as `zone`.
  const std::string& effective_data_plane_host() const { return data_plane_host.empty() ? zone : data_plane_host; }
};

struct ConfigError {
  std::string message;  // one line, names the offending key or file
};

struct ConfigSources {
  std::optional<std::string> file;                                // TOML file path
  std::map<std::string, std::string> environment;                 // usually the process environment
  std::vector<std::pair<std::string, std::string>> overrides;     // --set key=value, in order
};

// Loads and validates. An unknown key in the file or in --set is an error naming the key; unknown
// INKWIRE_* environment variables are ignored (stack.env exports variables meant for clients too).
// Lists in the environment and --set are comma-separated.
Expected<Config, ConfigError> load_config(const ConfigSources& sources);

// Reads the process environment (environ) into a map.
std::map<std::string, std::string> process_environment();

// "key = value" lines of the effective configuration with secrets masked, for the startup log.
std::vector<std::string> describe_config(const Config& config);

// postgresql://user:secret@host/db -> postgresql://user:***@host/db; password=... masked too.
std::string mask_database_url(const std::string& url);

}  // namespace inkwire
