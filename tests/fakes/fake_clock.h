#pragma once
#include <atomic>

#include "common/clock.h"

namespace inkwire::testing {

// A clock the test moves by hand (e.g. 24 h forward, past a delete grace window). Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(Timestamp start = Timestamp(std::chrono::microseconds(1'800'000'000'000'000))) : now_(start.time_since_epoch().count()) {}
  Timestamp now() const override { return Timestamp(std::chrono::microseconds(now_.load())); }
  void advance(std::chrono::microseconds d) { now_ += d.count(); }
  void set(Timestamp t) { now_ = t.time_since_epoch().count(); }

 private:
  std::atomic<std::int64_t> now_;
};

}  // namespace inkwire::testing
