#include "vector/flat_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "vector/kernels.h"
#include "vector/test_vectors.h"

namespace isartor::vector {
namespace {

using testing::Vectors;

constexpr int kDims = 384;

// Reference answer: score every row with plain double-precision arithmetic and sort.
std::vector<Neighbor> brute_force(const Vectors& v, const std::vector<Id>& ids,
                                  std::span<const float> q, std::size_t k) {
  std::vector<Neighbor> all;
  for (std::size_t i = 0; i < v.size(); ++i) {
    double s = 0;
    for (int d = 0; d < v.dims; ++d) s += double{v.row(i)[d]} * q[d];
    all.push_back({ids[i], static_cast<float>(s)});
  }
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.score > b.score; });
  all.resize(std::min(k, all.size()));
  return all;
}

void fill(FlatIndex& index, const Vectors& v, Id first_id = 0) {
  for (std::size_t i = 0; i < v.size(); ++i) index.upsert(first_id + i, v.row(i));
}

TEST(DotKernel, MatchesScalarSumForAllTailLengths) {
  const Vectors v = testing::uniform(2, 77, 3);
  for (std::size_t n = 0; n <= 77; ++n) {
    double expected = 0;
    for (std::size_t i = 0; i < n; ++i) expected += double{v.row(0)[i]} * v.row(1)[i];
    EXPECT_NEAR(dot(v.row(0).data(), v.row(1).data(), n), expected, 1e-5) << "n=" << n;
  }
}

TEST(FlatIndex, TopKMatchesBruteForce) {
  const Vectors data = testing::uniform(2000, kDims, 1);
  const Vectors queries = testing::uniform(20, kDims, 2);
  std::vector<Id> ids(data.size());
  std::iota(ids.begin(), ids.end(), Id{1000});
  FlatIndex index(kDims);
  fill(index, data, 1000);
  for (std::size_t q = 0; q < queries.size(); ++q) {
    const auto got = index.search(queries.row(q), 10);
    const auto want = brute_force(data, ids, queries.row(q), 10);
    ASSERT_EQ(got.size(), 10u);
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].id, want[i].id) << "query " << q << " rank " << i;
      EXPECT_NEAR(got[i].score, want[i].score, 1e-5);
    }
  }
}

TEST(FlatIndex, ExactMatchScoresOne) {
  const Vectors data = testing::uniform(100, kDims, 4);
  FlatIndex index(kDims);
  fill(index, data);
  const auto got = index.search(data.row(42), 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 42u);
  EXPECT_NEAR(got[0].score, 1.0f, 1e-5);
}

TEST(FlatIndex, UpsertReplacesVector) {
  const Vectors data = testing::uniform(3, kDims, 5);
  FlatIndex index(kDims);
  index.upsert(7, data.row(0));
  index.upsert(8, data.row(1));
  index.upsert(7, data.row(2));
  EXPECT_EQ(index.size(), 2u);
  const auto got = index.search(data.row(2), 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 7u);
  EXPECT_NEAR(got[0].score, 1.0f, 1e-5);
  const auto old = index.search(data.row(0), 2);
  for (const auto& n : old) EXPECT_LT(n.score, 0.5f);
}

TEST(FlatIndex, RemoveKeepsOtherRowsFindable) {
  const Vectors data = testing::uniform(50, kDims, 6);
  FlatIndex index(kDims);
  fill(index, data);
  index.remove(0);   // first row: the last one is moved into its place
  index.remove(25);  // middle
  index.remove(49);  // the row that is last now
  index.remove(999); // unknown: no-op
  EXPECT_EQ(index.size(), 47u);
  for (Id id = 0; id < 50; ++id) {
    const auto got = index.search(data.row(id), 1);
    ASSERT_EQ(got.size(), 1u);
    if (id == 0 || id == 25 || id == 49) {
      EXPECT_NE(got[0].id, id);
    } else {
      EXPECT_EQ(got[0].id, id);
      EXPECT_NEAR(got[0].score, 1.0f, 1e-5);
    }
  }
}

TEST(FlatIndex, KLargerThanSizeReturnsEverythingSorted) {
  const Vectors data = testing::uniform(5, kDims, 7);
  FlatIndex index(kDims);
  fill(index, data);
  const auto got = index.search(data.row(3), 100);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end(),
                             [](auto& a, auto& b) { return a.score > b.score; }));
  EXPECT_EQ(got[0].id, 3u);
}

TEST(FlatIndex, EmptyIndexAndNonPositiveK) {
  FlatIndex index(kDims);
  const Vectors data = testing::uniform(1, kDims, 8);
  EXPECT_TRUE(index.search(data.row(0), 5).empty());
  index.upsert(1, data.row(0));
  EXPECT_TRUE(index.search(data.row(0), 0).empty());
  EXPECT_TRUE(index.search(data.row(0), -3).empty());
  index.remove(1);
  EXPECT_EQ(index.size(), 0u);
  EXPECT_TRUE(index.search(data.row(0), 5).empty());
}

TEST(FlatIndex, RejectsWrongDimensions) {
  EXPECT_THROW(FlatIndex(0), std::invalid_argument);
  FlatIndex index(4);
  const std::vector<float> three(3, 0.5f);
  EXPECT_THROW(index.upsert(1, three), std::invalid_argument);
  EXPECT_THROW(index.search(three, 1), std::invalid_argument);
  EXPECT_EQ(index.size(), 0u);
}

TEST(FlatIndex, MemoryCoversTheRows) {
  const Vectors data = testing::uniform(1000, kDims, 9);
  FlatIndex index(kDims);
  fill(index, data);
  EXPECT_GE(index.memory_bytes(), 1000u * kDims * sizeof(float));
  EXPECT_LT(index.memory_bytes(), 3u * 1000u * kDims * sizeof(float));
}

TEST(FlatIndex, SnapshotHoldsEveryEntry) {
  const Vectors data = testing::uniform(10, kDims, 10);
  FlatIndex index(kDims);
  fill(index, data);
  index.remove(4);
  const auto snap = index.snapshot();
  ASSERT_EQ(snap.ids.size(), 9u);
  ASSERT_EQ(snap.rows.size(), 9u * kDims);
  for (std::size_t i = 0; i < snap.ids.size(); ++i) {
    EXPECT_NE(snap.ids[i], 4u);
    EXPECT_TRUE(std::equal(data.row(snap.ids[i]).begin(), data.row(snap.ids[i]).end(),
                           snap.rows.begin() + i * kDims));
  }
}

}  // namespace
}  // namespace isartor::vector
