#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace inkwire::proto {

// The edge's check of a third-party request target before it becomes inkbox-path (PROTOCOL.md
// §4.6, §8 A35). Returns an empty view when the target may be forwarded, else a short reason with
// static storage (the edge answers 400).
//
// Why the edge checks at all, when the agent runs its own path check (§6.2): the two SDKs disagree
// on percent-escapes. TS decodes with decodeURIComponent, which throws on a '%' not followed by two
// hex digits and on escapes that do not form UTF-8 ("%FF"), and it decodes a second time whenever
// the first pass changed something; Python's unquote tolerates all of these. Refusing them here,
// with the same rules as TS and on both decoding passes, means both SDKs only ever see inputs they
// agree on. Everything else in §6.2 (dot segments, %2F, double encoding) stays the agent's job,
// and the target is forwarded raw, never normalised.
//
// Rules: origin form (starts with '/'; "*" and absolute form are refused); no byte at or below
// 0x20 and no DEL; valid UTF-8 (§4.1); the path part (before the first '?') decodes strictly, and
// if decoding changed it, the decoded form decodes strictly too. The query is not decoded: neither
// SDK decodes it, so a literal "50%" there is harmless.
std::string_view request_target_error(std::string_view target);

// Strict single-pass percent-decoding as decodeURIComponent does it: nullopt for a malformed
// escape or for a result that is not valid UTF-8.
std::optional<std::string> percent_decode_strict(std::string_view text);

}  // namespace inkwire::proto
