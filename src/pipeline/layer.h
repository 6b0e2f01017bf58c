#pragma once
// The layer chain. A request walks L1a -> L1b -> L2 -> L3; each layer either answers it or
// passes it on (like an Envoy filter saying stop or continue). On the way back every earlier
// layer may store the answer that a later layer produced.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/wire_format.h"
#include "core/result.h"
#include "providers/provider_client.h"

namespace isartor::pipeline {

// What one request allows the caches (L1a, L1b) to do, from its headers (app/cache_control.h).
struct CachePolicy {
  bool lookup = true;  // false: answer without looking in the caches (Cache-Control: no-cache)
  bool store = true;   // false: do not keep this answer (no-store, max-age=0)
  std::optional<std::chrono::seconds> ttl;  // this answer's entry lifetime (max-age=N, N > 0)
  std::string partition;  // entries are shared only within one partition ("" = the shared one)
};

class RequestBudget;  // observer.h

struct ChatRequest {
  api::WireFormat format = api::WireFormat::kOpenAI;  // the route it came in on
  CachePolicy cache;
  api::Json body;                                      // canonical OpenAI form, model resolved
  bool stream = false;                                 // the client wants SSE
  // The client's own request, when the provider speaks the route's format: L3 sends it
  // unchanged instead of `body` (which the caches and L2 use).
  std::optional<providers::PassThrough> native;
  providers::ClientHeaders client_headers;  // allow-listed client fields for the provider
  // `native` has content the canonical form cannot hold (`body` is only {"model"}): no layer
  // but L3 sees it, and nothing is stored.
  bool provider_only = false;
  std::string exact_key;                               // memo of the L1a key, set by that layer
  // How the edge renders an answer in the route's form, when that costs a conversion L1a can keep
  // beside a hit's entry (rendering_of()); "" when the stored text goes out as it is, or none.
  std::string_view rendering;
  // Set by L1b when the request is eligible for the semantic cache, so store() need not embed
  // again (an I/O thread never runs the model).
  struct SemanticMemo {
    std::string partition;  // hash of everything but the last user message
    std::string text;       // the last user message, as embedded
    std::vector<float> embedding;
  };
  std::optional<SemanticMemo> semantic;
  std::shared_ptr<RequestBudget> budget;  // the calling client's limits; null: none
};

// The layers of the chain, in order (the names are the ones headers, metrics and /health use).
enum class LayerId : uint8_t { kL1a, kL1b, kL2, kL3 };
inline constexpr std::size_t kLayerCount = 4;

// "l1a", "l1b", "l2", "l3". Pure.
std::string_view to_string(LayerId layer);

// True for the caches (L1a, L1b), whose answers are hits. Pure.
constexpr bool is_cache(LayerId layer) { return layer == LayerId::kL1a || layer == LayerId::kL1b; }
// True for every layer but the cloud: an answer from it saved a provider call. Pure.
constexpr bool deflects(LayerId layer) { return layer != LayerId::kL3; }

struct Answer {
  LayerId layer = LayerId::kL3;
  std::optional<api::Json> completion;               // a whole chat.completion, or
  // the same as OpenAI JSON text, exactly as a cache stored it: the OpenAI route sends it as is
  // (no parse, no dump); `completion` stays empty until parse_completion(), or
  std::string completion_json;
  // L1a: this hit already rendered as request.rendering asks (sent as it is), or, when it was not
  // yet, `keep_rendered` takes the edge's rendering for the next hits. Both empty otherwise.
  std::string rendered;
  std::function<void(std::string_view)> keep_rendered;
  std::unique_ptr<providers::ChunkStream> stream;    // a live stream (only when request.stream)
  // A pass-through answer (request.native): the provider's JSON text, sent to the client as it
  // is; for a stream, the client gets stream->take_native() instead of rendered chunks.
  std::string native_json;
  bool native_stream = false;
  std::string provider;                              // L3: the provider that answered
  std::optional<double> similarity;                  // for semantic hits
  bool deflected() const { return deflects(layer); }
  // Fills `completion` from `completion_json` when only the text is there; false when that text
  // is not a JSON object. Not thread-safe.
  bool parse_completion();
};

// What a cache layer holds, for metrics.
struct CacheStats {
  std::size_t entries = 0;
  std::size_t bytes = 0;
};

struct LayerStatus {
  bool enabled = false;
  bool ready = false;
  std::string detail;  // e.g. provider name, or why not ready
};

class Layer {
 public:
  virtual ~Layer() = default;
  virtual LayerId id() const = 0;
  virtual LayerStatus status() const = 0;
  // What a cache holds; std::nullopt for a layer that is not one. Thread-safe.
  virtual std::optional<CacheStats> cache_stats() const { return std::nullopt; }
  // A cache drops every entry; other layers do nothing. Thread-safe.
  virtual void clear() {}
  // A cache drops the entry that exactly this request would be answered from (not its
  // paraphrases); true when there was one. Thread-safe.
  virtual bool forget(const ChatRequest& request) {
    (void)request;
    return false;
  }
  // Answers, or returns std::nullopt to pass the request on. An Error ends the chain.
  // Called concurrently from many coroutines.
  virtual boost::asio::awaitable<Result<std::optional<Answer>>> answer(ChatRequest& request) = 0;
  // Remembers a complete answer produced by a later layer. Thread-safe; must not block long.
  virtual void store(const ChatRequest& request, const api::Json& completion) {
    (void)request;
    (void)completion;
  }
};

}  // namespace isartor::pipeline
