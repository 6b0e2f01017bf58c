#include "vector/factory.h"

#include <stdexcept>

#include "vector/auto_index.h"
#include "vector/flat_index.h"
#include "vector/hnsw_index.h"

namespace isartor::vector {

std::unique_ptr<VectorIndex> make_index(int dims, IndexKind kind, std::size_t expected_size) {
  switch (kind) {
    case IndexKind::kFlat:
      return std::make_unique<FlatIndex>(dims, expected_size);
    case IndexKind::kHnsw:
      return std::make_unique<HnswIndex>(dims, HnswParams{}, expected_size);
    case IndexKind::kAuto:
      if (expected_size >= kAutoHnswThreshold) {
        return std::make_unique<HnswIndex>(dims, HnswParams{}, expected_size);
      }
      return std::make_unique<AutoIndex>(dims, kAutoHnswThreshold, HnswParams{}, expected_size);
  }
  throw std::invalid_argument("make_index: unknown IndexKind");
}

}  // namespace isartor::vector
