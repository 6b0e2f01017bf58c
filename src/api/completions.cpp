#include "api/completions.h"

#include "api/json_access.h"
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

// The member `key` of `chat`, or `fallback` when it is absent or null (or `chat` no object).
Json member_or(const Json& chat, const char* key, Json fallback) {
  const Json* value = detail::member(chat, key);
  return value ? *value : fallback;
}

Json with_envelope(const Json& chat, Json choices) {
  Json out{{"id", completion_id(member_or(chat, "id", Json()))},
           {"object", "text_completion"},
           {"created", member_or(chat, "created", Json(0))},
           {"model", member_or(chat, "model", Json(""))},
           {"choices", std::move(choices)}};
  for (const char* key : {"usage", "system_fingerprint"}) {
    if (const Json* value = detail::member(chat, key)) out[key] = *value;
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
  if (const Json* echo = detail::member(body, "echo"); echo && !echo->is_boolean()) {
    return invalid("echo", "'echo' must be a boolean");
  } else if (echo && echo->get<bool>()) {
    return invalid("echo", "'echo' is not supported through a chat model");
  }
  // null means absent, as on every route.
  if (detail::member(body, "suffix")) return invalid("suffix", "'suffix' (insertion) is not supported through a chat model");
  if (detail::member(body, "logprobs")) return invalid("logprobs", "'logprobs' is not supported on /v1/completions here");
  for (const char* count : {"best_of", "n"}) {
    const Json* value = detail::member(body, count);
    if (value && !(value->is_number_integer() && value->get<int64_t>() == 1)) {
      return invalid(count, std::string("'") + count + "' must be 1 through a chat model");
    }
  }
  Json chat = body;
  for (const char* key : {"prompt", "echo", "best_of", "n", "suffix", "logprobs"}) chat.erase(key);
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
      choices.push_back(text_choice(text, member_or(choice, "finish_reason", Json()), member_or(choice, "index", Json(0))));
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
      choices.push_back(text_choice(text, member_or(choice, "finish_reason", Json()), member_or(choice, "index", Json(0))));
    }
  }
  return with_envelope(chunk, std::move(choices));
}

}  // namespace isartor::api
