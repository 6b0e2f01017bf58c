#pragma once
// Level 1 embedder: a BERT sentence-embedding GGUF (made by bert_gguf.h from all-MiniLM-L6-v2)
// run in-process by llama.cpp. Each worker thread owns one llama_context; embed_async queues the
// texts, and a free worker takes whatever is queued (up to max_batch_sequences texts) and embeds
// it with one llama_encode call per max_batch_tokens: several sequences in one non-causal batch,
// pooled as the model says (mean for MiniLM) and L2-normalised.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

#include "inference/embedder.h"

namespace isartor::inference {

struct LlamaEmbedderOptions {
  // ggml threads per worker; 0: hardware threads / workers. ggml's OpenMP barriers spin, so
  // more than one thread only pays on idle, dedicated cores (on a busy 2-core box a 2-thread
  // context measured 10x slower at p50; OMP_WAIT_POLICY=passive softens that). Prefer workers.
  int threads = 1;
  int workers = 1;  // llama contexts, each driven by its own thread
  // Texts per llama_encode call (the context's n_seq_max, at most 256).
  int max_batch_sequences = 32;
  // Per-text cap in word pieces including [CLS] and [SEP]; the model's own max_seq_length (256
  // for all-MiniLM-L6-v2, as sentence-transformers truncates) applies when it is smaller.
  int max_sequence_tokens = 512;
  // Tokens per llama_encode call (n_batch = n_ubatch: a non-causal model cannot split a batch);
  // raised to the per-text cap when smaller. Attention memory grows with its square.
  int max_batch_tokens = 2048;
  // Texts queued beyond this are refused with kOverloaded (a single request is always accepted
  // when nothing is queued).
  size_t max_pending_texts = 4096;
};

class LlamaEmbedder final : public Embedder {
 public:
  // Loads `gguf` and starts the workers. Errors: kNotFound (no such file), kUnprocessable (not
  // a model llama.cpp loads, or one without sentence pooling), kInvalidRequest (bad options, the
  // offending field in Error::param), kInternal (context creation failed). Thread-safe.
  static Result<std::unique_ptr<LlamaEmbedder>> load(const std::filesystem::path& gguf,
                                                     LlamaEmbedderOptions options = {});

  // Refuses what is still queued with kUnavailable (those callbacks run on the destroying
  // thread), lets in-flight batches finish, joins the workers. Never call it from a callback.
  ~LlamaEmbedder() override;

  LlamaEmbedder(const LlamaEmbedder&) = delete;
  LlamaEmbedder& operator=(const LlamaEmbedder&) = delete;

  int dimensions() const override;
  // See Embedder. An empty `texts` completes with an empty vector. Callbacks should not throw
  // (an exception is logged and dropped). Errors: kOverloaded (queue full), kInternal
  // (llama_encode failed), kUnavailable (embedder destroyed first).
  void embed_async(std::vector<std::string> texts, EmbedCallback done) override;
  // Word pieces including [CLS] and [SEP], untruncated. See Embedder.
  std::size_t count_tokens(std::string_view text) const override;

  // Word-piece ids the model sees for `text`: [CLS] … [SEP], cut to max_sequence_tokens() with
  // [SEP] kept last, as sentence-transformers truncates. Special-token text such as "[SEP]" in
  // `text` maps to that token, as Hugging Face tokenizers do. Thread-safe.
  std::vector<int32_t> tokenize(std::string_view text) const;

  // The effective per-text cap in word pieces. Thread-safe.
  int max_sequence_tokens() const;

 private:
  struct Impl;
  explicit LlamaEmbedder(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace isartor::inference
