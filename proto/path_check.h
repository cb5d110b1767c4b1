#pragma once
#include <optional>
#include <string_view>

namespace inkwire::proto {

// The agent's check of an envelope's `inkbox-path` before anything is dispatched (PROTOCOL.md
// §6.2; a failure is answered 400 with reason `invalid-path`). It exists so that a local origin
// which decodes paths itself can never be walked out of its root through the tunnel.
//
// Returns nullopt when the path is allowed, else a short reason for logs. Only the part before the
// first '?' is checked (a query may contain anything). Malformed percent-escapes, and escapes that
// do not decode to valid UTF-8, are rejected as the TS SDK's decodeURIComponent does (the
// recommended choice; Python's decoder would tolerate them). The caller forwards the original,
// undecoded path.
std::optional<std::string_view> invalid_path_reason(std::string_view inkbox_path);

}  // namespace inkwire::proto
