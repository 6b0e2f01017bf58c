#pragma once
// Level 2/3 generator: the same classify-and-answer contract as LlamaGenerator, served by a remote
// OpenAI-compatible server (llama-server, vLLM) over HTTP: ISARTOR__LAYER2__SIDECAR_URL, or
// ISARTOR__ROUTER_BACKEND=vllm.
//
// Classification sends classification_messages() as a chat completion with temperature 0 and at
// most max_classify_tokens tokens, asking the server to constrain its answer to the labels
// (llama-server's "grammar" with kLabelGrammar, vLLM's "guided_choice"; each ignores the other's
// field), and reads the answer with parse_label. A server cannot expose the label logits, so both
// ClassifyModes classify this way. Answers are streamed (SSE) from the server, pieces passed on as
// they arrive; the server applies max_tokens, temperature, the repetition penalty ("repeat_penalty"
// for llama-server, "repetition_penalty" for vLLM), stop strings and the seed.
//
// One worker thread runs an Asio io_context for all calls, which go through the shared
// providers::HttpClient (pooled connections); callbacks run on that thread.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "core/result.h"
#include "inference/generator.h"

namespace isartor::providers {
class HttpClient;
}

namespace isartor::inference {

struct SidecarOptions {
  std::string url;      // the server's base URL, with or without a trailing /v1
  std::string model;    // the "model" sent; empty: the first one the server lists (see probe())
  std::string api_key;  // sent as "Authorization: Bearer"; empty: none
  int max_classify_tokens = 20;
  std::size_t max_in_flight = 68;  // calls running at once; beyond it kOverloaded
  // Bound of one call when its request sets no timeout.
  std::chrono::seconds call_timeout{300};
};

class SidecarGenerator final : public Generator {
 public:
  // Starts the worker; contacts nobody (probe() does). `http` must outlive the generator.
  SidecarGenerator(SidecarOptions options, providers::HttpClient& http);
  // Cancels the calls still running (generations end kCancelled, classifications kUnavailable,
  // their callbacks on the worker), then joins it. Never call it from a callback.
  ~SidecarGenerator() override;

  SidecarGenerator(const SidecarGenerator&) = delete;
  SidecarGenerator& operator=(const SidecarGenerator&) = delete;

  // The model in use (configured or adopted by probe()). Stable once the generator is in service.
  std::string_view name() const override;

  // Asks the server for its models (GET <url>/v1/models); without a configured model, adopts the
  // first. Returns the model used. Errors: kUnavailable (unreachable, non-2xx, no models listed).
  // Blocking; call before the generator is shared, never from a callback.
  Result<std::string> probe();

  // See Generator. Errors: kOverloaded (max_in_flight calls running), kUpstream (the server failed
  // or answered garbage), kUpstreamTimeout (options.timeout passed, classification only),
  // kUnavailable (cancelled or shutting down; classification only).
  Cancellation classify_async(std::vector<ChatMessage> messages, ClassifyOptions options,
                              ClassifyCallback done) override;
  // kTimeout / kCancelled end a generation with the text received so far.
  Cancellation generate_async(std::vector<ChatMessage> messages, GenerateOptions options, TokenCallback on_token,
                              GenerateCallback done) override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace isartor::inference
