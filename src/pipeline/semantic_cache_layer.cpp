#include "pipeline/semantic_cache_layer.h"

#include <limits>
#include <mutex>

#include "cache/cache_backend.h"
#include "cache/cache_key.h"
#include "core/log.h"
#include "pipeline/layer_support.h"
#include "pipeline/semantic_guard.h"

namespace isartor::pipeline {
namespace asio = boost::asio;

namespace {

constexpr const char* kTarget = "isartor::cache::semantic";
constexpr int kCandidates = 4;  // a few, so the guard can skip a close but incompatible entry

}  // namespace

std::optional<ChatRequest::SemanticMemo> semantic_key(const ChatRequest& request, bool single_turn_only) {
  const auto& body = request.body;
  auto tools = body.find("tools");
  if (tools != body.end() && !(tools->is_array() && tools->empty()) && !tools->is_null()) return std::nullopt;
  auto messages = body.find("messages");
  if (messages == body.end() || !messages->is_array() || messages->empty()) return std::nullopt;
  const auto& last = messages->back();
  if (!last.is_object() || last.value("role", "") != "user" || !last.contains("content")) return std::nullopt;
  auto text = message_text(last["content"]);
  if (!text || text->empty()) return std::nullopt;
  if (single_turn_only) {
    int turns = 0;
    for (const auto& m : *messages) {
      std::string role = m.is_object() ? m.value("role", "") : "";
      if (role != "system" && role != "developer") ++turns;
    }
    if (turns != 1) return std::nullopt;
  }
  // Everything but the last message's content must match exactly: that is the partition.
  api::Json rest = body;
  rest["messages"].back()["content"] = "";
  return ChatRequest::SemanticMemo{cache::partitioned_key(request.cache.partition, cache::exact_cache_key(request.format, rest)),
                                   std::move(*text), {}};
}

SemanticCacheLayer::SemanticCacheLayer(std::shared_ptr<inference::Embedder> embedder, SemanticCacheOptions options,
                                       std::string model_name, Clock clock)
    : embedder_(std::move(embedder)),
      options_(options),
      model_name_(std::move(model_name)),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })) {}

std::size_t SemanticCacheLayer::size() const {
  std::shared_lock lock(mu_);
  return entries_.size();
}

std::size_t SemanticCacheLayer::bytes() const {
  std::shared_lock lock(mu_);
  return bytes_;
}

LayerStatus SemanticCacheLayer::status() const {
  return {true, true, model_name_ + ", " + std::to_string(size()) + " entries"};
}

std::optional<SemanticCacheLayer::Hit> SemanticCacheLayer::find(const ChatRequest::SemanticMemo& memo) const {
  std::shared_lock lock(mu_);
  auto index = partitions_.find(memo.partition);
  if (index == partitions_.end()) return std::nullopt;
  const auto now = clock_();
  for (const auto& n : index->second->search(memo.embedding, kCandidates)) {
    if (n.score < options_.threshold) {  // best first
      LOG_DEBUG(kTarget, "nearest entry at similarity {:.3f} is below the threshold {:.2f}", n.score,
                options_.threshold);
      break;
    }
    auto it = entries_.find(n.id);
    if (it == entries_.end()) continue;
    const Entry& e = it->second;
    if (now >= e.expires) continue;
    if (options_.guard && !semantically_compatible(memo.text, e.text)) {
      LOG_DEBUG(kTarget, "guard rejected a candidate at similarity {:.3f}", n.score);
      continue;
    }
    return Hit{n.id, e.completion, n.score};
  }
  return std::nullopt;
}

void SemanticCacheLayer::touch(vector::Id id) {
  std::unique_lock lock(mu_);
  auto it = entries_.find(id);
  if (it != entries_.end()) lru_.splice(lru_.begin(), lru_, it->second.lru);
}

asio::awaitable<Result<std::optional<Answer>>> SemanticCacheLayer::answer(ChatRequest& request) {
  if (!request.cache.lookup && !request.cache.store) co_return std::optional<Answer>{};
  auto memo = semantic_key(request, options_.single_turn_only);
  if (!memo) co_return std::optional<Answer>{};
  std::vector<std::string> texts(1, memo->text);
  auto embedded = co_await embed_on_worker(*embedder_, std::move(texts));
  if (!embedded || embedded->size() != 1) {
    // The cache is an optimisation: a failing embedder must not fail the request.
    LOG_WARN(kTarget, "embedding failed, skipping the semantic cache: {}",
             embedded ? "no vector returned" : embedded.error().message);
    co_return std::optional<Answer>{};
  }
  memo->embedding = std::move((*embedded)[0]);
  // Without a lookup the embedding is still made: it is what store() keeps.
  auto hit = request.cache.lookup ? find(*memo) : std::nullopt;
  request.semantic = std::move(memo);
  if (!hit) co_return std::optional<Answer>{};
  auto completion = api::Json::parse(hit->completion, nullptr, false);
  if (!completion.is_object()) co_return std::optional<Answer>{};
  touch(hit->id);
  Answer answer;
  answer.layer = LayerId::kL1b;
  answer.completion = std::move(completion);
  answer.similarity = hit->score;
  co_return std::optional<Answer>(std::move(answer));
}

void SemanticCacheLayer::erase_locked(vector::Id id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  auto index = partitions_.find(it->second.partition);
  if (index != partitions_.end()) {
    index->second->remove(id);
    if (index->second->size() == 0) partitions_.erase(index);
  }
  by_text_.erase(it->second.partition + '\n' + it->second.text);
  lru_.erase(it->second.lru);
  bytes_ -= it->second.bytes;
  entries_.erase(it);
}

void SemanticCacheLayer::clear() {
  std::unique_lock lock(mu_);
  entries_.clear();
  by_text_.clear();
  partitions_.clear();
  lru_.clear();
  bytes_ = 0;
}

bool SemanticCacheLayer::forget(const ChatRequest& request) {
  const auto memo = semantic_key(request, options_.single_turn_only);
  if (!memo) return false;
  std::unique_lock lock(mu_);
  const auto it = by_text_.find(memo->partition + '\n' + memo->text);
  if (it == by_text_.end()) return false;
  erase_locked(it->second);
  return true;
}

void SemanticCacheLayer::store(const ChatRequest& request, const api::Json& completion) {
  if (!request.cache.store || !request.semantic || request.semantic->embedding.empty() || options_.capacity == 0) {
    return;
  }
  const auto& memo = *request.semantic;
  std::unique_lock lock(mu_);
  if (auto existing = by_text_.find(memo.partition + '\n' + memo.text); existing != by_text_.end()) {
    erase_locked(existing->second);
  }
  std::string answer = completion.dump();
  const std::size_t size = memo.partition.size() + memo.text.size() + answer.size() +
                           memo.embedding.size() * sizeof(float);
  const std::size_t max_bytes = options_.max_bytes == 0 ? std::numeric_limits<std::size_t>::max() : options_.max_bytes;
  if (size > max_bytes) return;
  const auto now = clock_();
  // Expired entries at the cold end go first, then whatever exceeds the capacity.
  while (!lru_.empty() && (entries_.at(lru_.back()).expires <= now ||
                           entries_.size() >= options_.capacity || bytes_ + size > max_bytes)) {
    erase_locked(lru_.back());
  }
  auto& index = partitions_[memo.partition];
  if (!index) {
    index = vector::make_index(static_cast<int>(memo.embedding.size()), options_.index, 0);
  }
  const vector::Id id = next_id_++;
  index->upsert(id, memo.embedding);
  lru_.push_front(id);
  const auto expires = cache::expiry_time(now, request.cache.ttl.value_or(options_.ttl));
  entries_.emplace(id, Entry{memo.partition, memo.text, std::move(answer), expires, lru_.begin(), size});
  bytes_ += size;
  by_text_.emplace(memo.partition + '\n' + memo.text, id);
}

}  // namespace isartor::pipeline
