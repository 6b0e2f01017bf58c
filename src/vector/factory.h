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

// Where kAuto switches to HNSW. bench/vector_bench.cpp (384-d, top-10, ef_search 128, recall@10
// >= 0.99): HNSW search is faster than the scan from ~3k entries, 3x faster at 10k (70 vs
// 210 us) and 6x at 20k. Below 10k the scan costs <= ~0.2 ms, is exact and makes inserts free
// (an HNSW insert holds the write lock ~0.1-0.3 ms), so the switch waits until 10k.
inline constexpr std::size_t kAutoHnswThreshold = 10'000;

// A new empty index of the given kind. kAuto with expected_size >= kAutoHnswThreshold starts
// as HNSW directly; otherwise it is an AutoIndex that migrates when it grows past the threshold.
// Beyond that choice, expected_size only pre-reserves memory. Throws std::invalid_argument if dims <= 0.
// Thread-safe (the returned index is independent).
std::unique_ptr<VectorIndex> make_index(int dims, IndexKind kind, std::size_t expected_size);

}  // namespace isartor::vector
