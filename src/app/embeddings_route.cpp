#include "app/embeddings_route.h"

#include "api/embeddings.h"
#include "cache/cache_key.h"
#include "core/sha256.h"
#include "core/strings.h"
#include "pipeline/layer_support.h"

namespace isartor::app {
namespace asio = boost::asio;

namespace {

// Apart from chat keys (which hash "v1|..."), over everything that decides the vectors.
std::string cache_key(const api::Json& body, const pipeline::CachePolicy& policy) {
  return cache::partitioned_key(policy.partition,
                                "emb:" + to_hex(sha256("embeddings|" + cache::canonical_request(api::WireFormat::kOpenAI, body))));
}

RouteAnswer answer(std::string body, std::string_view cache, bool deflected) {
  return {std::move(body), {{"X-Isartor-Cache", std::string(cache)}, {"X-Isartor-Deflected", deflected ? "true" : "false"}}};
}

asio::awaitable<Result<api::Json>> embed_locally(inference::Embedder& embedder, const api::EmbeddingsRequest& request) {
  if (request.token_ids) {
    co_return fail(ErrorCode::kInvalidRequest, "the local model '" + request.model + "' takes text, not token ids",
                   "input");
  }
  if (request.dimensions && *request.dimensions != embedder.dimensions()) {
    co_return fail(ErrorCode::kInvalidRequest,
                   "the local model '" + request.model + "' makes " + std::to_string(embedder.dimensions()) +
                       "-dimensional vectors; 'dimensions' cannot change that",
                   "dimensions");
  }
  int64_t tokens = 0;
  for (const auto& text : request.texts) tokens += static_cast<int64_t>(embedder.count_tokens(text));
  CO_ASSIGN_OR_RETURN(auto vectors, co_await pipeline::embed_on_worker(embedder, request.texts));
  co_return api::make_embeddings_response(vectors, request.model, request.base64, tokens);
}

}  // namespace

bool names_local_model(std::string_view model, std::string_view local_name) {
  if (model.empty() || local_name.empty()) return false;
  if (core::iequals(model, local_name)) return true;
  const auto slash = local_name.find_last_of('/');
  if (slash == std::string_view::npos) return false;
  std::string_view last = local_name.substr(slash + 1);
  if (last.ends_with(".gguf")) last.remove_suffix(5);
  return core::iequals(model, last);
}

asio::awaitable<Result<RouteAnswer>> answer_embeddings(const EmbeddingsRoute& route, api::Json body,
                                                       const pipeline::CachePolicy& policy) {
  CO_ASSIGN_OR_RETURN(auto request, api::parse_embeddings_request(body));
  const bool local = names_local_model(request.model, route.local_model);
  if (local && !route.embedder) {
    co_return fail(ErrorCode::kUnavailable, "the local embedding model '" + request.model +
                                                "' is not loaded (it runs with the semantic cache: ISARTOR__CACHE_MODE "
                                                "both or semantic; see /health)");
  }
  const std::string key = route.cache ? cache_key(body, policy) : std::string();
  if (route.cache && policy.lookup) {
    if (auto hit = route.cache->get(key)) co_return answer(std::move(*hit), "hit", true);
  }
  Result<api::Json> response = fail(ErrorCode::kInternal, "unreachable");
  if (local) {
    response = co_await embed_locally(*route.embedder, request);
  } else {
    // A named request: g++ 12 destroys a braced temporary in a co_await expression twice.
    providers::NativeRequest native;
    native.endpoint = providers::NativeEndpoint::kEmbeddings;
    native.body = std::move(body);
    native.headers = route.headers;
    response = co_await route.upstream->call_native(native);
    if (response && !(response->contains("data") && (*response)["data"].is_array())) {
      response = fail(ErrorCode::kUpstream, "upstream provider " + std::string(route.upstream->primary()) +
                                                " answered embeddings without a 'data' array");
    }
  }
  if (!response) co_return std::unexpected(response.error());
  std::string text = api::dump_json(*response);
  if (route.cache && policy.store) route.cache->put(key, text, policy.ttl);
  co_return answer(std::move(text), policy.lookup ? "miss" : "bypass", local);
}

}  // namespace isartor::app
