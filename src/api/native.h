#pragma once
// The gateway's own POST /api/chat: {"prompt", "model"?} in, {"layer", "message", "model"} out,
// served through the chat path; never streamed.
#include <string>
#include <string_view>

#include "api/wire_format.h"
#include "core/result.h"

namespace isartor::api {

// A /api/chat body -> a chat.completions body with the prompt as one user message and the model
// when given. kInvalidRequest naming the field for a missing/non-string prompt or non-string
// model. Pure.
Result<Json> native_request_to_chat(const Json& body);

// chat.completion -> {"layer": `layer`, "message": its text, "model": its model, or
// `fallback_model` when it names none}. Pure.
Json chat_to_native(const Json& completion, std::string_view layer, const std::string& fallback_model);

}  // namespace isartor::api
