#pragma once
#include <chrono>

namespace inkwire {

// Wall-clock time with microsecond precision: what PostgreSQL stores and what RFC 3339 strings carry.
using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

// Passed in wherever time matters, so tests can move time (e.g. past a 24 h grace window).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp now() const = 0;
};

class SystemClock final : public Clock {
 public:
  Timestamp now() const override {
    return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  }
};

}  // namespace inkwire
