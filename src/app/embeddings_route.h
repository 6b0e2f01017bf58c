#pragma once
// POST /v1/embeddings: the in-process embedding model (L1b's all-MiniLM-L6-v2) answers when the
// request names it; any other model goes to the provider's own embeddings endpoint. Answers are
// kept in the exact cache (L1a's store) under the request's cache policy, like chat answers.
#include <boost/asio/awaitable.hpp>
#include <string>
#include <string_view>

#include "api/wire_format.h"
#include "cache/cache_backend.h"
#include "core/result.h"
#include "http/server.h"
#include "inference/embedder.h"
#include "pipeline/layer.h"
#include "providers/upstream_chain.h"

namespace isartor::app {

// A JSON answer of a route besides chat, rendered once, with its headers.
struct RouteAnswer {
  std::string body;
  http::Headers headers;
};

struct EmbeddingsRoute {
  inference::Embedder* embedder = nullptr;  // the local model; null when it is not loaded
  std::string local_model;                  // the name it answers to (embedding_model_name())
  providers::UpstreamChain* upstream = nullptr;  // L3's providers
  cache::CacheBackend* cache = nullptr;     // null when the exact cache is off
  providers::ClientHeaders headers;         // the client's allow-listed fields, for the provider
};

// Whether `model` names the local embedding model: its full name or its last path component
// without ".gguf" ("all-MiniLM-L6-v2" for "sentence-transformers/all-MiniLM-L6-v2" or
// "/models/all-MiniLM-L6-v2.gguf"), ignoring ASCII case. Pure.
bool names_local_model(std::string_view model, std::string_view local_name);

// Answers a /v1/embeddings body (a JSON object) under `policy`: the OpenAI response, with
// X-Isartor-Cache and X-Isartor-Deflected. Errors are values (400 for a bad body, 503 when the
// local model is named but not loaded, the provider's own errors). Awaited on the caller's
// executor; the model runs on the embedder's workers. Safe to call concurrently.
boost::asio::awaitable<Result<RouteAnswer>> answer_embeddings(const EmbeddingsRoute& route, api::Json body,
                                                              const pipeline::CachePolicy& policy);

}  // namespace isartor::app
