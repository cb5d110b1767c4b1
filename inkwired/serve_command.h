#pragma once
#include "common/config.h"

namespace inkwire {

// `inkwired serve`: runs the configured roles until SIGINT/SIGTERM, then drains gracefully.
// Returns the process exit code; startup problems are one line on stderr.
int run_serve(const Config& config);

}  // namespace inkwire
