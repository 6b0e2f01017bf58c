#pragma once
#include "cache/cache_backend.h"
#include "pipeline/layer.h"

namespace isartor::pipeline {

// The rendered forms of a hit that L1a keeps beside its entry, so that the hits after the first
// of that form send bytes rendered once instead of converting the stored answer again: the
// Anthropic message and event stream, the text_completion and its stream, and the OpenAI stream
// (with or without the usage chunk the client asked for). "" for the stored OpenAI JSON itself
// and for forms that depend on more than the entry (a Responses object repeats request fields
// outside the cache key; /api/chat is cheap). Pure.
std::string_view rendering_of(api::WireFormat format, bool stream, bool usage_chunk);

// L1a: answers a request identical (by cache::exact_cache_key) to an earlier one from the
// backend; stores whole completions as JSON text. The renderings its hits needed
// (rendering_of()) are kept in `renderings`, an in-process store of derived bytes (never the
// shared backend), each bound to the entry's text: a new answer under the same key drops them,
// and one rendered from another answer (another replica's, a racing store) is never served.
class ExactCacheLayer final : public Layer {
 public:
  // `renderings` null: every hit is rendered anew.
  explicit ExactCacheLayer(std::shared_ptr<cache::CacheBackend> backend,
                           std::shared_ptr<cache::CacheBackend> renderings = nullptr)
      : backend_(std::move(backend)), renderings_(std::move(renderings)) {}
  LayerId id() const override { return LayerId::kL1a; }
  LayerStatus status() const override;
  // Entries are answers; bytes include the kept renderings.
  std::optional<CacheStats> cache_stats() const override;
  boost::asio::awaitable<Result<std::optional<Answer>>> answer(ChatRequest& request) override;
  void store(const ChatRequest& request, const api::Json& completion) override;
  void clear() override;
  bool forget(const ChatRequest& request) override;

 private:
  std::shared_ptr<cache::CacheBackend> backend_;
  std::shared_ptr<cache::CacheBackend> renderings_;
  void drop_renderings(std::string_view key);
};

}  // namespace isartor::pipeline
