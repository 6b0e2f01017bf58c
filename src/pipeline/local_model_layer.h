#pragma once
// L2: a small local model (inference::Generator, in-process llama.cpp) that answers the requests
// it judges simple. A request is offered to it only when it is a single user turn (system
// messages allowed) of plain text, without tools, and its text is at most max_prompt_chars long;
// anything else passes on to L3 without touching the model. The model first classifies the
// request; COMPLEX passes on, SIMPLE is answered by the same model. The answer must pass a quality
// guard (reject_reason) or the request passes on to L3. Model failures, overload included, never
// fail the request: they are logged and the request passes on.
//
// Limitation: a streaming request is generated in full first (so the guard can still send it to
// L3), then returned as one completion that the answer writer replays as SSE: the client gets no
// token-by-token streaming from L2 yet.
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "inference/generator.h"
#include "pipeline/layer.h"

namespace isartor::pipeline {

struct LocalModelOptions {
  std::size_t max_prompt_chars = 4000;  // bytes of message text; longer requests skip L2
  inference::GenerateOptions generate;  // max_tokens, temperature, repetition_penalty, ...
};

class LocalModelLayer final : public Layer {
 public:
  // `generator` must not be null. Thread-safe once built.
  LocalModelLayer(std::shared_ptr<inference::Generator> generator, LocalModelOptions options);
  std::string_view name() const override { return "l2"; }
  // Enabled and ready; detail: the model's name (its GGUF file name).
  LayerStatus status() const override;
  // Answers simple requests with the local model, else passes on; never returns an Error.
  // Called concurrently from many coroutines; the model runs on the generator's worker thread.
  boost::asio::awaitable<Result<std::optional<Answer>>> answer(ChatRequest& request) override;

 private:
  std::shared_ptr<inference::Generator> generator_;
  LocalModelOptions options_;
};

// The conversation L2 would show the model ("developer" messages become "system"), or
// std::nullopt when the request must skip L2: tools, a non-text content, anything but one user
// message after the system messages, an empty user message, or more than max_prompt_chars bytes of
// text. Pure; never throws on malformed bodies.
std::optional<std::vector<inference::ChatMessage>> local_model_messages(const ChatRequest& request,
                                                                        std::size_t max_prompt_chars);

// Why the quality guard rejects a generated answer, or std::nullopt when it may be served: empty
// or whitespace-only text, a generation that did not end with kStop (truncated by max_tokens,
// cancelled, timed out), or a refusal-style opening ("I don't know", "I'm sorry", "As an AI",
// "I cannot", "I can't", ... in any case, after leading spaces and quotes). Pure.
std::optional<std::string_view> reject_reason(const inference::Generation& generation);

}  // namespace isartor::pipeline
