#pragma once
// L2: a small local model (inference::Generator: in-process llama.cpp, or an OpenAI-compatible
// sidecar) that answers the requests it judges simple. A request is offered to it only when it is
// a single user turn (system messages allowed; with single_turn_only off, a conversation ending
// with a user message) of plain text, without tools, and its text is at most max_prompt_chars long;
// anything else passes on to L3 without touching the model. The model
// first classifies the request; COMPLEX passes on, SIMPLE is answered by the same model.
//
// The quality guard: an answer that is empty, opens like a refusal ("I don't know", "As an AI",
// ...) or did not finish (token cap, timeout) passes the request on to L3.
//  * Without `stream`, the whole answer is generated and checked before it is served.
//  * With `stream`, tokens are held back only until the opening can be judged (kOpeningBytes of
//    text, or the end of a shorter answer); a refusal or empty opening still passes on to L3,
//    otherwise the answer is streamed token by token as it is generated. A streamed answer that
//    then hits the token cap or the timeout cannot be taken back: it ends with finish_reason
//    "length" and is never cached.
//
// Failures never fail the request: model errors pass it on. An overload (the model's queue is
// full) passes it on too, unless nothing after L2 can answer (LocalModelOptions::fallback_ready),
// in which case it is answered 503 with Retry-After. A client that goes away cancels the model's
// work for it, queued or running.
//
// The model may arrive after start-up (a download, a sidecar coming up): until set_generator(),
// requests pass on and status() says why.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "inference/generator.h"
#include "pipeline/layer.h"

namespace isartor::pipeline {

// Text a streamed answer holds back for the guard before its first chunk.
inline constexpr std::size_t kOpeningBytes = 32;

struct LocalModelOptions {
  std::size_t max_prompt_chars = 4000;  // bytes of message text; longer requests skip L2
  bool single_turn_only = true;         // false: multi-turn conversations are offered too
  inference::GenerateOptions generate;  // max_tokens, temperature, repetition_penalty, ...
  // One request's budget in L2, classification and answer (queueing included); 0: none.
  std::chrono::milliseconds timeout{0};
  // Whether a later layer can answer; false makes an overload a 503. Empty: assumed true.
  std::function<bool()> fallback_ready;
};

class LocalModelLayer final : public Layer {
 public:
  // Without a model yet: requests pass on, status() is not ready with detail `pending`.
  explicit LocalModelLayer(LocalModelOptions options, std::string pending = "loading the local model");
  // With its model (must not be null).
  LocalModelLayer(std::shared_ptr<inference::Generator> generator, LocalModelOptions options);

  LayerId id() const override { return LayerId::kL2; }
  // Enabled; ready once a model is set, detail: the model's name, or why there is none yet.
  LayerStatus status() const override;
  // Answers simple requests with the local model, else passes on; an Error only for an overload
  // with no fallback. Called concurrently from many coroutines; the model runs on the generator's
  // worker thread.
  boost::asio::awaitable<Result<std::optional<Answer>>> answer(ChatRequest& request) override;

  // Puts the model in service (not null). Thread-safe.
  void set_generator(std::shared_ptr<inference::Generator> generator);
  // While no model is set: what status() reports ("downloading ...", "unavailable: ..."). Thread-safe.
  void set_pending(std::string detail);

 private:
  std::shared_ptr<inference::Generator> generator() const;

  LocalModelOptions options_;
  mutable std::mutex mutex_;
  std::shared_ptr<inference::Generator> generator_;
  std::string pending_;
};

// The conversation L2 would show the model ("developer" messages become "system"), or
// std::nullopt when the request must skip L2: tools, a non-text content, an empty user message,
// more than max_prompt_chars bytes of text, a system message after the first turn, and unless
// multi-turn is allowed, anything but one user message after the system messages (allowed, the
// turns must alternate user/assistant and end with the user's). Pure; never throws on malformed
// bodies.
std::optional<std::vector<inference::ChatMessage>> local_model_messages(const ChatRequest& request,
                                                                        std::size_t max_prompt_chars,
                                                                        bool single_turn_only = true);

// Why the guard rejects the start of an answer, or std::nullopt: empty or whitespace-only text, or
// a refusal-style opening ("I don't know", "I'm sorry", "As an AI", "I cannot", "I can't", ... in
// any case, after leading spaces, quotes and emphasis). Pure.
std::optional<std::string_view> opening_reject_reason(std::string_view text);

// Why the quality guard rejects a whole generated answer, or std::nullopt when it may be served: a
// generation that did not end with kStop (truncated by max_tokens, cancelled, timed out), or
// opening_reject_reason of its text. Pure.
std::optional<std::string_view> reject_reason(const inference::Generation& generation);

}  // namespace isartor::pipeline
