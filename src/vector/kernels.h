#pragma once
// Building blocks shared by the vector indexes: the dot-product kernel, a bounded top-k
// collector, argument checks and memory estimates. Internal to src/vector.
#include <cstddef>
#include <span>
#include <unordered_map>
#include <vector>

#include "vector/vector_index.h"

namespace isartor::vector {

// Inner product of a[0..n) and b[0..n). Runs AVX2+FMA code when the CPU has it (checked once,
// so the default -O3 build without -march=native still gets it), otherwise a loop that g++ -O3
// vectorises for the baseline ISA. Thread-safe (pure).
float dot(const float* a, const float* b, std::size_t n);

// Which kernel dot() uses on this CPU: "avx2-fma" or "portable". Thread-safe.
const char* dot_kernel_name();

// Throws std::invalid_argument unless dims > 0. For constructors.
void require_positive_dims(int dims);

// Throws std::invalid_argument unless v.size() == dims: a wrong-sized embedding is a programming
// error (embedder/index mismatch), never user input. Thread-safe (pure).
void require_dims(std::span<const float> v, int dims);

// Keeps the k highest-scoring (id, score) pairs seen. Not thread-safe (one per search).
class TopK {
 public:
  explicit TopK(std::size_t k);
  // Whether a candidate with this score would be kept; lets callers skip work.
  bool admits(float score) const { return heap_.size() < k_ || score > heap_.front().score; }
  void push(Id id, float score);
  // The kept pairs, best first (ties by ascending id); leaves the collector empty.
  std::vector<Neighbor> take_sorted();

 private:
  std::size_t k_;
  std::vector<Neighbor> heap_;  // min-heap on score: front() is the worst kept
};

// Approximate heap bytes of an unordered_map: bucket array plus one node per element.
template <class K, class V>
std::size_t map_bytes(const std::unordered_map<K, V>& m) {
  constexpr std::size_t kNodeBytes = sizeof(void*) + sizeof(std::pair<const K, V>);
  return m.bucket_count() * sizeof(void*) + m.size() * kNodeBytes;
}

}  // namespace isartor::vector
