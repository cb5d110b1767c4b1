#pragma once

namespace inkwire::proto {

// The SDKs' reconnect delay (PROTOCOL.md §4.10), reproduced exactly so that a C++ agent reconnects
// on the same schedule as the official ones and server tests can rely on it
// (vector: protocol-fixtures/backoff_reference.json).
//
// Sans-IO: the caller supplies the random number and does the sleeping. Usage:
//   ReconnectBackoff backoff;
//   for (bool first = true;; first = false) {
//     if (!first) sleep(backoff.next_delay(uniform01()));  // the first attempt has no delay
//     outcome = run_session();
//     if (outcome == normal_end) backoff.on_normal_end();
//     else if (outcome == auth_failure) stop;               // hello 401/403 is terminal
//     // any other failure leaves the backoff unchanged
//   }
// next_delay() is called after every session, normal or failed, exactly as the SDK loop sleeps
// after every session; only the first attempt skips it (see first_attempt()).
class ReconnectBackoff {
 public:
  static constexpr double kInitialSeconds = 1.0;
  static constexpr double kCapSeconds = 30.0;
  static constexpr double kJitter = 0.25;  // ±25 %
  static constexpr double kMinimumSleepSeconds = 0.1;

  // The delay before the next attempt, in seconds, for r uniform in [0, 1); then doubles the base
  // (capped at 30 s). r outside [0, 1) is clamped so that a bad generator cannot produce a negative
  // or runaway delay.
  double next_delay(double r);

  // A session ended normally (EOF, h2 protocol error, local close, ...): start again from 1 s.
  void on_normal_end() { base_seconds_ = kInitialSeconds; }

  // The first connection attempt is made at once; only later attempts wait. The SDKs never sleep
  // before their first connect, so the caller asks this instead of calling next_delay() up front.
  // It becomes false after the first next_delay() call.
  bool first_attempt() const { return first_attempt_; }

  // The base before jitter that the next next_delay() call will use (for logs and tests).
  double base_seconds() const { return base_seconds_; }

 private:
  double base_seconds_ = kInitialSeconds;
  bool first_attempt_ = true;
};

}  // namespace inkwire::proto
