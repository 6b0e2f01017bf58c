#pragma once
#include "cache/cache_backend.h"
#include "pipeline/layer.h"

namespace isartor::pipeline {

// L1a: answers a request identical (by cache::exact_cache_key) to an earlier one from the
// backend; stores whole completions as JSON text.
class ExactCacheLayer final : public Layer {
 public:
  explicit ExactCacheLayer(std::shared_ptr<cache::CacheBackend> backend) : backend_(std::move(backend)) {}
  LayerId id() const override { return LayerId::kL1a; }
  LayerStatus status() const override;
  std::optional<CacheStats> cache_stats() const override { return CacheStats{backend_->size(), backend_->bytes()}; }
  boost::asio::awaitable<Result<std::optional<Answer>>> answer(ChatRequest& request) override;
  void store(const ChatRequest& request, const api::Json& completion) override;
  void clear() override { backend_->clear(); }
  bool forget(const ChatRequest& request) override;

 private:
  std::shared_ptr<cache::CacheBackend> backend_;
};

}  // namespace isartor::pipeline
