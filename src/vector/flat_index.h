#pragma once
// Exact nearest-neighbour search: one contiguous row per entry, every query scans all rows.
#include <cstddef>
#include <span>
#include <unordered_map>
#include <vector>

#include "vector/rw_mutex.h"
#include "vector/vector_index.h"

namespace isartor::vector {

class FlatIndex final : public VectorIndex {
 public:
  // All entries, copied out at once; rows holds ids.size() rows of dims floats.
  struct Snapshot {
    std::vector<Id> ids;
    std::vector<float> rows;
  };

  // Throws std::invalid_argument if dims <= 0. expected_size only pre-reserves memory.
  explicit FlatIndex(int dims, std::size_t expected_size = 0);

  int dimensions() const override { return dims_; }
  // Overwrites the row in place when id exists. Throws std::invalid_argument on a wrong size.
  void upsert(Id id, std::span<const float> vector) override;
  // Moves the last row into the hole, so rows stay dense. No-op for an unknown id.
  void remove(Id id) override;
  // Exact top-k by inner product, best first, ties by ascending id; at most size() results,
  // none for k <= 0. Throws std::invalid_argument on a wrong-sized query.
  std::vector<Neighbor> search(std::span<const float> query, int k) const override;
  std::size_t size() const override;
  std::size_t memory_bytes() const override;

  // Copy of every entry under the read lock (AutoIndex migrates from it). Thread-safe.
  Snapshot snapshot() const;

 private:
  const int dims_;
  mutable RwMutex mutex_;
  std::vector<float> rows_;  // row r at [r * dims_, (r + 1) * dims_)
  std::vector<Id> ids_;      // row -> id
  std::unordered_map<Id, std::size_t> row_of_;
};

}  // namespace isartor::vector
