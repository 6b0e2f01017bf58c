#include "metrics/exposition.h"

#include <fmt/format.h>

#include <cmath>

namespace isartor::metrics {

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void Exposition::head(std::string_view name, std::string_view suffix, Labels labels, std::string_view le) {
  out_ += name;
  out_ += suffix;
  if (labels.size() == 0 && le.empty()) return;
  out_ += '{';
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (!first) out_ += ',';
    first = false;
    fmt::format_to(std::back_inserter(out_), "{}=\"{}\"", key, escape_label_value(value));
  }
  if (!le.empty()) fmt::format_to(std::back_inserter(out_), "{}le=\"{}\"", first ? "" : ",", le);
  out_ += '}';
}

void Exposition::sample(std::string_view name, Labels labels, uint64_t value) {
  head(name, "", labels);
  fmt::format_to(std::back_inserter(out_), " {}\n", value);
}

void Exposition::sample(std::string_view name, Labels labels, double value) {
  head(name, "", labels);
  if (std::isnan(value)) {
    out_ += " NaN\n";
  } else {
    fmt::format_to(std::back_inserter(out_), " {}\n", value);
  }
}

void Exposition::histogram(std::string_view name, Labels labels, const LatencyHistogram::Snapshot& snapshot) {
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    head(name, "_bucket", labels, fmt::format("{}", kLatencyBuckets[i]));
    fmt::format_to(std::back_inserter(out_), " {}\n", snapshot.cumulative[i]);
  }
  head(name, "_bucket", labels, "+Inf");
  fmt::format_to(std::back_inserter(out_), " {}\n", snapshot.count);
  head(name, "_sum", labels);
  fmt::format_to(std::back_inserter(out_), " {}\n", snapshot.sum_seconds);
  head(name, "_count", labels);
  fmt::format_to(std::back_inserter(out_), " {}\n", snapshot.count);
}

}  // namespace isartor::metrics
