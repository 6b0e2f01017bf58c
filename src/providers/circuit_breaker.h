#pragma once
// A circuit breaker for one upstream provider, as Envoy's outlier detection and Hystrix do it:
// closed while calls succeed; open after `failures` consecutive provider failures (5xx, timeouts,
// connect errors), when calls skip the provider; after `open_for` one probe goes through
// (half-open), whose success closes it and whose failure opens it again.
#include <chrono>
#include <cstdint>
#include <mutex>

namespace isartor::providers {

using Clock = std::chrono::steady_clock;

enum class BreakerState : uint8_t { kClosed, kOpen, kHalfOpen };

// "closed", "open", "half_open". Pure.
const char* to_string(BreakerState state);

class CircuitBreaker {
 public:
  // failures == 0: never opens.
  CircuitBreaker(int failures, std::chrono::milliseconds open_for) : failures_(failures), open_for_(open_for) {}

  // Whether a call may go now. Past the open period the first caller becomes the probe; another
  // probe is let through only when that one has not reported within a further open period (it
  // was cancelled). Thread-safe.
  bool allow(Clock::time_point now);
  // The provider answered (any status that is not its own failure). While open, only the probe's
  // answer closes it (a call that began before it opened says nothing new). Thread-safe.
  void on_success();
  // The call allow() let through was not made: a probe slot it took is free again. Thread-safe.
  void release();
  // The provider failed (5xx, timeout, connect error). Thread-safe.
  void on_failure(Clock::time_point now);
  // The state as /health shows it; kHalfOpen once the open period is over. Thread-safe.
  BreakerState state(Clock::time_point now) const;
  // When an open breaker lets its probe through (now or earlier when it is not open). Thread-safe.
  Clock::time_point retry_at(Clock::time_point now) const;

 private:
  const int failures_;
  const std::chrono::milliseconds open_for_;
  mutable std::mutex mutex_;
  int consecutive_ = 0;
  bool open_ = false;
  Clock::time_point opened_at_{};
  Clock::time_point probe_at_{};  // when the last probe went; zero: none in flight
};

}  // namespace isartor::providers
