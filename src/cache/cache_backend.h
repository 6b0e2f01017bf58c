#pragma once
// Where cached answers live. Level 1: MemoryBackend (in-process sharded LRU with TTL);
// Level 3: a Redis backend behind the same interface.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace isartor::cache {

class CacheBackend {
 public:
  virtual ~CacheBackend() = default;
  // The value stored under key if present and not expired. Thread-safe.
  virtual std::optional<std::string> get(std::string_view key) = 0;
  // Stores or replaces; may evict the least recently used entry. Thread-safe.
  virtual void put(std::string key, std::string value) = 0;
  // Removes one entry; true if it was there. Thread-safe.
  virtual bool erase(std::string_view key) = 0;
  // Entries currently held (expired ones not yet swept may count). Thread-safe.
  virtual std::size_t size() const = 0;
  // Drops everything. Thread-safe.
  virtual void clear() = 0;
};

}  // namespace isartor::cache
