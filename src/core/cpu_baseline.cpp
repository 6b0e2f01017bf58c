#include "core/cpu_baseline.h"

#include <unistd.h>

#include <array>

// This file is compiled for the plain architecture baseline (see CMakeLists.txt): it runs before
// anything compiled for x86-64-v3 and must not itself contain those instructions.

namespace isartor::core {

std::string_view cpu_baseline() { return ISARTOR_CPU_BASELINE; }

std::string missing_cpu_features() {
  std::string missing;
#if defined(__x86_64__) && defined(ISARTOR_CPU_X86_64_V3)
  __builtin_cpu_init();
  // __builtin_cpu_supports needs literal names, hence one line each. "avx" and "avx2" are only
  // reported when the kernel also saves the YMM state (XGETBV), which is what matters.
  const std::array<std::pair<const char*, bool>, 8> features{{
      {"AVX", __builtin_cpu_supports("avx") != 0},
      {"AVX2", __builtin_cpu_supports("avx2") != 0},
      {"FMA", __builtin_cpu_supports("fma") != 0},
      {"F16C", __builtin_cpu_supports("f16c") != 0},
      {"BMI1", __builtin_cpu_supports("bmi") != 0},
      {"BMI2", __builtin_cpu_supports("bmi2") != 0},
      {"LZCNT", __builtin_cpu_supports("lzcnt") != 0},
      {"MOVBE", __builtin_cpu_supports("movbe") != 0},
  }};
  for (const auto& [name, present] : features) {
    if (present) continue;
    if (!missing.empty()) missing += ", ";
    missing += name;
  }
#endif
  return missing;
}

namespace {

// Priority 101 runs before every default-priority static initialiser in the binary, ggml's
// included. stdio is not used: it may not be initialised yet.
[[gnu::constructor(101)]] void exit_below_cpu_baseline() {
  const std::string missing = missing_cpu_features();
  if (missing.empty()) return;
  const std::string line = "isartor: this CPU lacks " + missing + ", which this build needs (" +
                           std::string(cpu_baseline()) +
                           "); build one for it from source with `make build NATIVE=1`\n";
  [[maybe_unused]] const auto written = ::write(STDERR_FILENO, line.data(), line.size());
  ::_exit(1);
}

}  // namespace

}  // namespace isartor::core
