// Concurrent searches and writes on every index kind. Run under -fsanitize=thread to check
// for data races; without it the test still checks that results stay well-formed.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <shared_mutex>
#include <memory>
#include <thread>
#include <vector>

#include "vector/auto_index.h"
#include "vector/factory.h"
#include "vector/flat_index.h"
#include "vector/hnsw_index.h"
#include "vector/rw_mutex.h"
#include "vector/test_vectors.h"

namespace isartor::vector {
namespace {

using testing::Vectors;

constexpr int kDims = 32;
constexpr Id kIds = 600;

struct Kind {
  const char* name;
  std::unique_ptr<VectorIndex> (*make)();
};

class Concurrent : public ::testing::TestWithParam<Kind> {};

TEST_P(Concurrent, SearchesRunAlongsideUpsertsAndRemoves) {
  const Vectors data = testing::sample({.dims = kDims, .centres = 8}, 2 * kIds, 81);
  auto index = GetParam().make();
  for (Id id = 0; id < kIds / 2; ++id) index->upsert(id, data.row(id));

  std::atomic<bool> writing{true};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {  // writers on disjoint id ranges: upsert, overwrite, remove
    threads.emplace_back([&, w] {
      for (int round = 0; round < 3; ++round) {
        for (Id id = w; id < kIds; id += 2) index->upsert(id, data.row(id + round));
        for (Id id = w; id < kIds; id += 6) index->remove(id);
      }
    });
  }
  for (int r = 0; r < 4; ++r) {
    threads.emplace_back([&, r] {
      std::size_t q = r;
      while (writing) {
        const auto got = index->search(data.row(q++ % data.size()), 10);
        const bool ok = got.size() <= 10 &&
                        std::all_of(got.begin(), got.end(), [](auto& n) { return n.id < kIds; }) &&
                        std::is_sorted(got.begin(), got.end(),
                                       [](auto& a, auto& b) { return a.score > b.score; });
        if (!ok) ++bad;
        index->size();
        index->memory_bytes();
      }
    });
  }
  threads[0].join();
  threads[1].join();
  writing = false;
  for (std::size_t t = 2; t < threads.size(); ++t) threads[t].join();

  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(index->size(), kIds - 2 * (kIds / 6));  // ids = 0 or 1 mod 6 were removed
  if (auto* a = dynamic_cast<AutoIndex*>(index.get())) a->wait_for_migration();
  const auto got = index->search(data.row(3 + 2), 1);  // id 3 holds row 3 + last round
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 3u);
}

TEST(RwMutex, WaitingWriterIsNotStarvedByOverlappingReaders) {
  RwMutex mutex;
  std::atomic<bool> stop{false};
  std::atomic<bool> writing{false};
  std::atomic<int> overlaps{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&] {
      while (!stop) {
        std::shared_lock lock(mutex);
        if (writing) ++overlaps;
        std::this_thread::sleep_for(std::chrono::microseconds(500));
      }
    });
  }
  auto writer = std::async(std::launch::async, [&] {
    for (int i = 0; i < 20; ++i) {
      std::unique_lock lock(mutex);
      writing = true;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      writing = false;
    }
  });
  const bool finished = writer.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_TRUE(finished) << "writer starved";
  EXPECT_EQ(overlaps.load(), 0) << "reader ran while the writer held the lock";
}

INSTANTIATE_TEST_SUITE_P(
    AllKinds, Concurrent,
    ::testing::Values(
        Kind{"flat", [] { return make_index(kDims, IndexKind::kFlat, 0); }},
        Kind{"hnsw", [] { return make_index(kDims, IndexKind::kHnsw, 0); }},
        Kind{"auto", []() -> std::unique_ptr<VectorIndex> {
               return std::make_unique<AutoIndex>(kDims, 200);  // migrates mid-test
             }}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace isartor::vector
