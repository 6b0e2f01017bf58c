#pragma once
// The instruction set the binary was compiled for, and the start-up check that the CPU has it.
// A portable x86-64 build needs x86-64-v3 (AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE); on an older CPU
// it would die on an illegal instruction in the first matrix product, so it says so and exits
// before any other code runs. Native builds (NATIVE=1) run only where they were built.
#include <string>
#include <string_view>

namespace isartor::core {

// What this binary was compiled for: "x86-64-v3", "native", or the architecture's baseline.
std::string_view cpu_baseline();

// The baseline's features this CPU lacks, comma-separated ("" when it has them all). Thread-safe.
std::string missing_cpu_features();

}  // namespace isartor::core
