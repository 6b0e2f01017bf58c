#pragma once
// Small helpers shared by the plain-main benchmark tools in bench/.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/stats.h"

namespace isartor::bench {

using Clock = std::chrono::steady_clock;

inline double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

using isartor::percentile;

// A /proc/self/status field in MiB, e.g. "VmRSS" or "VmHWM"; 0 when absent.
inline double status_mib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(field + ":")) return std::strtod(line.c_str() + field.size() + 1, nullptr) / 1024.0;
  }
  return 0;
}

// Short, typical gateway prompts used as load by the model benchmarks.
inline const std::vector<std::string>& sample_prompts() {
  static const std::vector<std::string> all = {"What is the capital of France?",
                                               "How do I reverse a linked list in Python?",
                                               "Explain quantum entanglement to a five year old.",
                                               "Write a haiku about autumn leaves.",
                                               "What's the difference between TCP and UDP?",
                                               "Summarize the plot of Hamlet in two sentences.",
                                               "Convert 72 degrees Fahrenheit to Celsius.",
                                               "Why is the sky blue?"};
  return all;
}

// Quiet by default so tables stay readable; ISARTOR_LOG still wins when set.
inline void init_logging() {
  if (std::getenv("ISARTOR_LOG") != nullptr) {
    log::init_from_env();
  } else {
    log::init("warn");
  }
}

}  // namespace isartor::bench
