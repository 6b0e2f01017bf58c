#pragma once
// Picks the index implementation for the L1b semantic cache.
#include <cstddef>
#include <memory>

#include "vector/vector_index.h"

namespace isartor::vector {

enum class IndexKind {
  kAuto,  // flat while small, HNSW once the size reaches kAutoHnswThreshold (see auto_index.h)
  kFlat,  // exact scan: FlatIndex
  kHnsw,  // approximate graph: HnswIndex with default HnswParams
};

// Entry count from which HNSW search beats the exact scan at recall@10 >= 0.95 on 384-d
// clustered vectors (bench/vector_bench.cpp). Below it, flat is exact and needs no build time.
inline constexpr std::size_t kAutoHnswThreshold = 20'000;

// A new empty index of the given kind. kAuto with expected_size >= kAutoHnswThreshold starts
// as HNSW directly; otherwise it is an AutoIndex that migrates when it grows past the threshold.
// expected_size only pre-reserves memory. Throws std::invalid_argument if dims <= 0.
// Thread-safe (the returned index is independent).
std::unique_ptr<VectorIndex> make_index(int dims, IndexKind kind, std::size_t expected_size);

}  // namespace isartor::vector
