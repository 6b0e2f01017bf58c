#pragma once
// Process-wide llama.cpp set-up, shared by everything in Isartor that runs llama.cpp in-process.
#include <string>

namespace isartor::inference {

// Target of llama.cpp's and ggml's own log lines in core/log.h.
inline constexpr const char* kLlamaLogTarget = "isartor::llama";

// Once per process: llama_backend_init, and llama.cpp/ggml logging routed into core/log.h under
// kLlamaLogTarget at debug level (trace for llama.cpp's debug lines), so it stays silent unless
// ISARTOR_LOG enables e.g. "isartor::llama=debug". Call before any other llama.cpp/ggml function.
// Thread-safe.
void init_llama_runtime();

// The last error line llama.cpp/ggml logged on the calling thread since the previous call ("" when
// none), then forgets it: detail for an Error after a llama.cpp call failed. Thread-safe.
std::string take_llama_error();

}  // namespace isartor::inference
