#pragma once
// An index that starts as an exact FlatIndex and switches to an HnswIndex once it holds
// `threshold` entries. The HNSW graph is built on a background thread from a snapshot while the
// flat index keeps serving searches; writes made meanwhile go to both (and the builder skips
// their ids), and the flat index is dropped when the graph has caught up. It never switches
// back: HNSW stays correct, and fast enough, if the cache later shrinks.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <span>
#include <thread>
#include <unordered_set>
#include <vector>

#include "vector/factory.h"
#include "vector/flat_index.h"
#include "vector/hnsw_index.h"
#include "vector/rw_mutex.h"

namespace isartor::vector {

class AutoIndex final : public VectorIndex {
 public:
  // Throws std::invalid_argument if dims <= 0 or threshold == 0.
  AutoIndex(int dims, std::size_t threshold, HnswParams params = {},
            std::size_t expected_size = 0);
  // Stops a running migration and joins its thread.
  ~AutoIndex() override;

  int dimensions() const override { return dims_; }
  // May start the migration (cost: one copy of the flat rows under the write lock).
  void upsert(Id id, std::span<const float> vector) override;
  void remove(Id id) override;
  // Answered by the flat index until the migration completes, by HNSW after.
  std::vector<Neighbor> search(std::span<const float> query, int k) const override;
  std::size_t size() const override;
  // Both indexes while migrating.
  std::size_t memory_bytes() const override;

  // kFlat until the migration has completed, kHnsw after. Thread-safe.
  IndexKind active_kind() const;
  // Blocks until no migration is running (returns at once if none started). Thread-safe.
  void wait_for_migration() const;

 private:
  void migrate(FlatIndex::Snapshot snapshot);

  const int dims_;
  const std::size_t threshold_;
  const HnswParams params_;
  mutable RwMutex mutex_;
  mutable std::condition_variable_any migrated_;
  std::unique_ptr<FlatIndex> flat_;  // null once migrated
  std::unique_ptr<HnswIndex> hnsw_;  // non-null from the start of the migration
  std::unordered_set<Id> written_;   // ids written during the migration; the builder skips them
  std::atomic<bool> stop_{false};
  std::thread builder_;
};

}  // namespace isartor::vector
