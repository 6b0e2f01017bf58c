#include "cache/memory_backend.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace isartor::cache {
namespace {

using namespace std::chrono_literals;
using TimePoint = std::chrono::steady_clock::time_point;

// Backends built here read a clock that only moves when the test advances it.
class MemoryBackendTest : public ::testing::Test {
 protected:
  MemoryBackend make(std::size_t capacity, std::chrono::seconds ttl, std::size_t shards = 16) {
    return MemoryBackend(capacity, ttl, shards, [this] { return now_; });
  }
  void advance(std::chrono::steady_clock::duration by) { now_ += by; }

 private:
  TimePoint now_{1h};
};

TEST(MemoryBackendBytes, EvictsByBytesAndSkipsWhatCannotFit) {
  // One shard of 100 bytes (keys plus values).
  MemoryBackend cache(1000, std::chrono::seconds(0), 1, {}, 100);
  cache.put("a", std::string(39, 'x'));  // 40 bytes
  cache.put("b", std::string(39, 'y'));  // 80
  EXPECT_EQ(cache.bytes(), 80u);
  cache.put("c", std::string(39, 'z'));  // 120 > 100: the least recently used ("a") goes
  EXPECT_EQ(cache.get("a"), std::nullopt);
  EXPECT_TRUE(cache.get("b").has_value());
  EXPECT_EQ(cache.bytes(), 80u);
  cache.put("b", "small");  // a replacement is counted at its new size
  EXPECT_EQ(cache.bytes(), 46u);
  cache.put("huge", std::string(200, 'h'));  // larger than the whole budget: not stored
  EXPECT_EQ(cache.get("huge"), std::nullopt);
  EXPECT_EQ(cache.size(), 2u);
  cache.clear();
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST_F(MemoryBackendTest, StoresReplacesAndMisses) {
  auto cache = make(10, 0s);
  EXPECT_EQ(cache.get("a"), std::nullopt);
  cache.put("a", "1");
  EXPECT_EQ(cache.get("a"), "1");
  cache.put("a", "2");
  EXPECT_EQ(cache.get("a"), "2");
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.get("b"), std::nullopt);
  cache.put("", "empty key");
  EXPECT_EQ(cache.get(""), "empty key");
}

TEST_F(MemoryBackendTest, EvictsTheLeastRecentlyUsedEntry) {
  auto cache = make(3, 0s, 1);
  cache.put("a", "1");
  cache.put("b", "2");
  cache.put("c", "3");
  EXPECT_EQ(cache.get("a"), "1");  // b is now the coldest
  cache.put("d", "4");
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.get("b"), std::nullopt);
  EXPECT_EQ(cache.get("a"), "1");
  EXPECT_EQ(cache.get("c"), "3");
  EXPECT_EQ(cache.get("d"), "4");
}

TEST_F(MemoryBackendTest, ReplacingAnEntryMakesItMostRecent) {
  auto cache = make(3, 0s, 1);
  cache.put("a", "1");
  cache.put("b", "2");
  cache.put("c", "3");
  cache.put("a", "1'");  // b is now the coldest
  cache.put("d", "4");
  EXPECT_EQ(cache.get("b"), std::nullopt);
  EXPECT_EQ(cache.get("a"), "1'");
}

TEST_F(MemoryBackendTest, MissesDoNotChangeRecency) {
  auto cache = make(2, 0s, 1);
  cache.put("a", "1");
  cache.put("b", "2");
  EXPECT_EQ(cache.get("zzz"), std::nullopt);
  cache.put("c", "3");
  EXPECT_EQ(cache.get("a"), std::nullopt);
  EXPECT_EQ(cache.get("b"), "2");
}

TEST_F(MemoryBackendTest, NeverHoldsMoreThanCapacityAndFillsItExactly) {
  for (const std::size_t capacity : {1u, 5u, 15u, 16u, 17u, 100u}) {
    auto cache = make(capacity, 0s, 16);
    for (int i = 0; i < 5000; ++i) {
      cache.put("key-" + std::to_string(i), std::to_string(i));
      ASSERT_LE(cache.size(), capacity) << "capacity " << capacity << " after " << i;
    }
    // 5000 keys reach every shard, so every shard is full: the split adds up to `capacity`.
    EXPECT_EQ(cache.size(), capacity);
    int hits = 0;
    for (int i = 0; i < 5000; ++i) hits += cache.get("key-" + std::to_string(i)).has_value();
    EXPECT_EQ(hits, static_cast<int>(capacity));
  }
}

TEST_F(MemoryBackendTest, AnEntrysOwnTtlReplacesTheBackends) {
  auto cache = make(10, 100s);
  cache.put("short", "1", 5s);
  cache.put("long", "2", 500s);
  cache.put("default", "3");
  advance(5s);
  EXPECT_EQ(cache.get("short"), std::nullopt);
  EXPECT_EQ(cache.get("default"), "3");
  advance(100s);
  EXPECT_EQ(cache.get("default"), std::nullopt);
  EXPECT_EQ(cache.get("long"), "2");  // longer than the backend's ttl: the request asked for it
  auto forever = make(10, 0s);
  forever.put("a", "1", 5s);
  advance(6s);
  EXPECT_EQ(forever.get("a"), std::nullopt);
}

TEST_F(MemoryBackendTest, ZeroCapacityStoresNothing) {
  auto cache = make(0, 0s);
  cache.put("a", "1");
  EXPECT_EQ(cache.get("a"), std::nullopt);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_FALSE(cache.erase("a"));
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(MemoryBackendTest, ZeroShardsMeansOne) {
  auto cache = make(2, 0s, 0);
  cache.put("a", "1");
  cache.put("b", "2");
  cache.put("c", "3");
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.get("a"), std::nullopt);
}

TEST_F(MemoryBackendTest, EntriesExpireTtlAfterTheyWereStored) {
  auto cache = make(10, 10s);
  cache.put("a", "1");
  advance(9s);
  EXPECT_EQ(cache.get("a"), "1");  // reading does not extend the ttl
  advance(999ms);
  EXPECT_EQ(cache.get("a"), "1");
  advance(1ms);
  EXPECT_EQ(cache.get("a"), std::nullopt);
  EXPECT_EQ(cache.size(), 0u);  // the expired entry was dropped by the miss
}

TEST_F(MemoryBackendTest, ReplacingAnEntryRestartsItsTtl) {
  auto cache = make(10, 10s);
  cache.put("a", "1");
  advance(6s);
  cache.put("a", "2");
  advance(6s);
  EXPECT_EQ(cache.get("a"), "2");
  advance(4s);
  EXPECT_EQ(cache.get("a"), std::nullopt);
}

TEST_F(MemoryBackendTest, NonPositiveOrHugeTtlNeverExpires) {
  for (const auto ttl : {0s, -5s, std::chrono::seconds::max()}) {
    auto cache = make(10, ttl);
    cache.put("a", "1");
    advance(24h * 365 * 50);
    EXPECT_EQ(cache.get("a"), "1") << ttl.count();
  }
}

TEST_F(MemoryBackendTest, PutSweepsExpiredEntriesAtTheColdEnd) {
  auto cache = make(3, 10s, 1);
  cache.put("a", "1");
  cache.put("b", "2");
  advance(5s);
  cache.put("c", "3");
  advance(6s);  // a and b expired, c has 4s left
  cache.put("d", "4");
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.get("c"), "3");
  EXPECT_EQ(cache.get("d"), "4");
}

TEST_F(MemoryBackendTest, EraseRemovesOneEntry) {
  auto cache = make(10, 0s);
  cache.put("a", "1");
  cache.put("b", "2");
  EXPECT_TRUE(cache.erase("a"));
  EXPECT_FALSE(cache.erase("a"));
  EXPECT_FALSE(cache.erase("never"));
  EXPECT_EQ(cache.get("a"), std::nullopt);
  EXPECT_EQ(cache.get("b"), "2");
  EXPECT_EQ(cache.size(), 1u);
  cache.put("a", "3");
  EXPECT_EQ(cache.get("a"), "3");
}

TEST_F(MemoryBackendTest, ClearEmptiesEveryShard) {
  auto cache = make(1000, 0s);  // room to spare in every shard
  for (int i = 0; i < 50; ++i) cache.put(std::to_string(i), "v");
  EXPECT_EQ(cache.size(), 50u);
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(cache.get(std::to_string(i)), std::nullopt);
  cache.put("again", "v");
  EXPECT_EQ(cache.get("again"), "v");
}

TEST(MemoryBackend, DefaultClockIsUsable) {
  MemoryBackend cache(4, 60s);
  cache.put("a", "1");
  EXPECT_EQ(cache.get("a"), "1");
}

// Threads hammer overlapping keys; every value written is "<key>#<thread>#<op>", so a read that
// returns anything else exposes a torn or misfiled entry.
TEST(MemoryBackend, ConcurrentMixedOperationsKeepInvariants) {
  constexpr std::size_t kCapacity = 64;
  constexpr int kThreads = 8;
  constexpr int kOps = 20000;
  constexpr int kKeys = 200;
  MemoryBackend cache(kCapacity, 3600s, 16);
  std::atomic<int> bad_values{0};
  std::atomic<int> oversize{0};
  std::atomic<int> hits{0};

  const auto valid = [](const std::string& key, const std::string& value) {
    const std::string prefix = key + "#";
    if (value.rfind(prefix, 0) != 0) return false;
    const int thread = std::stoi(value.substr(prefix.size()));
    return thread >= 0 && thread < kThreads;
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) + 1);
      for (int i = 0; i < kOps; ++i) {
        const std::string key = "k" + std::to_string(rng() % kKeys);
        const unsigned op = rng() % 10;
        if (op < 5) {
          if (auto value = cache.get(key)) {
            ++hits;
            if (!valid(key, *value)) ++bad_values;
          }
        } else if (op < 9) {
          cache.put(key, key + "#" + std::to_string(t) + "#" + std::to_string(i));
        } else {
          cache.erase(key);
        }
        if (i % 1000 == 0 && cache.size() > kCapacity) ++oversize;
      }
    });
  }
  for (auto& thread : threads) thread.join();

  EXPECT_EQ(bad_values.load(), 0);
  EXPECT_EQ(oversize.load(), 0);
  EXPECT_GT(hits.load(), 0);
  EXPECT_LE(cache.size(), kCapacity);
  std::size_t present = 0;
  for (int k = 0; k < kKeys; ++k) {
    const std::string key = "k" + std::to_string(k);
    if (auto value = cache.get(key)) {
      ++present;
      EXPECT_TRUE(valid(key, *value)) << key << " -> " << *value;
    }
  }
  EXPECT_EQ(present, cache.size());
}

}  // namespace
}  // namespace isartor::cache
