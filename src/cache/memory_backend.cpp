#include "cache/memory_backend.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <utility>

namespace isartor::cache {

using TimePoint = std::chrono::steady_clock::time_point;

struct MemoryBackend::Shard {
  struct Entry {
    std::string key;
    std::string value;
    TimePoint expires;
  };
  using Position = std::list<Entry>::iterator;

  Shard(std::size_t max_entries, std::size_t max_bytes) : capacity(max_entries), byte_capacity(max_bytes) {}
  static std::size_t size_of(const Entry& entry) { return entry.key.size() + entry.value.size(); }

  static bool expired(const Entry& entry, TimePoint now) { return now >= entry.expires; }

  void drop(Position pos) {
    index.erase(pos->key);  // before the list node that the view points into goes away
    bytes -= size_of(*pos);
    lru.erase(pos);
  }

  const std::size_t capacity;
  const std::size_t byte_capacity;  // max() = no cap
  std::mutex mutex;
  std::size_t bytes = 0;
  std::list<Entry> lru;  // most recently used first
  // Keys are views of the Entry keys in `lru`: list nodes never move, so a lookup by
  // string_view needs no copy and each key is stored once.
  std::unordered_map<std::string_view, Position> index;
};

MemoryBackend::MemoryBackend(std::size_t capacity, std::chrono::seconds ttl, std::size_t shards,
                             Clock clock, std::size_t max_bytes)
    : ttl_(ttl), clock_(clock ? std::move(clock) : Clock(&std::chrono::steady_clock::now)) {
  const std::size_t n = std::max<std::size_t>(1, std::min(shards, capacity));
  shards_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t shard_bytes =
        max_bytes == 0 ? std::numeric_limits<std::size_t>::max() : max_bytes / n + (i < max_bytes % n ? 1 : 0);
    shards_.push_back(std::make_unique<Shard>(capacity / n + (i < capacity % n ? 1 : 0), shard_bytes));
  }
}

MemoryBackend::~MemoryBackend() = default;

MemoryBackend::Shard& MemoryBackend::shard_for(std::string_view key) {
  return *shards_[std::hash<std::string_view>{}(key) % shards_.size()];
}

std::optional<std::string> MemoryBackend::get(std::string_view key) {
  Shard& shard = shard_for(key);
  const TimePoint now = clock_();
  std::lock_guard lock(shard.mutex);
  const auto found = shard.index.find(key);
  if (found == shard.index.end()) return std::nullopt;
  const Shard::Position pos = found->second;
  if (Shard::expired(*pos, now)) {
    shard.drop(pos);
    return std::nullopt;
  }
  shard.lru.splice(shard.lru.begin(), shard.lru, pos);
  return pos->value;
}

void MemoryBackend::put(std::string key, std::string value, std::optional<std::chrono::seconds> ttl) {
  Shard& shard = shard_for(key);
  if (shard.capacity == 0) return;
  const std::size_t size = key.size() + value.size();
  const TimePoint now = clock_();
  const TimePoint expires = expiry_time(now, ttl.value_or(ttl_));
  std::lock_guard lock(shard.mutex);
  if (const auto found = shard.index.find(key); found != shard.index.end()) shard.drop(found->second);
  if (size > shard.byte_capacity) return;  // would evict everything and still not fit
  // Expired entries at the cold end go first, so they do not cost a live entry its place.
  while (!shard.lru.empty() && Shard::expired(shard.lru.back(), now)) {
    shard.drop(std::prev(shard.lru.end()));
  }
  while (!shard.lru.empty() && (shard.lru.size() >= shard.capacity || shard.bytes + size > shard.byte_capacity)) {
    shard.drop(std::prev(shard.lru.end()));
  }
  shard.lru.push_front({std::move(key), std::move(value), expires});
  shard.bytes += size;
  shard.index.emplace(shard.lru.front().key, shard.lru.begin());
}

bool MemoryBackend::erase(std::string_view key) {
  Shard& shard = shard_for(key);
  std::lock_guard lock(shard.mutex);
  const auto found = shard.index.find(key);
  if (found == shard.index.end()) return false;
  shard.drop(found->second);
  return true;
}

std::size_t MemoryBackend::bytes() const {
  std::size_t total = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    total += shard->bytes;
  }
  return total;
}

std::size_t MemoryBackend::size() const {
  std::size_t total = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    total += shard->lru.size();
  }
  return total;
}

void MemoryBackend::clear() {
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    shard->index.clear();
    shard->lru.clear();
    shard->bytes = 0;
  }
}

}  // namespace isartor::cache
