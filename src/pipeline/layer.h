#pragma once
// The layer chain. A request walks L1a -> L1b -> L2 -> L3; each layer either answers it or
// passes it on (like an Envoy filter saying stop or continue). On the way back every earlier
// layer may store the answer that a later layer produced.
#include <boost/asio/awaitable.hpp>
#include <chrono>
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

struct ChatRequest {
  api::WireFormat format = api::WireFormat::kOpenAI;  // the route it came in on
  CachePolicy cache;
  api::Json body;                                      // canonical OpenAI form, model resolved
  bool stream = false;                                 // the client wants SSE
  std::string exact_key;                               // memo of the L1a key, set by that layer
  // Set by L1b when the request is eligible for the semantic cache, so store() need not embed
  // again (an I/O thread never runs the model).
  struct SemanticMemo {
    std::string partition;  // hash of everything but the last user message
    std::string text;       // the last user message, as embedded
    std::vector<float> embedding;
  };
  std::optional<SemanticMemo> semantic;
};

struct Answer {
  std::string layer;                                 // "l1a" | "l1b" | "l2" | "l3"
  std::optional<api::Json> completion;               // a whole chat.completion, or
  // the same as OpenAI JSON text, exactly as a cache stored it: the OpenAI route sends it as is
  // (no parse, no dump); `completion` stays empty until parse_completion(), or
  std::string completion_json;
  std::unique_ptr<providers::ChunkStream> stream;    // a live stream (only when request.stream)
  std::optional<double> similarity;                  // for semantic hits
  bool deflected() const { return layer != "l3"; }
  // Fills `completion` from `completion_json` when only the text is there; false when that text
  // is not a JSON object. Not thread-safe.
  bool parse_completion();
};

struct LayerStatus {
  bool enabled = false;
  bool ready = false;
  std::string detail;  // e.g. provider name, or why not ready
};

class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string_view name() const = 0;
  virtual LayerStatus status() const = 0;
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
