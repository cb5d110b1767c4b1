#pragma once
#include <string>
#include <string_view>

#include "common/expected.h"

namespace inkwire::proto {

// A parsed `forward_to` URL (PROTOCOL.md §6.3). Parsed once at startup so each request only joins
// strings; the host is never resolved here.
struct ForwardTarget {
  std::string scheme;     // "http" or "https", lowercased
  std::string host;       // lowercased; an IPv6 literal without its brackets ("::1")
  std::string port_text;  // decimal, empty when absent or equal to the scheme's default
  std::string base_path;  // as written ("" or starting with '/'), trailing '/' kept
};

// Accepts http/https URLs. Unless allow_remote is set the host must be exactly "localhost",
// "[::1]" or a dotted-quad IPv4 literal in 127.0.0.0/8: that is the SDKs' guard against a tunnel
// becoming an open proxy into the agent's network. IPv4 forms that only some parsers accept
// ("127.1", "0x7f.1", "0177.0.0.1") are refused rather than guessed at. Userinfo, fragments,
// queries, bad ports (0, > 65535, non-digits, empty) and control characters or spaces are refused.
// The error is one line naming the problem, for a startup failure message.
Expected<ForwardTarget, std::string> parse_forward_target(std::string_view url, bool allow_remote);

// scheme://authority + base path minus one trailing '/' + envelope path (a leading '/' added if
// missing) + its query, e.g. ("http://localhost:8080/api/", "/x?y=1") -> "http://localhost:8080/api/x?y=1".
// inkbox_path is forwarded undecoded, as §6.2 step 5 requires.
std::string join_forward_url(const ForwardTarget& target, std::string_view inkbox_path);

// The Host header for the local request: host (bracketed when IPv6) and ":port" when a non-default
// port was given, the way the SDKs' HTTP clients write it.
std::string host_header(const ForwardTarget& target);

}  // namespace inkwire::proto
