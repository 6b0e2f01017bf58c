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

// The text_completion choices of a chat completion ("message") or chunk ("delta"): each
// choice's string content as "text", "" when it has none (a tool call, a role-only delta).
Json text_choices(const Json& chat, const char* part) {
  Json choices = Json::array();
  for (const Json& choice : detail::array_member(chat, "choices")) {
    if (!choice.is_object()) continue;
    const Json* content = detail::member(detail::object_member(choice, part), "content");
    choices.push_back(text_choice(content && content->is_string() ? *content : Json(""),
                                  member_or(choice, "finish_reason", Json()), member_or(choice, "index", Json(0))));
  }
  return choices;
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
  RETURN_IF_ERROR(validate_chat_request(chat));
  return chat;
}

Json chat_to_text_completion(const Json& completion) {
  return with_envelope(completion, text_choices(completion, "message"));
}

Json chat_chunk_to_text_completion(const Json& chunk) { return with_envelope(chunk, text_choices(chunk, "delta")); }

}  // namespace isartor::api
