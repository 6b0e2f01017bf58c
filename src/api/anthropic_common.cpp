#include "api/anthropic_common.h"

#include "api/json_access.h"
#include "api/openai.h"

namespace isartor::api {

std::string openai_finish_reason(std::string_view stop_reason) {
  if (stop_reason == "max_tokens") return "length";
  if (stop_reason == "tool_use") return "tool_calls";
  if (stop_reason == "refusal") return "content_filter";
  return "stop";
}

std::string anthropic_stop_reason(std::string_view finish_reason) {
  if (finish_reason == "length") return "max_tokens";
  if (finish_reason == "tool_calls" || finish_reason == "function_call") return "tool_use";
  return "end_turn";
}

namespace detail {

std::string random_suffix() { return new_completion_id().substr(kOpenAIIdPrefix.size()); }

std::string swap_id_prefix(const Json* id, std::string_view from, std::string_view to) {
  std::string value = id && id->is_string() ? id->get<std::string>() : std::string();
  if (value.empty()) return std::string(to) + random_suffix();
  if (value.starts_with(from)) value.erase(0, from.size());
  return std::string(to) + value;
}

Json text_block(std::string text) { return Json{{"type", "text"}, {"text", std::move(text)}}; }

Json openai_tool_call(const std::string& id, const std::string& name, const Json& input) {
  return Json{{"id", id},
              {"type", "function"},
              {"function", {{"name", name}, {"arguments", dump_json(input)}}}};
}

Json openai_assistant_message(const std::string& text, bool has_text, Json tool_calls) {
  Json message = {{"role", "assistant"},
                  {"content", has_text || tool_calls.empty() ? Json(text) : Json(nullptr)}};
  if (!tool_calls.empty()) message["tool_calls"] = std::move(tool_calls);
  return message;
}


namespace {

// OpenAI tool_call -> tool_use block; arguments that are not a JSON object become {} because
// Anthropic requires "input" to be an object.
Json tool_use_block(const Json& call) {
  const Json& function = object_member(call, "function");
  Json input = parse_json(string_member(function, "arguments"));
  if (input.is_discarded() || !input.is_object()) input = Json::object();
  return Json{{"type", "tool_use"},
              {"id", string_member(call, "id", "toolu_" + random_suffix())},
              {"name", string_member(function, "name")},
              {"input", std::move(input)}};
}


}  // namespace

Json assistant_blocks(const Json& message) {
  Json blocks = Json::array();
  const Json* content = member(message, "content");
  if (std::string text = content ? detail::content_text(*content) : ""; !text.empty()) {
    blocks.push_back(text_block(std::move(text)));
  }
  for (const Json& call : array_member(message, "tool_calls"))
    blocks.push_back(tool_use_block(call));
  return blocks;
}

}  // namespace detail
}  // namespace isartor::api
