#pragma once
// The Prometheus text exposition format 0.0.4: families with # HELP / # TYPE, samples with
// escaped label values, histograms as _bucket/_sum/_count.
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "metrics/instruments.h"

namespace isartor::metrics {

inline constexpr std::string_view kExpositionContentType = "text/plain; version=0.0.4; charset=utf-8";

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Builds one scrape's text. Not thread-safe (one per scrape).
class Exposition {
 public:
  // Starts a family; `type` is "counter", "gauge" or "histogram".
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, Labels labels, uint64_t value);
  void sample(std::string_view name, Labels labels, double value);
  // name_bucket{...,le="..."} for every bound and +Inf, then name_sum and name_count.
  void histogram(std::string_view name, Labels labels, const LatencyHistogram::Snapshot& snapshot);
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  void head(std::string_view name, std::string_view suffix, Labels labels, std::string_view le = {});
};

// A label value with backslash, double quote and line feed escaped, as the format requires. Pure.
std::string escape_label_value(std::string_view value);

}  // namespace isartor::metrics
