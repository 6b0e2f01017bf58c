#include "api/completions.h"

#include "api/openai.h"

namespace isartor::api {
namespace {

std::unexpected<Error> invalid(std::string param, std::string message) {
  return fail(ErrorCode::kInvalidRequest, std::move(message), std::move(param));
}

// "chatcmpl-X" -> "cmpl-X", the id family of text completions.
Json completion_id(const Json& id) {
  if (!id.is_string()) return id;
  std::string text = id.get<std::string>();
  if (text.starts_with("chatcmpl-")) text.erase(0, 4);
  return text;
}

Json text_choice(const Json& text, const Json& finish_reason, const Json& index) {
  return {{"text", text}, {"index", index}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
}

Json with_envelope(const Json& chat, Json choices) {
  Json out{{"id", completion_id(chat.value("id", Json()))},
           {"object", "text_completion"},
           {"created", chat.value("created", Json(0))},
           {"model", chat.value("model", Json(""))},
           {"choices", std::move(choices)}};
  for (const char* key : {"usage", "system_fingerprint"}) {
    if (chat.contains(key) && !chat[key].is_null()) out[key] = chat[key];
  }
  return out;
}

}  // namespace

Result<Json> completions_request_to_chat(const Json& body) {
  const auto prompt = body.find("prompt");
  if (prompt == body.end()) return invalid("prompt", "'prompt' is a required property");
  std::string text;
  if (prompt->is_string()) {
    text = prompt->get<std::string>();
  } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    text = (*prompt)[0].get<std::string>();
  } else {
    return invalid("prompt",
                   "'prompt' must be a string (or an array of one string): several prompts and token-id prompts "
                   "cannot be served through a chat model");
  }
  if (const auto echo = body.find("echo"); echo != body.end() && *echo != false) {
    return invalid("echo", "'echo' is not supported through a chat model");
  }
  if (body.contains("suffix")) return invalid("suffix", "'suffix' (insertion) is not supported through a chat model");
  if (body.contains("logprobs")) return invalid("logprobs", "'logprobs' is not supported on /v1/completions here");
  for (const char* count : {"best_of", "n"}) {
    const auto it = body.find(count);
    if (it != body.end() && !(it->is_number_integer() && it->get<int64_t>() == 1)) {
      return invalid(count, std::string("'") + count + "' must be 1 through a chat model");
    }
  }
  Json chat = body;
  for (const char* key : {"prompt", "echo", "best_of", "n"}) chat.erase(key);
  chat["messages"] = Json::array({{{"role", "user"}, {"content", std::move(text)}}});
  if (!chat.contains("max_tokens")) chat["max_tokens"] = kLegacyDefaultMaxTokens;
  if (auto ok = validate_chat_request(chat); !ok) return std::unexpected(ok.error());
  return chat;
}

Json chat_to_text_completion(const Json& completion) {
  Json choices = Json::array();
  const auto it = completion.find("choices");
  if (it != completion.end() && it->is_array()) {
    for (const Json& choice : *it) {
      if (!choice.is_object()) continue;
      const Json& message = choice.contains("message") ? choice["message"] : Json::object();
      const Json text = message.is_object() && message.contains("content") && message["content"].is_string()
                            ? message["content"]
                            : Json("");
      choices.push_back(text_choice(text, choice.value("finish_reason", Json()), choice.value("index", Json(0))));
    }
  }
  return with_envelope(completion, std::move(choices));
}

Json chat_chunk_to_text_completion(const Json& chunk) {
  Json choices = Json::array();
  const auto it = chunk.find("choices");
  if (it != chunk.end() && it->is_array()) {
    for (const Json& choice : *it) {
      if (!choice.is_object()) continue;
      const Json& delta = choice.contains("delta") ? choice["delta"] : Json::object();
      const Json text = delta.is_object() && delta.contains("content") && delta["content"].is_string() ? delta["content"]
                                                                                                      : Json("");
      choices.push_back(text_choice(text, choice.value("finish_reason", Json()), choice.value("index", Json(0))));
    }
  }
  return with_envelope(chunk, std::move(choices));
}

}  // namespace isartor::api
