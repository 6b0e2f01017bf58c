#pragma once
// Sentence embeddings for the L1b semantic cache. Level 1: LlamaEmbedder (all-MiniLM-L6-v2 on
// llama.cpp, in-process); Level 2: an HTTP embedding sidecar behind the same interface.
#include <functional>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace isartor::inference {

using Embedding = std::vector<float>;  // L2-normalised, dimensions() long
using EmbedCallback = std::function<void(Result<std::vector<Embedding>>)>;

class Embedder {
 public:
  virtual ~Embedder() = default;
  // Length of every vector (384 for all-MiniLM-L6-v2). Thread-safe.
  virtual int dimensions() const = 0;
  // Queues texts; `done` is called once, on a worker thread (never the caller's I/O thread),
  // with one vector per text in order, or an error. Thread-safe; never blocks on inference.
  virtual void embed_async(std::vector<std::string> texts, EmbedCallback done) = 0;
  // Tokens the model's tokenizer makes of `text`, before any truncation (usage reports and
  // token estimates). Thread-safe; cheap enough for an I/O thread (no inference).
  virtual std::size_t count_tokens(std::string_view text) const = 0;
  // Blocking convenience over embed_async (start-up, tools, tests). Thread-safe.
  Result<std::vector<Embedding>> embed(std::vector<std::string> texts);
};

}  // namespace isartor::inference
