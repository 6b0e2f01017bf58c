#include "providers/key_pool.h"

#include <algorithm>

namespace isartor::providers {

std::optional<std::size_t> KeyPool::pick(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  const std::size_t n = cooled_until_.size();
  const std::size_t start = strategy_ == config::KeyStrategy::kRoundRobin ? next_ : 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t key = (start + i) % n;
    if (cooled_until_[key] <= now) {
      next_ = (key + 1) % n;
      return key;
    }
  }
  return std::nullopt;
}

void KeyPool::cool_down(std::size_t key, Clock::time_point until) {
  std::lock_guard lock(mutex_);
  if (key < cooled_until_.size()) cooled_until_[key] = std::max(cooled_until_[key], until);
}

std::size_t KeyPool::available(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(std::ranges::count_if(cooled_until_, [now](auto until) { return until <= now; }));
}

std::size_t KeyPool::soonest() const {
  std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(std::ranges::min_element(cooled_until_) - cooled_until_.begin());
}

}  // namespace isartor::providers
