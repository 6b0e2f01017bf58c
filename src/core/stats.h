#pragma once
// Small statistics for reports and benchmarks.
#include <algorithm>
#include <cstddef>
#include <vector>

namespace isartor {

// The q-quantile (0..1) of `values` by nearest rank; 0 for an empty sample. Pure.
inline double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<std::size_t>(q * static_cast<double>(values.size())))];
}

}  // namespace isartor
