#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace inkwire::proto {

// The content of `state.json` in the agent's state directory (PROTOCOL.md §5), shared with the
// official SDKs: a directory written by one must be readable by the others. Text only; the agent
// library does the atomic temporary-file-then-rename write and the file modes.
struct TunnelState {
  std::optional<std::string> tunnel_id;
  std::optional<std::string> name;
  std::optional<std::string> secret;
  std::optional<std::string> mode;  // "edge" or "passthrough"; not validated here
  std::optional<std::string> zone;
  std::optional<std::string> public_host;

  bool operator==(const TunnelState&) const = default;
};

// nullopt when the text is not a JSON object (a corrupt file counts as "no state"). Any key order
// (TS writes insertion order, Python sorted), unknown keys and missing keys are accepted; a known
// key whose value is not a string (null included) is treated as absent rather than failing the
// whole file, so one odd field cannot lose the secret.
std::optional<TunnelState> parse_state_json(std::string_view text);

// Byte-for-byte what the Python SDK's json.dump(state, f, indent=2, sort_keys=True) writes (absent
// keys left out, non-ASCII escaped as \uXXXX like its default ensure_ascii), with no trailing
// newline, because json.dump writes none: a directory shared with a Python agent then does not
// change on every rewrite. Every reader accepts either form. An empty state is "{}".
std::string serialize_state_json(const TunnelState& state);

}  // namespace inkwire::proto
