#include "api/native.h"

#include "api/json_access.h"
#include "api/openai.h"

namespace isartor::api {

Result<Json> native_request_to_chat(const Json& body) {
  const Json* prompt = detail::member(body, "prompt");
  if (!prompt) return fail(ErrorCode::kInvalidRequest, "'prompt' is a required property", "prompt");
  if (!prompt->is_string()) return fail(ErrorCode::kInvalidRequest, "'prompt' must be a string", "prompt");
  const Json* model = detail::member(body, "model");
  if (model && !model->is_string()) return fail(ErrorCode::kInvalidRequest, "'model' must be a string", "model");
  Json out{{"messages", Json::array({{{"role", "user"}, {"content", *prompt}}})}};
  if (model) out["model"] = *model;
  return out;
}

Json chat_to_native(const Json& completion, std::string_view layer, const std::string& fallback_model) {
  return {{"layer", layer},
          {"message", completion_text(completion)},
          {"model", detail::string_member(completion, "model", fallback_model)}};
}

}  // namespace isartor::api
