#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"

namespace inkwire {

// RFC 3339 in UTC with microseconds and a "Z" suffix: 2026-05-08T12:00:00.123456Z.
// Both SDKs parse this (Python turns Z into +00:00 before fromisoformat).
std::string format_rfc3339(Timestamp t);

// Parses the form produced above and the common variants (fraction of 0–9 digits, Z or ±hh:mm).
std::optional<Timestamp> parse_rfc3339(std::string_view text);

// Microseconds since the Unix epoch: how timestamps cross the PostgreSQL boundary exactly.
inline std::int64_t to_unix_micros(Timestamp t) { return t.time_since_epoch().count(); }
inline Timestamp from_unix_micros(std::int64_t us) { return Timestamp(std::chrono::microseconds(us)); }

}  // namespace inkwire
