#include "pipeline/exact_cache_layer.h"

#include "cache/cache_key.h"
#include "core/log.h"

namespace isartor::pipeline {

namespace {

std::string make_key(const ChatRequest& request) {
  return cache::partitioned_key(request.cache.partition, cache::exact_cache_key(request.format, request.body));
}

const std::string& key_of(ChatRequest& request) {
  if (request.exact_key.empty()) request.exact_key = make_key(request);
  return request.exact_key;
}

bool looks_like_object(std::string_view text) {
  return text.size() >= 2 && text.front() == '{' && text.back() == '}';
}

}  // namespace

LayerStatus ExactCacheLayer::status() const {
  return {true, true, std::to_string(backend_->size()) + " entries"};
}

boost::asio::awaitable<Result<std::optional<Answer>>> ExactCacheLayer::answer(ChatRequest& request) {
  if (!request.cache.lookup) co_return std::optional<Answer>{};
  auto hit = backend_->get(key_of(request));
  if (!hit) co_return std::optional<Answer>{};
  // The text is served as stored (the gateway wrote it with Json::dump); only its shape is checked
  // here, so a truncated entry in a shared backend is a miss rather than a broken answer.
  if (!looks_like_object(*hit)) {
    backend_->erase(request.exact_key);
    co_return std::optional<Answer>{};
  }
  Answer answer;
  answer.layer = LayerId::kL1a;
  answer.completion_json = std::move(*hit);
  co_return std::optional<Answer>(std::move(answer));
}

bool ExactCacheLayer::forget(const ChatRequest& request) { return backend_->erase(make_key(request)); }

void ExactCacheLayer::store(const ChatRequest& request, const api::Json& completion) {
  if (!request.cache.store) return;
  std::string key = request.exact_key.empty() ? make_key(request) : request.exact_key;
  backend_->put(std::move(key), completion.dump(), request.cache.ttl);
  LOG_DEBUG("isartor::cache", "stored answer in l1a");
}

}  // namespace isartor::pipeline
