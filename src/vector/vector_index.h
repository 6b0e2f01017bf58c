#pragma once
// Nearest-neighbour search over L2-normalised float vectors by inner product (= cosine).
// FlatIndex: exact SIMD scan, best for small sizes; HnswIndex: approximate, for large ones.
#include <cstdint>
#include <span>
#include <vector>

namespace isartor::vector {

using Id = uint64_t;

struct Neighbor {
  Id id = 0;
  float score = 0;  // inner product, higher is closer
};

class VectorIndex {
 public:
  virtual ~VectorIndex() = default;
  virtual int dimensions() const = 0;
  // Adds or replaces the vector stored under id. Thread-safe (writers are serialised).
  virtual void upsert(Id id, std::span<const float> vector) = 0;
  // Removes id if present. Thread-safe.
  virtual void remove(Id id) = 0;
  // The k best matches, best first. Thread-safe; concurrent searches do not block each other.
  virtual std::vector<Neighbor> search(std::span<const float> query, int k) const = 0;
  virtual std::size_t size() const = 0;
  // Bytes held by the index (vectors and graph), for benchmarks and /health. Thread-safe.
  virtual std::size_t memory_bytes() const = 0;
};

}  // namespace isartor::vector
