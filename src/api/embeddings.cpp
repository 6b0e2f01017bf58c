#include "api/embeddings.h"

#include <bit>
#include <cstring>

#include "core/strings.h"

namespace isartor::api {
namespace {

std::unexpected<Error> invalid(std::string param, std::string message) {
  return fail(ErrorCode::kInvalidRequest, std::move(message), std::move(param));
}

bool token_list(const Json& value) {
  if (!value.is_array() || value.empty()) return false;
  for (const Json& id : value) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0) return false;
  }
  return true;
}

// "input": a string, strings, token ids, or lists of token ids (the four shapes OpenAI takes).
Result<void> read_input(const Json& input, EmbeddingsRequest& out) {
  auto empty_text = [] { return invalid("input", "'input' must not contain empty strings"); };
  if (input.is_string()) {
    if (input.get_ref<const std::string&>().empty()) return empty_text();
    out.texts.push_back(input.get<std::string>());
    return {};
  }
  if (!input.is_array() || input.empty()) {
    return invalid("input", "'input' must be a non-empty string, array of strings or array of token ids");
  }
  if (input.size() > kMaxEmbeddingInputs) {
    return invalid("input", "'input' has " + std::to_string(input.size()) + " items; at most 2048 are allowed");
  }
  if (token_list(input)) {
    out.token_ids = true;
    return {};
  }
  bool all_token_lists = true;
  for (const Json& item : input) all_token_lists = all_token_lists && token_list(item);
  if (all_token_lists) {
    out.token_ids = true;
    return {};
  }
  for (const Json& item : input) {
    if (!item.is_string()) {
      return invalid("input", "every item of 'input' must be a string (or all token ids)");
    }
    if (item.get_ref<const std::string&>().empty()) return empty_text();
    out.texts.push_back(item.get<std::string>());
  }
  return {};
}

}  // namespace

Result<EmbeddingsRequest> parse_embeddings_request(const Json& body) {
  EmbeddingsRequest out;
  const auto model = body.find("model");
  if (model == body.end()) return invalid("model", "'model' is a required property");
  if (!model->is_string() || model->get_ref<const std::string&>().empty()) {
    return invalid("model", "'model' must be a non-empty string");
  }
  out.model = model->get<std::string>();
  const auto input = body.find("input");
  if (input == body.end()) return invalid("input", "'input' is a required property");
  RETURN_IF_ERROR(read_input(*input, out));
  if (const auto format = body.find("encoding_format"); format != body.end()) {
    if (*format != "float" && *format != "base64") {
      return invalid("encoding_format", "'encoding_format' must be 'float' or 'base64'");
    }
    out.base64 = *format == "base64";
  }
  if (const auto dims = body.find("dimensions"); dims != body.end()) {
    if (!dims->is_number_integer() || dims->get<int64_t>() < 1) {
      return invalid("dimensions", "'dimensions' must be a positive integer");
    }
    out.dimensions = dims->get<int64_t>();
  }
  return out;
}

Json make_embeddings_response(const std::vector<std::vector<float>>& vectors, const std::string& model, bool base64,
                              int64_t tokens) {
  static_assert(std::endian::native == std::endian::little, "base64 embeddings are little-endian float32");
  Json data = Json::array();
  for (std::size_t i = 0; i < vectors.size(); ++i) {
    Json embedding;
    if (base64) {
      std::string bytes(vectors[i].size() * sizeof(float), '\0');
      std::memcpy(bytes.data(), vectors[i].data(), bytes.size());
      embedding = core::base64_encode(bytes);
    } else {
      embedding = vectors[i];
    }
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(embedding)}});
  }
  return {{"object", "list"},
          {"data", std::move(data)},
          {"model", model},
          {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}};
}

}  // namespace isartor::api
