#pragma once
// L1b: answers a paraphrase of an earlier request. The last user message is embedded (on the
// embedder's worker threads, never the I/O thread) and searched among cached requests of the same
// partition: same route format, model, system prompt, earlier messages, tools and sampling
// parameters — everything but the last user message must match exactly. A hit needs cosine >=
// threshold and, with the guard on, no mismatch in numbers or negation (semantic_guard.h).
// Entries follow the exact cache's rules: TTL from storage, LRU eviction past capacity; the
// vector index and the entry store are updated together under one lock.
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <shared_mutex>
#include <unordered_map>

#include "inference/embedder.h"
#include "pipeline/layer.h"
#include "vector/factory.h"

namespace isartor::pipeline {

struct SemanticCacheOptions {
  double threshold = 0.85;
  std::chrono::seconds ttl{300};  // 0 = never expires
  std::size_t capacity = 10000;
  std::size_t max_bytes = 0;  // prompt text, answer and embedding of every entry; 0 = no cap
  bool single_turn_only = true;  // multi-turn requests go exact-only
  bool guard = true;
  vector::IndexKind index = vector::IndexKind::kAuto;
};

class SemanticCacheLayer final : public Layer {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  SemanticCacheLayer(std::shared_ptr<inference::Embedder> embedder, SemanticCacheOptions options,
                     std::string model_name, Clock clock = {});
  LayerId id() const override { return LayerId::kL1b; }
  LayerStatus status() const override;
  std::optional<CacheStats> cache_stats() const override { return CacheStats{size(), bytes()}; }
  boost::asio::awaitable<Result<std::optional<Answer>>> answer(ChatRequest& request) override;
  void store(const ChatRequest& request, const api::Json& completion) override;
  void clear() override;
  bool forget(const ChatRequest& request) override;

  // Entries held, and their bytes. Thread-safe.
  std::size_t size() const;
  std::size_t bytes() const;

 private:
  struct Entry {
    std::string partition;
    std::string text;
    std::string completion;  // JSON text
    std::chrono::steady_clock::time_point expires;
    std::list<vector::Id>::iterator lru;
    std::size_t bytes;  // counted against max_bytes
  };
  struct Hit {
    vector::Id id;
    std::string completion;
    float score;
  };

  std::optional<Hit> find(const ChatRequest::SemanticMemo& memo) const;
  void touch(vector::Id id);
  void erase_locked(vector::Id id);

  std::shared_ptr<inference::Embedder> embedder_;
  SemanticCacheOptions options_;
  std::string model_name_;
  Clock clock_;

  mutable std::shared_mutex mu_;
  std::unordered_map<vector::Id, Entry> entries_;
  std::unordered_map<std::string, vector::Id> by_text_;  // partition + '\n' + text -> id
  std::unordered_map<std::string, std::unique_ptr<vector::VectorIndex>> partitions_;
  std::list<vector::Id> lru_;  // most recent first
  std::size_t bytes_ = 0;      // sum of Entry::bytes
  vector::Id next_id_ = 1;
};

// What L1b keys a request by, or std::nullopt when it must not be answered semantically (tools,
// non-text last message, multi-turn when single_turn_only). Pure.
std::optional<ChatRequest::SemanticMemo> semantic_key(const ChatRequest& request, bool single_turn_only);

}  // namespace isartor::pipeline
