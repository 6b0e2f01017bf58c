#pragma once
// POST /v1/messages/count_tokens (Anthropic; Claude Code asks it before long requests): the
// provider's own count when the provider is Anthropic, else an estimate from a real tokenizer,
// marked as such (X-Isartor-Token-Count: estimate).
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "api/wire_format.h"
#include "app/embeddings_route.h"
#include "core/result.h"
#include "inference/embedder.h"
#include "providers/upstream_chain.h"

namespace isartor::app {

struct CountTokensRoute {
  providers::UpstreamChain* upstream = nullptr;  // L3's providers
  bool provider_counts = false;              // the provider has count_tokens (Anthropic)
  inference::Embedder* tokenizer = nullptr;  // for estimates; null: UTF-8 bytes / 4
  std::string tokenizer_name;
  std::string default_model;                 // ISARTOR__EXTERNAL_LLM_MODEL, when the body names none
};

// Tokens an estimate gives an Anthropic Messages body (system, messages, tools; images not
// counted): the tokenizer's count of each text plus 3 per message, or bytes / 4 without one.
// Errors as for /v1/messages (kInvalidRequest naming the field). Pure apart from the tokenizer.
Result<int64_t> estimate_input_tokens(const api::Json& body, const inference::Embedder* tokenizer);

// Answers a count_tokens body (a JSON object): {"input_tokens": N} with X-Isartor-Token-Count
// provider|estimate (and X-Isartor-Tokenizer for an estimate). `headers`: client fields passed to
// the provider ("anthropic-beta: ..."). Awaited on the caller's executor.
boost::asio::awaitable<Result<RouteAnswer>> answer_count_tokens(const CountTokensRoute& route, api::Json body,
                                                                std::vector<std::string> headers);

}  // namespace isartor::app
