#pragma once
// What the layer chain tells whoever watches it (metrics today, spans later): every layer tried,
// how that ended and how long it took, and the token usage of every complete answer.
#include <chrono>
#include <cstdint>

#include "api/openai.h"
#include "core/result.h"
#include "pipeline/layer.h"

namespace isartor::pipeline {

enum class LayerOutcome : uint8_t {
  kAnswered,  // the layer answered
  kPassed,    // it looked and passed the request on (a cache miss)
  kBypassed,  // a cache the request told not to look in (Cache-Control: no-cache)
  kFailed,    // it ended the chain with an error
};
inline constexpr std::size_t kLayerOutcomeCount = 4;

// "answered", "passed", "bypassed", "failed". Pure.
std::string_view to_string(LayerOutcome outcome);

// Implementations are called concurrently from every I/O thread and must not block.
class Observer {
 public:
  virtual ~Observer() = default;
  // A layer's answer() returned; `error` is set when outcome is kFailed.
  virtual void on_layer(LayerId layer, LayerOutcome outcome, std::chrono::nanoseconds took, const Error* error) = 0;
  // A complete answer from `layer` carried this usage (a stream: once it ended normally).
  virtual void on_usage(LayerId layer, const api::Usage& usage) = 0;
};

// One request's client as the chain sees it (its rate limits). Used from the request's coroutine
// and, for a stream, from whoever reads it; implementations must not block.
class RequestBudget {
 public:
  virtual ~RequestBudget() = default;
  // Asked once, before the first layer that is not a cache: an error (kRateLimited) ends the
  // request there, so cache hits can go free.
  virtual Result<void> before_uncached() = 0;
  // The usage of the request's complete answer, from `layer`.
  virtual void on_usage(LayerId layer, const api::Usage& usage) = 0;
};

}  // namespace isartor::pipeline
