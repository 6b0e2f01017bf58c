#pragma once
// Where cached answers live. Level 1: MemoryBackend (in-process sharded LRU with TTL);
// Level 3: a Redis backend behind the same interface.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace isartor::cache {

// When an entry stored at `now` with lifetime `ttl` expires: time_point::max() for ttl <= 0 (never)
// and for one too long to represent. Pure.
inline std::chrono::steady_clock::time_point expiry_time(std::chrono::steady_clock::time_point now,
                                                         std::chrono::seconds ttl) {
  using TimePoint = std::chrono::steady_clock::time_point;
  // Compared in seconds, so that a very long ttl cannot overflow the time point.
  if (ttl <= std::chrono::seconds::zero() || ttl >= std::chrono::duration_cast<std::chrono::seconds>(TimePoint::max() - now)) {
    return TimePoint::max();
  }
  return now + ttl;
}

class CacheBackend {
 public:
  virtual ~CacheBackend() = default;
  // The value stored under key if present and not expired. Thread-safe.
  virtual std::optional<std::string> get(std::string_view key) = 0;
  // Stores or replaces; may evict the least recently used entry. `ttl`: this entry's lifetime
  // instead of the backend's own (a request's Cache-Control: max-age). Thread-safe.
  virtual void put(std::string key, std::string value, std::optional<std::chrono::seconds> ttl = std::nullopt) = 0;
  // Removes one entry; true if it was there. Thread-safe.
  virtual bool erase(std::string_view key) = 0;
  // Entries currently held (expired ones not yet swept may count). Thread-safe.
  virtual std::size_t size() const = 0;
  // Bytes those entries hold (keys and values). Thread-safe.
  virtual std::size_t bytes() const = 0;
  // Drops everything. Thread-safe.
  virtual void clear() = 0;
};

}  // namespace isartor::cache
