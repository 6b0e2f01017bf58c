#pragma once
// Level 1 generator: a chat GGUF (gemma-2-2b-it by default) run in-process by llama.cpp with
// continuous batching. One llama_context holds max_sequences sequences (slots); ONE worker thread
// loops: admit queued requests into free slots, then one llama_decode over the pending prompt
// tokens of new sequences (chunked to batch_tokens) and the last sampled token of every active
// one, then sample each sequence with its own sampler chain and stream its piece. A finished
// request frees its slot at once, so a new one joins the next decode.
//
// Prompts come from the GGUF's chat template (tokenizer.chat_template) through llama.cpp's
// built-in templates (llama_chat_apply_template; no Jinja). Gemma's template has no system role:
// system messages are merged into the first user turn ("<system>\n\n<user>").
//
// Classification (prompt: classification_messages in generator.h, shown through the chat
// template like any request), in one of two modes (LlamaGeneratorOptions::classify_mode):
//  * kLogits (default): the prompt is decoded and, at the opening of the model's turn, the logit
//    of the first token of "SIMPLE" is compared with that of "COMPLEX" as the model would write
//    them; the larger wins, a tie is COMPLEX. No token is generated.
//  * kGrammar: the model writes its answer, greedily, under the GBNF grammar
//    `root ::= "SIMPLE" | "COMPLEX"` (at most max_classify_tokens tokens), read with parse_label.
// The instruction every classification prompt starts with is decoded once at load; a
// classification copies those KV cells (a unified cache shares them) and decodes only the request.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "inference/generator.h"

namespace isartor::inference {

struct LlamaGeneratorOptions {
  // Tokens per sequence (prompt + answer); a longer prompt is refused with kPayloadTooLarge.
  // The KV cache holds context_tokens x max_sequences tokens plus the classification prefix
  // (gemma-2-2b, F16: ~104 KiB each, so the defaults take ~850 MiB).
  int context_tokens = 2048;
  // Slots: requests decoded together in one batch (the context's n_seq_max, at most 256).
  int max_sequences = 4;
  // ggml threads for the one context; 0: hardware threads.
  int threads = 0;
  // Tokens per llama_decode call (n_batch): prompt chunks plus one token per active sequence.
  int batch_tokens = 512;
  // Requests waiting for a free slot beyond this are refused with kOverloaded.
  size_t max_queued = 64;
  // Layers offloaded to a GPU when llama.cpp was built with one; 0: CPU only.
  int gpu_layers = 0;
  // A llama.cpp built-in template name ("gemma", "chatml", "llama3", ...) or template text; "":
  // the GGUF's own.
  std::string chat_template;
  // How classifications are decided (see above), and the token cap of kGrammar answers.
  ClassifyMode classify_mode = ClassifyMode::kLogits;
  int max_classify_tokens = 20;
  // Stops a load in progress (load() then fails with kUnavailable): shutdown during start-up.
  std::stop_token stop_loading;
};

// Counters since load, for tests, benchmarks and metrics.
struct LlamaGeneratorStats {
  uint64_t decodes = 0;             // llama_decode calls
  uint64_t prompt_tokens = 0;       // prompt tokens decoded
  uint64_t generated_tokens = 0;    // tokens sampled
  uint64_t classifications = 0;     // classifications answered
  uint64_t generations = 0;         // generations finished (any reason)
  int max_sequences_in_decode = 0;  // most sequences one llama_decode carried
  uint64_t reused_prompt_tokens = 0;  // classification prompt tokens taken from the shared prefix
};

class LlamaGenerator final : public Generator {
 public:
  // Loads `gguf`, creates the context and starts the worker. Errors: kNotFound (no such file),
  // kUnprocessable (not a model llama.cpp loads, no usable chat template, or labels whose first
  // tokens coincide), kInvalidRequest (bad options, the offending field in Error::param),
  // kInternal (context or thread creation failed), kUnavailable (stop_loading was requested).
  // Thread-safe.
  static Result<std::unique_ptr<LlamaGenerator>> load(const std::filesystem::path& gguf,
                                                      LlamaGeneratorOptions options = {});

  // Refuses what is still queued and ends what is in a slot, both with kUnavailable (queued
  // callbacks run on the destroying thread), then joins the worker. Never call it from a callback.
  ~LlamaGenerator() override;

  LlamaGenerator(const LlamaGenerator&) = delete;
  LlamaGenerator& operator=(const LlamaGenerator&) = delete;

  std::string_view name() const override;

  // See Generator. Errors: kOverloaded (queue full), kPayloadTooLarge (prompt longer than the
  // context), kUnprocessable (the chat template cannot render the messages), kInternal
  // (llama_decode failed), kUnavailable (generator destroyed first). Callbacks should not throw
  // (an exception is logged and dropped).
  Cancellation classify_async(std::vector<ChatMessage> messages, ClassifyOptions options,
                              ClassifyCallback done) override;
  // As classify_async, plus kInvalidRequest for bad options (max_tokens < 1, temperature < 0,
  // repetition_penalty <= 0). max_tokens beyond the context's room ends with kLength.
  Cancellation generate_async(std::vector<ChatMessage> messages, GenerateOptions options, TokenCallback on_token,
                              GenerateCallback done) override;

  // The prompt text the model sees for `messages` (chat template applied, generation turn
  // opened), or kUnprocessable. Thread-safe.
  Result<std::string> render_prompt(const std::vector<ChatMessage>& messages) const;

  // A snapshot of the counters. Thread-safe.
  LlamaGeneratorStats stats() const;

 private:
  struct Impl;
  explicit LlamaGenerator(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace isartor::inference
