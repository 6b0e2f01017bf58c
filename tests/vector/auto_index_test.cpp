#include "vector/auto_index.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "vector/factory.h"
#include "vector/test_vectors.h"

namespace isartor::vector {
namespace {

using testing::Vectors;

constexpr int kDims = 64;

TEST(AutoIndex, SwitchesToHnswAtThresholdAndKeepsResults) {
  const Vectors data = testing::sample({.dims = kDims, .centres = 10}, 800, 71);
  AutoIndex index(kDims, 500);
  FlatIndex exact(kDims);  // mirror of every write, for ground truth
  auto upsert = [&](Id id, std::size_t row) {
    index.upsert(id, data.row(row));
    exact.upsert(id, data.row(row));
  };
  for (Id id = 0; id < 499; ++id) upsert(id, id);
  EXPECT_EQ(index.active_kind(), IndexKind::kFlat);

  upsert(499, 499);  // reaches the threshold: migration starts
  // Writes racing with the migration must survive it.
  for (Id id = 500; id < 800; ++id) upsert(id, id);
  for (Id id = 0; id < 50; ++id) {
    index.remove(id);
    exact.remove(id);
  }
  upsert(60, 700);  // id 60 now shares id 700's vector
  index.wait_for_migration();

  EXPECT_EQ(index.active_kind(), IndexKind::kHnsw);
  EXPECT_EQ(index.size(), 750u);
  double recall = 0;
  for (Id id = 0; id < 800; ++id) {
    const auto got = index.search(data.row(id), 10);
    recall += testing::recall(got, exact.search(data.row(id), 10)) / 800;
    for (const auto& n : got) EXPECT_GE(n.id, 50u) << "removed id returned";
    if (id >= 50 && id != 60) {
      ASSERT_FALSE(got.empty());
      EXPECT_NEAR(got[0].score, 1.0f, 1e-4) << "lost id " << id;
    }
  }
  EXPECT_GE(recall, 0.95);
  for (const auto& n : index.search(data.row(60), 3)) EXPECT_LT(n.score, 0.999f);
}

TEST(AutoIndex, StaysFlatBelowThreshold) {
  const Vectors data = testing::uniform(100, kDims, 72);
  AutoIndex index(kDims, 500);
  for (Id id = 0; id < 100; ++id) index.upsert(id, data.row(id));
  index.wait_for_migration();  // none started: returns at once
  EXPECT_EQ(index.active_kind(), IndexKind::kFlat);
  EXPECT_EQ(index.search(data.row(5), 1).at(0).id, 5u);
}

TEST(AutoIndex, DestructorStopsRunningMigration) {
  const Vectors data = testing::uniform(3000, kDims, 73);
  auto index = std::make_unique<AutoIndex>(kDims, 3000);
  for (Id id = 0; id < 3000; ++id) index->upsert(id, data.row(id));
  index.reset();  // must join the builder without waiting for or crashing in it
  SUCCEED();
}

TEST(AutoIndex, RejectsBadArguments) {
  EXPECT_THROW(AutoIndex(0, 10), std::invalid_argument);
  EXPECT_THROW(AutoIndex(kDims, 0), std::invalid_argument);
  EXPECT_THROW(AutoIndex(kDims, 10, HnswParams{.m = 0}), std::invalid_argument);
}

TEST(MakeIndex, PicksImplementationByKindAndSize) {
  EXPECT_NE(dynamic_cast<FlatIndex*>(make_index(kDims, IndexKind::kFlat, 10).get()), nullptr);
  EXPECT_NE(dynamic_cast<HnswIndex*>(make_index(kDims, IndexKind::kHnsw, 10).get()), nullptr);
  EXPECT_NE(dynamic_cast<AutoIndex*>(make_index(kDims, IndexKind::kAuto, 10).get()), nullptr);
  EXPECT_NE(dynamic_cast<HnswIndex*>(
                make_index(kDims, IndexKind::kAuto, kAutoHnswThreshold).get()),
            nullptr);
  EXPECT_THROW(make_index(0, IndexKind::kFlat, 0), std::invalid_argument);
  EXPECT_THROW(make_index(-1, IndexKind::kAuto, 0), std::invalid_argument);
}

}  // namespace
}  // namespace isartor::vector
