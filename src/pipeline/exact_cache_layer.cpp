#include "pipeline/exact_cache_layer.h"

#include "cache/cache_key.h"
#include "core/log.h"

namespace isartor::pipeline {

namespace {

const std::string& key_of(ChatRequest& request) {
  if (request.exact_key.empty()) request.exact_key = cache::exact_cache_key(request.format, request.body);
  return request.exact_key;
}

}  // namespace

LayerStatus ExactCacheLayer::status() const {
  return {true, true, std::to_string(backend_->size()) + " entries"};
}

boost::asio::awaitable<Result<std::optional<Answer>>> ExactCacheLayer::answer(ChatRequest& request) {
  auto hit = backend_->get(key_of(request));
  if (!hit) co_return std::optional<Answer>{};
  auto completion = api::Json::parse(*hit, nullptr, false);
  if (!completion.is_object()) {
    // A corrupt entry (e.g. written by another version into a shared backend) is a miss.
    backend_->erase(request.exact_key);
    co_return std::optional<Answer>{};
  }
  Answer answer;
  answer.layer = "l1a";
  answer.completion = std::move(completion);
  co_return std::optional<Answer>(std::move(answer));
}

void ExactCacheLayer::store(const ChatRequest& request, const api::Json& completion) {
  std::string key = request.exact_key.empty() ? cache::exact_cache_key(request.format, request.body)
                                              : request.exact_key;
  backend_->put(std::move(key), completion.dump());
  LOG_DEBUG("isartor::cache", "stored answer in l1a");
}

}  // namespace isartor::pipeline
