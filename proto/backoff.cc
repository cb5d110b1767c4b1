#include "proto/backoff.h"

#include <algorithm>

namespace inkwire::proto {

double ReconnectBackoff::next_delay(double r) {
  // NaN fails both comparisons below; treat it as the midpoint (no jitter).
  if (!(r >= 0.0)) r = r < 0.0 ? 0.0 : 0.5;
  if (!(r < 1.0)) r = 1.0;  // [0,1) is what the SDKs assume; 1.0 is the harmless upper bound
  const double b = base_seconds_;
  // Same operation order as the SDKs (b + b*0.25*(2r-1)) so the rounding matches the fixture.
  const double jitter = b * kJitter * (2.0 * r - 1.0);
  const double delay = std::max(kMinimumSleepSeconds, b + jitter);
  base_seconds_ = std::min(2.0 * b, kCapSeconds);
  first_attempt_ = false;
  return delay;
}

}  // namespace inkwire::proto
