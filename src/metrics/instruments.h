#pragma once
// Lock-free instruments for the request path: a counter is one relaxed atomic add, a histogram
// observation two. Readers (a /metrics scrape) see each value whole, not a consistent cut of all.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace isartor::metrics {

// A count that only goes up. Thread-safe.
class Counter {
 public:
  void add(uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Upper bounds (seconds) of every latency histogram: 100 µs (an exact hit) to 60 s (a long answer).
inline constexpr std::array<double, 17> kLatencyBuckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                        0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                        1,      2.5,     5,      10,    60};

// A Prometheus histogram of durations over kLatencyBuckets. Thread-safe.
class LatencyHistogram {
 public:
  struct Snapshot {
    std::array<uint64_t, kLatencyBuckets.size()> cumulative{};  // observations <= each bound
    uint64_t count = 0;                                          // all of them (the +Inf bucket)
    double sum_seconds = 0;
  };

  void observe(std::chrono::nanoseconds took) noexcept;
  // count is the sum of the buckets read, so a snapshot is always self-consistent.
  Snapshot snapshot() const noexcept;

 private:
  std::array<std::atomic<uint64_t>, kLatencyBuckets.size() + 1> buckets_{};  // the last: +Inf
  std::atomic<uint64_t> sum_us_{0};  // microseconds: 584 000 years before it wraps
};

}  // namespace isartor::metrics
