#pragma once
// In-process cache: N shards, each an LRU list + hash map under its own mutex, so concurrent
// requests rarely contend. Entries expire `ttl` after they were last stored (a get does not extend
// them). Keys are spread over n = max(1, min(shards, capacity)) shards by hash; capacity is split
// so the total is exact: every shard holds capacity / n entries and the first capacity % n shards
// one more. A shard evicts its least recently used entry when full even if others have room, so
// an uneven key spread can hold fewer than `capacity` entries, never more. `max_bytes` (keys plus
// values) is split the same way; a shard evicts until the new entry fits, and an entry larger
// than a shard's share is not stored.
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/cache_backend.h"

namespace isartor::cache {

class MemoryBackend final : public CacheBackend {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // capacity 0 stores nothing; ttl <= 0 means entries never expire; shards 0 is taken as 1;
  // max_bytes 0 means no byte cap. `clock` (default steady_clock::now) is injectable for tests and
  // must be thread-safe.
  MemoryBackend(std::size_t capacity, std::chrono::seconds ttl, std::size_t shards = 16,
                Clock clock = {}, std::size_t max_bytes = 0);
  std::size_t bytes() const override;
  ~MemoryBackend() override;

  std::optional<std::string> get(std::string_view key) override;
  void put(std::string key, std::string value, std::optional<std::chrono::seconds> ttl = std::nullopt) override;
  bool erase(std::string_view key) override;
  std::size_t size() const override;
  void clear() override;

 private:
  struct Shard;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::chrono::seconds ttl_;
  Clock clock_;
  Shard& shard_for(std::string_view key);
};

}  // namespace isartor::cache
