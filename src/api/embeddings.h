#pragma once
// OpenAI /v1/embeddings wire format: the request as the local model needs it, and the response.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "api/wire_format.h"
#include "core/result.h"

namespace isartor::api {

// At most this many inputs per request, as OpenAI allows.
inline constexpr std::size_t kMaxEmbeddingInputs = 2048;

struct EmbeddingsRequest {
  std::string model;
  std::vector<std::string> texts;  // "input" as strings; empty when it was token ids
  bool token_ids = false;          // "input" was token ids, which only a provider's model can read
  bool base64 = false;             // "encoding_format": "base64"
  std::optional<int64_t> dimensions;
};

// Checks a /v1/embeddings body: "model" a non-empty string; "input" a non-empty string, an array
// of 1..2048 non-empty strings, an array of token ids or an array of such arrays;
// "encoding_format" "float" or "base64"; "dimensions" a positive integer. The error names the
// field in `param`. Pure.
Result<EmbeddingsRequest> parse_embeddings_request(const Json& body);

// The OpenAI "list" response: one {"object":"embedding","index","embedding"} per vector, in order
// (base64: the vector's little-endian float32 bytes), "model", and "usage" with prompt_tokens =
// total_tokens = `tokens`. Pure.
Json make_embeddings_response(const std::vector<std::vector<float>>& vectors, const std::string& model, bool base64,
                              int64_t tokens);

}  // namespace isartor::api
