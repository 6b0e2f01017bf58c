#pragma once
// Process-wide llama.cpp set-up, shared by everything in Isartor that runs llama.cpp in-process.
#include <llama.h>

#include <memory>
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

// Owns a llama_batch made with llama_batch_init (which needs llama_batch_free, not delete).
struct BatchDeleter {
  void operator()(llama_batch* batch) const {
    llama_batch_free(*batch);
    delete batch;
  }
};
using BatchPtr = std::unique_ptr<llama_batch, BatchDeleter>;

// A batch for up to `tokens` tokens of one sequence id each. Thread-safe.
inline BatchPtr make_batch(int32_t tokens) { return BatchPtr(new llama_batch(llama_batch_init(tokens, 0, 1))); }

}  // namespace isartor::inference
