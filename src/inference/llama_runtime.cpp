#include "inference/llama_runtime.h"

#include <llama.h>

#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "core/log.h"

namespace isartor::inference {

namespace {

// llama.cpp logs a line in pieces (GGML_LOG_LEVEL_CONT continues the previous one); each thread
// assembles its own lines so concurrent contexts don't interleave.
struct PendingLine {
  ggml_log_level level = GGML_LOG_LEVEL_INFO;
  std::string text;
};
thread_local PendingLine t_line;
thread_local std::string t_last_error;

void flush_line() {
  std::string_view text = t_line.text;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  if (!text.empty()) {
    if (t_line.level == GGML_LOG_LEVEL_ERROR) t_last_error.assign(text);
    const log::Level level = t_line.level == GGML_LOG_LEVEL_DEBUG ? log::Level::kTrace : log::Level::kDebug;
    if (log::enabled(level, kLlamaLogTarget)) log::write(level, kLlamaLogTarget, text);
  }
  t_line.text.clear();
}

void on_llama_log(ggml_log_level level, const char* text, void* /*user_data*/) {
  if (level != GGML_LOG_LEVEL_CONT) {
    if (!t_line.text.empty()) flush_line();
    t_line.level = level;
  }
  if (text == nullptr) return;
  t_line.text += text;
  if (!t_line.text.empty() && t_line.text.back() == '\n') flush_line();
}

}  // namespace

void init_llama_runtime() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Before llama_backend_init, which already logs (backend registration).
    llama_log_set(on_llama_log, nullptr);
    llama_backend_init();
  });
}

std::string take_llama_error() {
  if (!t_line.text.empty()) flush_line();
  return std::exchange(t_last_error, {});
}

}  // namespace isartor::inference
