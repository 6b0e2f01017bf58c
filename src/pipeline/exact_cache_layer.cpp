#include "pipeline/exact_cache_layer.h"

#include <array>
#include <cstring>
#include <functional>

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

constexpr std::array<std::string_view, 7> kRenderings{"openai.sse",  "openai.sse.usage", "anthropic",
                                                      "anthropic.sse", "completions",   "completions.sse",
                                                      "completions.sse.usage"};

std::string rendering_key(std::string_view key, std::string_view rendering) {
  std::string out;
  out.reserve(key.size() + 1 + rendering.size());
  out.append(key).append("#").append(rendering);
  return out;
}

// A rendering is stored as the entry's hash (8 bytes) + bytes: one rendered from an answer the
// key no longer holds (a store that raced with the hit that rendered it) is ignored.
constexpr std::size_t kStampSize = sizeof(uint64_t);
std::string stamp_of(std::string_view entry) {
  const uint64_t hash = std::hash<std::string_view>{}(entry);
  std::string stamp(kStampSize, '\0');
  std::memcpy(stamp.data(), &hash, kStampSize);
  return stamp;
}

}  // namespace

std::string_view rendering_of(api::WireFormat format, bool stream, bool usage_chunk) {
  switch (format) {
    case api::WireFormat::kOpenAI: return !stream ? "" : usage_chunk ? kRenderings[1] : kRenderings[0];
    case api::WireFormat::kAnthropic: return stream ? kRenderings[3] : kRenderings[2];
    case api::WireFormat::kCompletions: return !stream ? kRenderings[4] : usage_chunk ? kRenderings[6] : kRenderings[5];
    case api::WireFormat::kResponses:
    case api::WireFormat::kNative: return "";
  }
  return "";
}

void ExactCacheLayer::drop_renderings(std::string_view key) {
  if (!renderings_) return;
  for (std::string_view rendering : kRenderings) renderings_->erase(rendering_key(key, rendering));
}

std::optional<CacheStats> ExactCacheLayer::cache_stats() const {
  return CacheStats{backend_->size(), backend_->bytes() + (renderings_ ? renderings_->bytes() : 0)};
}

void ExactCacheLayer::clear() {
  backend_->clear();
  if (renderings_) renderings_->clear();
}

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
  if (renderings_ && !request.rendering.empty()) {
    std::string stamp = stamp_of(*hit);
    std::string key = rendering_key(request.exact_key, request.rendering);
    auto rendered = renderings_->get(key);
    if (rendered && rendered->size() >= kStampSize && std::string_view(*rendered).substr(0, kStampSize) == stamp) {
      rendered->erase(0, kStampSize);
      answer.rendered = std::move(*rendered);
    } else if (request.cache.store) {
      answer.keep_rendered = [backend = renderings_, key = std::move(key), stamp = std::move(stamp),
                              ttl = request.cache.ttl](std::string_view bytes) {
        backend->put(key, stamp + std::string(bytes), ttl);
      };
    }
  }
  answer.completion_json = std::move(*hit);
  co_return std::optional<Answer>(std::move(answer));
}

bool ExactCacheLayer::forget(const ChatRequest& request) {
  const std::string key = make_key(request);
  drop_renderings(key);
  return backend_->erase(key);
}

void ExactCacheLayer::store(const ChatRequest& request, const api::Json& completion) {
  if (!request.cache.store) return;
  std::string key = request.exact_key.empty() ? make_key(request) : request.exact_key;
  drop_renderings(key);
  backend_->put(std::move(key), completion.dump(), request.cache.ttl);
  LOG_DEBUG("isartor::cache", "stored answer in l1a");
}

}  // namespace isartor::pipeline
