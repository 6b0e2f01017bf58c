#include "metrics/instruments.h"

#include <algorithm>

namespace isartor::metrics {

void LatencyHistogram::observe(std::chrono::nanoseconds took) noexcept {
  const double seconds = std::chrono::duration<double>(took).count();
  const auto bucket = std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), seconds) - kLatencyBuckets.begin();
  buckets_[static_cast<std::size_t>(bucket)].fetch_add(1, std::memory_order_relaxed);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
  sum_us_.fetch_add(static_cast<uint64_t>(std::max<int64_t>(0, micros)), std::memory_order_relaxed);
}

LatencyHistogram::Snapshot LatencyHistogram::snapshot() const noexcept {
  Snapshot out;
  uint64_t running = 0;
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out.cumulative[i] = running;
  }
  out.count = running + buckets_.back().load(std::memory_order_relaxed);
  out.sum_seconds = static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6;
  return out;
}

}  // namespace isartor::metrics
