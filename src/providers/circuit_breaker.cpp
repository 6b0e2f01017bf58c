#include "providers/circuit_breaker.h"

namespace isartor::providers {

const char* to_string(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed: return "closed";
    case BreakerState::kOpen: return "open";
    case BreakerState::kHalfOpen: return "half_open";
  }
  return "?";
}

bool CircuitBreaker::allow(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (!open_) return true;
  if (now < opened_at_ + open_for_) return false;
  const bool probe_in_flight = probe_at_ != Clock::time_point{} && now < probe_at_ + open_for_;
  if (probe_in_flight) return false;
  probe_at_ = now;
  return true;
}

void CircuitBreaker::on_success() {
  std::lock_guard lock(mutex_);
  if (open_ && probe_at_ == Clock::time_point{}) return;
  consecutive_ = 0;
  open_ = false;
  probe_at_ = {};
}

void CircuitBreaker::release() {
  std::lock_guard lock(mutex_);
  probe_at_ = {};
}

void CircuitBreaker::on_failure(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  ++consecutive_;
  // A failed probe opens it again at once; otherwise the count must reach the threshold.
  if (failures_ > 0 && (open_ || consecutive_ >= failures_)) {
    open_ = true;
    opened_at_ = now;
    probe_at_ = {};
  }
}

BreakerState CircuitBreaker::state(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  if (!open_) return BreakerState::kClosed;
  return now < opened_at_ + open_for_ ? BreakerState::kOpen : BreakerState::kHalfOpen;
}

Clock::time_point CircuitBreaker::retry_at(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  if (!open_) return now;
  const Clock::time_point at = opened_at_ + open_for_;
  if (probe_at_ != Clock::time_point{}) return std::max(at, probe_at_ + open_for_);
  return at;
}

}  // namespace isartor::providers
