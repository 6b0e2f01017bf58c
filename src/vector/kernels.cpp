#include "vector/kernels.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ISARTOR_VECTOR_X86 1
#endif

namespace isartor::vector {
namespace {

// Sixteen independent accumulators: the lanes never mix inside the loop, so -O3 can vectorise
// it without -ffast-math (a single running sum would be a serial dependency it may not reorder).
float dot_portable(const float* a, const float* b, std::size_t n) {
  constexpr std::size_t kLanes = 16;
  float acc[kLanes] = {};
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (std::size_t j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float sum = 0;
  for (float x : acc) sum += x;
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

#ifdef ISARTOR_VECTOR_X86
// Four 8-wide FMA chains hide the FMA latency. Scanning 384-d rows it measured 19 ns a row vs
// 29 ns for dot_portable built for baseline x86-64 (10k rows), 40 vs 53 ns once the scan is
// memory-bound (100k rows); a plain single-sum loop, which -O3 does not vectorise, took 150 ns.
__attribute__((target("avx2,fma"))) float dot_avx2(const float* a, const float* b,
                                                  std::size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  }
  const __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_hadd_ps(h, h);
  h = _mm_hadd_ps(h, h);
  float sum = _mm_cvtss_f32(h);
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

bool cpu_has_avx2_fma() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

using DotFn = float (*)(const float*, const float*, std::size_t);

struct Kernel {
  DotFn fn;
  const char* name;
};

Kernel pick_kernel() {
#ifdef ISARTOR_VECTOR_X86
  if (cpu_has_avx2_fma()) return {dot_avx2, "avx2-fma"};
#endif
  return {dot_portable, "portable"};
}

const Kernel& kernel() {
  static const Kernel k = pick_kernel();
  return k;
}

}  // namespace

float dot(const float* a, const float* b, std::size_t n) { return kernel().fn(a, b, n); }

const char* dot_kernel_name() { return kernel().name; }

void require_positive_dims(int dims) {
  if (dims <= 0) throw std::invalid_argument("vector index: dimensions must be positive");
}

void require_dims(std::span<const float> v, int dims) {
  if (v.size() != static_cast<std::size_t>(dims)) {
    throw std::invalid_argument("vector index: expected " + std::to_string(dims) +
                                " dimensions, got " + std::to_string(v.size()));
  }
}

namespace {
// Heap order that puts the worst (lowest score, then highest id) at the front.
bool better(const Neighbor& a, const Neighbor& b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}
}  // namespace

TopK::TopK(std::size_t k) : k_(k) { heap_.reserve(k); }

void TopK::push(Id id, float score) {
  if (k_ == 0) return;
  if (heap_.size() < k_) {
    heap_.push_back({id, score});
    std::push_heap(heap_.begin(), heap_.end(), better);
  } else if (score > heap_.front().score) {
    std::pop_heap(heap_.begin(), heap_.end(), better);
    heap_.back() = {id, score};
    std::push_heap(heap_.begin(), heap_.end(), better);
  }
}

std::vector<Neighbor> TopK::take_sorted() {
  std::sort(heap_.begin(), heap_.end(), better);
  return std::exchange(heap_, {});
}

}  // namespace isartor::vector
