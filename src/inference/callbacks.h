#pragma once
// Internal to the generators: how a worker thread runs a caller's callback.
#include <exception>
#include <utility>

#include "core/log.h"

namespace isartor::inference {

// Calls `callback` (when set) with `args`; an exception it throws is logged and dropped, so a
// faulty callback cannot take the worker thread down. Thread-safe as the callback is.
template <class Callback, class... Args>
void run_callback(const Callback& callback, Args&&... args) {
  if (!callback) return;
  try {
    callback(std::forward<Args>(args)...);
  } catch (const std::exception& e) {
    LOG_ERROR("isartor::inference", "generator callback threw: {}", e.what());
  } catch (...) {
    LOG_ERROR("isartor::inference", "generator callback threw");
  }
}

}  // namespace isartor::inference
