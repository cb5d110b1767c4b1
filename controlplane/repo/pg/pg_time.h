#pragma once
#include <string_view>

#include "common/clock.h"

namespace inkwire::controlplane {

// Parses timestamptz as PostgreSQL prints it with DateStyle ISO in a UTC session:
// "2026-11-29 03:12:10.81145+00" (fraction optional, offset "+HH" or "+HH:MM"). Microsecond exact.
// A value PostgreSQL would never print ("infinity", garbage) yields the epoch, which is visible
// in the API rather than crashing a listing.
Timestamp parse_pg_timestamptz(std::string_view text);

}  // namespace inkwire::controlplane
