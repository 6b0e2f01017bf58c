#pragma once
// Synthetic embeddings for vector-index tests and bench/vector_bench.cpp: L2-normalised points
// scattered around random centres, which is how sentence embeddings of related prompts look.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <unordered_set>
#include <vector>

#include "vector/vector_index.h"

namespace isartor::vector::testing {

// Row-major set of n vectors of dims floats.
struct Vectors {
  int dims = 0;
  std::vector<float> data;

  std::size_t size() const { return dims == 0 ? 0 : data.size() / dims; }
  std::span<const float> row(std::size_t i) const {
    return std::span<const float>(data).subspan(i * dims, dims);
  }
};

inline void normalise(std::span<float> v) {
  float norm = 0;
  for (float x : v) norm += x * x;
  norm = std::sqrt(norm);
  if (norm > 0) {
    for (float& x : v) x /= norm;
  }
}

// A synthetic embedding space: `centres` cluster centres, which themselves sit around
// sqrt(centres) "topic" directions (~0.5 cosine between sibling centres), so related clusters
// are near each other as in real embedding spaces. A point is its centre plus a displacement of
// norm ~`spread` (0.75: ~0.8 cosine to the centre) lying mostly in a random `intrinsic`-dim
// subspace of its cluster, plus 10 % isotropic jitter, then normalised: sentence embeddings have
// a low intrinsic dimension; intrinsic = 0 spreads all the noise evenly over the dims, the worst
// case for graph indexes. layout_seed fixes where centres and subspaces lie.
struct Clusters {
  int dims = 384;
  int centres = 50;
  int intrinsic = 16;
  float spread = 0.75f;
  std::uint64_t layout_seed = 1;
};

// n points drawn from `space`; data and queries drawn with different seeds from the same space
// share its clusters. Same arguments, same vectors.
inline Vectors sample(const Clusters& space, std::size_t n, std::uint64_t seed) {
  const int dims = space.dims;
  const int topics = std::max(1, static_cast<int>(std::lround(std::sqrt(space.centres))));
  const int basis = std::max(space.intrinsic, 1);
  std::normal_distribution<float> gauss;
  std::mt19937_64 layout_rng(space.layout_seed);
  Vectors t{dims, std::vector<float>(static_cast<std::size_t>(topics) * dims)};
  Vectors c{dims, std::vector<float>(static_cast<std::size_t>(space.centres) * dims)};
  Vectors axes{dims, std::vector<float>(static_cast<std::size_t>(space.centres) * basis * dims)};
  for (float& x : t.data) x = gauss(layout_rng);
  for (float& x : axes.data) x = gauss(layout_rng);
  for (int i = 0; i < topics; ++i) normalise(std::span<float>(t.data).subspan(i * dims, dims));
  for (std::size_t i = 0; i < axes.size(); ++i) {
    normalise(std::span<float>(axes.data).subspan(i * dims, dims));
  }
  const float topic_noise = 1.0f / std::sqrt(static_cast<float>(dims));
  for (int i = 0; i < space.centres; ++i) {
    const auto centre = std::span<float>(c.data).subspan(i * dims, dims);
    const auto topic = t.row(static_cast<std::size_t>(i % topics));
    for (int d = 0; d < dims; ++d) centre[d] = topic[d] + topic_noise * gauss(layout_rng);
    normalise(centre);
  }

  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pick(0, space.centres - 1);
  const float jitter =
      (space.intrinsic > 0 ? 0.1f : 1.0f) * space.spread / std::sqrt(static_cast<float>(dims));
  const float along =
      space.intrinsic > 0 ? space.spread / std::sqrt(static_cast<float>(space.intrinsic)) : 0.0f;
  Vectors out{dims, std::vector<float>(n * dims)};
  for (std::size_t i = 0; i < n; ++i) {
    const auto cluster = static_cast<std::size_t>(pick(rng));
    const auto row = std::span<float>(out.data).subspan(i * dims, dims);
    for (int d = 0; d < dims; ++d) row[d] = c.row(cluster)[d] + jitter * gauss(rng);
    for (int a = 0; a < space.intrinsic; ++a) {
      const float w = along * gauss(rng);
      const auto axis = axes.row(cluster * basis + a);
      for (int d = 0; d < dims; ++d) row[d] += w * axis[d];
    }
    normalise(row);
  }
  return out;
}

// Uniformly random unit vectors (no structure).
inline Vectors uniform(std::size_t n, int dims, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> gauss;
  Vectors out{dims, std::vector<float>(n * dims)};
  for (float& x : out.data) x = gauss(rng);
  for (std::size_t i = 0; i < n; ++i) normalise(std::span<float>(out.data).subspan(i * dims, dims));
  return out;
}

// Fraction of `exact`'s ids that `approx` also returned (recall@k with k = exact.size()).
inline double recall(const std::vector<Neighbor>& approx, const std::vector<Neighbor>& exact) {
  if (exact.empty()) return 1.0;
  std::unordered_set<Id> truth;
  for (const auto& n : exact) truth.insert(n.id);
  const auto hits = std::count_if(approx.begin(), approx.end(),
                                  [&](const Neighbor& n) { return truth.contains(n.id); });
  return static_cast<double>(hits) / static_cast<double>(exact.size());
}

}  // namespace isartor::vector::testing
