#pragma once
// The API keys of one provider: which key the next call uses (round-robin over the keys at rest
// or the first one at rest, by priority), and each key's cooldown after the provider refused it
// (429 rate limit or quota, 401/403).
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <vector>

#include "config/config.h"
#include "providers/circuit_breaker.h"

namespace isartor::providers {

class KeyPool {
 public:
  KeyPool(std::size_t keys, config::KeyStrategy strategy) : strategy_(strategy), cooled_until_(keys) {}

  // The index of the key to use now, or none when every key is cooling down. Thread-safe.
  std::optional<std::size_t> pick(Clock::time_point now);
  // Rests `key` until `until` (a later cooldown never shortens an earlier one). Thread-safe.
  void cool_down(std::size_t key, Clock::time_point until);
  // How many keys may be used now. Thread-safe.
  std::size_t available(Clock::time_point now) const;
  // The key whose rest ends first (the last resort when all rest). Thread-safe.
  std::size_t soonest() const;
  std::size_t size() const { return cooled_until_.size(); }

 private:
  const config::KeyStrategy strategy_;
  mutable std::mutex mutex_;
  std::vector<Clock::time_point> cooled_until_;
  std::size_t next_ = 0;  // round-robin cursor
};

}  // namespace isartor::providers
