#include "vector/hnsw_index.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <unordered_set>

#include "vector/flat_index.h"
#include "vector/test_vectors.h"

namespace isartor::vector {
namespace {

using testing::Vectors;

constexpr int kDims = 384;
// 5k vectors around 50 centres: the recall target the semantic cache is tuned for.
const testing::Clusters kSpace{.dims = kDims, .centres = 50};

// Mean recall@k of `index` against exact search over the same entries.
double mean_recall(const VectorIndex& index, const FlatIndex& exact, const Vectors& queries,
                   int k) {
  double sum = 0;
  for (std::size_t q = 0; q < queries.size(); ++q) {
    sum += testing::recall(index.search(queries.row(q), k), exact.search(queries.row(q), k));
  }
  return sum / static_cast<double>(queries.size());
}

class HnswClustered : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new Vectors(testing::sample(kSpace, 5000, 11));
    queries_ = new Vectors(testing::sample(kSpace, 200, 12));
  }
  static void TearDownTestSuite() {
    delete data_;
    delete queries_;
  }
  static void fill(VectorIndex& index) {
    for (std::size_t i = 0; i < data_->size(); ++i) index.upsert(i, data_->row(i));
  }
  static Vectors* data_;
  static Vectors* queries_;
};
Vectors* HnswClustered::data_ = nullptr;
Vectors* HnswClustered::queries_ = nullptr;

TEST_F(HnswClustered, RecallAt10AgainstExactSearch) {
  HnswIndex hnsw(kDims);
  FlatIndex flat(kDims);
  fill(hnsw);
  fill(flat);
  EXPECT_EQ(hnsw.size(), data_->size());
  const double r = mean_recall(hnsw, flat, *queries_, 10);
  RecordProperty("recall_at_10", std::to_string(r));
  EXPECT_GE(r, 0.95);
}

TEST_F(HnswClustered, RemovingHalfNeverReturnsRemovedIdsAndKeepsRecall) {
  HnswIndex hnsw(kDims);
  FlatIndex flat(kDims);
  fill(hnsw);
  fill(flat);
  std::unordered_set<Id> removed;
  for (Id id = 0; id < data_->size(); id += 2) {
    hnsw.remove(id);
    flat.remove(id);
    removed.insert(id);
  }
  EXPECT_EQ(hnsw.size(), data_->size() / 2);
  for (std::size_t q = 0; q < queries_->size(); ++q) {
    for (const auto& n : hnsw.search(queries_->row(q), 10)) {
      EXPECT_FALSE(removed.contains(n.id)) << "removed id " << n.id << " returned";
    }
  }
  // Removed vectors themselves as queries: their exact matches must be gone.
  for (Id id = 0; id < 200; id += 2) {
    const auto got = hnsw.search(data_->row(id), 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_FALSE(removed.contains(got[0].id));
  }
  EXPECT_GE(mean_recall(hnsw, flat, *queries_, 10), 0.9);
}

TEST_F(HnswClustered, UpsertOfExistingIdReplacesItsVector) {
  HnswIndex hnsw(kDims);
  fill(hnsw);
  // Give id 0 the vector of id 1 and check the old position no longer matches exactly.
  hnsw.upsert(0, data_->row(1));
  EXPECT_EQ(hnsw.size(), data_->size());
  for (const auto& n : hnsw.search(data_->row(0), 5)) EXPECT_LT(n.score, 0.999f);
  std::unordered_set<Id> top;
  for (const auto& n : hnsw.search(data_->row(1), 2)) {
    top.insert(n.id);
    EXPECT_NEAR(n.score, 1.0f, 1e-4);
  }
  EXPECT_EQ(top, (std::unordered_set<Id>{0, 1}));
}

TEST(HnswIndex, TombstonedIdsAreNeverReturnedBeforeConsolidation) {
  const Vectors data = testing::sample({.dims = kDims, .centres = 5}, 500, 21);
  HnswIndex hnsw(kDims);
  for (std::size_t i = 0; i < data.size(); ++i) hnsw.upsert(i, data.row(i));
  for (Id id = 0; id < 10; ++id) hnsw.remove(id);
  EXPECT_EQ(hnsw.tombstones(), 10u);  // below the batch of 16: still tombstones
  for (Id id = 0; id < 10; ++id) {
    for (const auto& n : hnsw.search(data.row(id), 20)) EXPECT_GE(n.id, 10u);
  }
}

TEST(HnswIndex, ChurnKeepsMemoryBoundedAndRecallUp) {
  constexpr std::size_t kCapacity = 2000;
  constexpr int kChurnDims = 64;  // memory behaviour does not depend on dims; keeps it quick
  const testing::Clusters space{.dims = kChurnDims, .centres = 20};
  const Vectors data = testing::sample(space, 4000, 31);
  HnswIndex hnsw(kChurnDims, HnswParams{.ef_construction = 64});
  FlatIndex flat(kChurnDims);
  Id next = 0;
  auto insert = [&] {
    const auto row = data.row(next % data.size());
    hnsw.upsert(next, row);
    flat.upsert(next, row);
    ++next;
  };
  auto evict_oldest = [&] {
    hnsw.remove(next - kCapacity);
    flat.remove(next - kCapacity);
  };
  while (next < kCapacity) insert();
  const std::size_t full = hnsw.memory_bytes();
  std::size_t after_first_round = 0;
  for (std::size_t i = 1; i <= 10 * kCapacity; ++i) {
    evict_oldest();
    insert();
    if (i == kCapacity) after_first_round = hnsw.memory_bytes();
  }
  EXPECT_EQ(hnsw.size(), kCapacity);
  // Slots peak at capacity + one tombstone batch, so memory stops growing after the first
  // round (vector growth may double it once, never more).
  EXPECT_LE(after_first_round, 2 * full);
  EXPECT_LE(hnsw.memory_bytes(), after_first_round);
  const Vectors queries = testing::sample(space, 100, 32);
  EXPECT_GE(mean_recall(hnsw, flat, queries, 10), 0.9);
}

TEST(HnswIndex, RemovingEverythingThenInsertingWorks) {
  const Vectors data = testing::uniform(40, kDims, 41);
  HnswIndex hnsw(kDims);
  for (Id id = 0; id < 20; ++id) hnsw.upsert(id, data.row(id));
  for (Id id = 0; id < 20; ++id) hnsw.remove(id);
  EXPECT_EQ(hnsw.size(), 0u);
  EXPECT_TRUE(hnsw.search(data.row(0), 3).empty());
  for (Id id = 20; id < 40; ++id) hnsw.upsert(id, data.row(id));
  for (Id id = 20; id < 40; ++id) {
    const auto got = hnsw.search(data.row(id), 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].id, id);
  }
}

TEST(HnswIndex, SmallIndexKLargerThanSize) {
  const Vectors data = testing::uniform(30, kDims, 51);
  HnswIndex hnsw(kDims);
  for (Id id = 0; id < 30; ++id) hnsw.upsert(id, data.row(id));
  const auto got = hnsw.search(data.row(7), 100);
  EXPECT_EQ(got.size(), 30u);
  EXPECT_EQ(got.front().id, 7u);
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end(),
                             [](auto& a, auto& b) { return a.score > b.score; }));
  EXPECT_TRUE(hnsw.search(data.row(7), 0).empty());
}

TEST(HnswIndex, SameSeedBuildsSameGraph) {
  const testing::Clusters space{.dims = 32, .centres = 10};
  const Vectors data = testing::sample(space, 1000, 61);
  const Vectors queries = testing::sample(space, 20, 62);
  HnswIndex a(32, HnswParams{.ef_search = 8});
  HnswIndex b(32, HnswParams{.ef_search = 8});
  for (Id id = 0; id < data.size(); ++id) {
    a.upsert(id, data.row(id));
    b.upsert(id, data.row(id));
  }
  for (std::size_t q = 0; q < queries.size(); ++q) {
    const auto ra = a.search(queries.row(q), 5);
    const auto rb = b.search(queries.row(q), 5);
    ASSERT_EQ(ra.size(), rb.size());
    for (std::size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ra[i].id, rb[i].id);
  }
}

TEST(HnswIndex, RejectsBadParametersAndDimensions) {
  EXPECT_THROW(HnswIndex(0), std::invalid_argument);
  EXPECT_THROW(HnswIndex(8, HnswParams{.m = 1}), std::invalid_argument);
  EXPECT_THROW(HnswIndex(8, HnswParams{.ef_construction = 0}), std::invalid_argument);
  EXPECT_THROW(HnswIndex(8, HnswParams{.ef_search = 0}), std::invalid_argument);
  HnswIndex hnsw(8);
  EXPECT_THROW(hnsw.set_ef_search(0), std::invalid_argument);
  const std::vector<float> seven(7, 0.1f);
  EXPECT_THROW(hnsw.upsert(1, seven), std::invalid_argument);
  EXPECT_THROW(hnsw.search(seven, 1), std::invalid_argument);
  EXPECT_EQ(hnsw.size(), 0u);
}

}  // namespace
}  // namespace isartor::vector
