#include "api/anthropic.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>

#include "api/json_access.h"
#include "api/openai.h"

namespace isartor::api {
namespace {

using detail::array_member;
using detail::int_member;
using detail::member;
using detail::object_member;
using detail::string_member;

constexpr std::string_view kOpenAIIdPrefix = "chatcmpl-";
constexpr std::string_view kAnthropicIdPrefix = "msg_";

std::string random_suffix() { return new_completion_id().substr(kOpenAIIdPrefix.size()); }

// Ids keep their random part across formats, so one answer can be traced in the logs of both.
std::string swap_id_prefix(const Json* id, std::string_view from, std::string_view to) {
  std::string value = id && id->is_string() ? id->get<std::string>() : std::string();
  if (value.empty()) return std::string(to) + random_suffix();
  if (value.starts_with(from)) value.erase(0, from.size());
  return std::string(to) + value;
}

// Anthropic's input_tokens excludes prompt tokens served from its cache; OpenAI's prompt_tokens
// includes them and reports the cached share separately.
Json openai_usage(const Json& usage) {
  const int64_t cached = int_member(usage, "cache_read_input_tokens");
  const int64_t prompt =
      int_member(usage, "input_tokens") + int_member(usage, "cache_creation_input_tokens") + cached;
  const int64_t completion = int_member(usage, "output_tokens");
  Json out = {{"prompt_tokens", prompt},
              {"completion_tokens", completion},
              {"total_tokens", prompt + completion}};
  if (cached > 0) out["prompt_tokens_details"] = {{"cached_tokens", cached}};
  return out;
}

Json anthropic_usage(const Json& usage) {
  const int64_t cached = int_member(object_member(usage, "prompt_tokens_details"), "cached_tokens");
  Json out = {{"input_tokens", std::max<int64_t>(0, int_member(usage, "prompt_tokens") - cached)},
              {"output_tokens", int_member(usage, "completion_tokens")}};
  if (cached > 0) out["cache_read_input_tokens"] = cached;
  return out;
}

Json text_block(std::string text) { return Json{{"type", "text"}, {"text", std::move(text)}}; }

Json openai_tool_call(const std::string& id, const std::string& name, const Json& input) {
  return Json{{"id", id},
              {"type", "function"},
              {"function", {{"name", name}, {"arguments", dump_json(input)}}}};
}

// An OpenAI assistant message; like OpenAI, content is null only for a pure tool-call turn.
Json openai_assistant_message(const std::string& text, bool has_text, Json tool_calls) {
  Json message = {{"role", "assistant"},
                  {"content", has_text || tool_calls.empty() ? Json(text) : Json(nullptr)}};
  if (!tool_calls.empty()) message["tool_calls"] = std::move(tool_calls);
  return message;
}

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

// Content blocks of an OpenAI assistant message: its text (if any), then its tool calls.
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

// ---- Anthropic request -> OpenAI request. Errors read like Anthropic's own ("field: problem").

std::unexpected<Error> invalid(const std::string& param, std::string_view problem) {
  return fail(ErrorCode::kInvalidRequest, fmt::format("{}: {}", param, problem), param);
}

std::unexpected<Error> unsupported_block(const std::string& at, const std::string& type) {
  return fail(ErrorCode::kUnprocessable,
              fmt::format("{}.type: content block type '{}' cannot be translated here", at, type),
              at + ".type");
}

Result<std::string> string_field(const Json& obj, std::string_view key, const std::string& at) {
  const std::string param = fmt::format("{}.{}", at, key);
  const Json* value = member(obj, key);
  if (!value) return invalid(param, "Field required");
  if (!value->is_string()) return invalid(param, "Input should be a valid string");
  return value->get<std::string>();
}

Result<std::string> block_type(const Json& block, const std::string& at) {
  if (!block.is_object()) return invalid(at, "Input should be a valid dictionary");
  return string_field(block, "type", at);
}

Result<Json> image_part(const Json& block, const std::string& at) {
  const Json* source = member(block, "source");
  if (!source) return invalid(at + ".source", "Field required");
  if (!source->is_object()) return invalid(at + ".source", "Input should be a valid dictionary");
  auto type = string_field(*source, "type", at + ".source");
  if (!type) return std::unexpected(type.error());
  std::string url;
  if (*type == "base64") {
    auto media_type = string_field(*source, "media_type", at + ".source");
    if (!media_type) return std::unexpected(media_type.error());
    auto data = string_field(*source, "data", at + ".source");
    if (!data) return std::unexpected(data.error());
    url = fmt::format("data:{};base64,{}", *media_type, *data);
  } else if (*type == "url") {
    auto source_url = string_field(*source, "url", at + ".source");
    if (!source_url) return std::unexpected(source_url.error());
    url = std::move(*source_url);
  } else {
    return invalid(at + ".source.type", "Input should be 'base64' or 'url'");
  }
  return Json{{"type", "image_url"}, {"image_url", {{"url", std::move(url)}}}};
}

// A tool_result block as an OpenAI "tool" message. A tool message carries text only, so images
// inside the result move to `parts`, the user message that follows the tool messages.
Result<Json> tool_message(const Json& block, const std::string& at, Json& parts) {
  auto id = string_field(block, "tool_use_id", at);
  if (!id) return std::unexpected(id.error());
  std::string text;
  const Json* content = member(block, "content");
  if (content && content->is_string()) {
    text = content->get<std::string>();
  } else if (content && content->is_array()) {
    for (size_t i = 0; i < content->size(); ++i) {
      const std::string inner_at = fmt::format("{}.content.{}", at, i);
      const Json& inner = (*content)[i];
      auto type = block_type(inner, inner_at);
      if (!type) return std::unexpected(type.error());
      if (*type == "text") {
        auto piece = string_field(inner, "text", inner_at);
        if (!piece) return std::unexpected(piece.error());
        if (!text.empty()) text += '\n';
        text += *piece;
      } else if (*type == "image") {
        auto image = image_part(inner, inner_at);
        if (!image) return std::unexpected(image.error());
        parts.push_back(std::move(*image));
      } else {
        return unsupported_block(inner_at, *type);
      }
    }
  } else if (content) {
    return invalid(at + ".content", "Input should be a valid string or list of content blocks");
  }
  return Json{{"role", "tool"}, {"tool_call_id", std::move(*id)}, {"content", std::move(text)}};
}

Result<void> add_user_message(const Json& content, const std::string& at, Json& messages) {
  if (content.is_string()) {
    messages.push_back({{"role", "user"}, {"content", content}});
    return {};
  }
  Json parts = Json::array();
  Json tool_messages = Json::array();
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string block_at = fmt::format("{}.{}", at, i);
    const Json& block = content[i];
    auto type = block_type(block, block_at);
    if (!type) return std::unexpected(type.error());
    if (*type == "text") {
      auto text = string_field(block, "text", block_at);
      if (!text) return std::unexpected(text.error());
      parts.push_back(text_block(std::move(*text)));
    } else if (*type == "image") {
      auto image = image_part(block, block_at);
      if (!image) return std::unexpected(image.error());
      parts.push_back(std::move(*image));
    } else if (*type == "tool_result") {
      auto tool = tool_message(block, block_at, parts);
      if (!tool) return std::unexpected(tool.error());
      tool_messages.push_back(std::move(*tool));
    } else {
      return unsupported_block(block_at, *type);
    }
  }
  // OpenAI wants the tool answers directly after the assistant turn that made the calls.
  for (Json& tool : tool_messages) messages.push_back(std::move(tool));
  if (!parts.empty() || tool_messages.empty()) {
    messages.push_back({{"role", "user"}, {"content", std::move(parts)}});
  }
  return {};
}

Result<void> add_assistant_message(const Json& content, const std::string& at, Json& messages) {
  if (content.is_string()) {
    messages.push_back({{"role", "assistant"}, {"content", content}});
    return {};
  }
  std::string text;
  bool has_text = false;
  Json calls = Json::array();
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string block_at = fmt::format("{}.{}", at, i);
    const Json& block = content[i];
    auto type = block_type(block, block_at);
    if (!type) return std::unexpected(type.error());
    if (*type == "text") {
      auto piece = string_field(block, "text", block_at);
      if (!piece) return std::unexpected(piece.error());
      text += *piece;
      has_text = true;
    } else if (*type == "tool_use") {
      auto id = string_field(block, "id", block_at);
      if (!id) return std::unexpected(id.error());
      auto name = string_field(block, "name", block_at);
      if (!name) return std::unexpected(name.error());
      const Json* input = member(block, "input");
      if (input && !input->is_object())
        return invalid(block_at + ".input", "Input should be a valid dictionary");
      calls.push_back(openai_tool_call(*id, *name, input ? *input : Json::object()));
    } else if (*type == "thinking" || *type == "redacted_thinking") {
      continue;  // Anthropic-only reasoning traces; no OpenAI model can take them back
    } else {
      return unsupported_block(block_at, *type);
    }
  }
  messages.push_back(openai_assistant_message(text, has_text, std::move(calls)));
  return {};
}

Result<Json> openai_messages(const Json& body) {
  const Json* messages = member(body, "messages");
  if (!messages) return invalid("messages", "Field required");
  if (!messages->is_array()) return invalid("messages", "Input should be a valid list");
  if (messages->empty()) return invalid("messages", "at least one message is required");
  Json out = Json::array();
  if (const Json* system = member(body, "system")) {
    std::string text;
    if (system->is_string()) {
      text = system->get<std::string>();
    } else if (system->is_array()) {
      for (size_t i = 0; i < system->size(); ++i) {
        const std::string at = fmt::format("system.{}", i);
        auto type = block_type((*system)[i], at);
        if (!type) return std::unexpected(type.error());
        if (*type != "text") return invalid(at + ".type", "Input should be 'text'");
        auto piece = string_field((*system)[i], "text", at);
        if (!piece) return std::unexpected(piece.error());
        if (!text.empty() && !piece->empty()) text += "\n\n";
        text += *piece;
      }
    } else {
      return invalid("system", "Input should be a valid string or list of text blocks");
    }
    if (!text.empty()) out.push_back({{"role", "system"}, {"content", std::move(text)}});
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    const std::string at = fmt::format("messages.{}", i);
    const Json& message = (*messages)[i];
    if (!message.is_object()) return invalid(at, "Input should be a valid dictionary");
    const std::string role = string_member(message, "role");
    if (role != "user" && role != "assistant")
      return invalid(at + ".role", "Input should be 'user' or 'assistant'");
    const Json* content = member(message, "content");
    if (!content) return invalid(at + ".content", "Field required");
    if (!content->is_string() && !content->is_array()) {
      return invalid(at + ".content", "Input should be a valid string or list of content blocks");
    }
    auto added = role == "user" ? add_user_message(*content, at + ".content", out)
                                : add_assistant_message(*content, at + ".content", out);
    if (!added) return std::unexpected(added.error());
  }
  return out;
}

Result<Json> openai_tools(const Json& tools) {
  Json out = Json::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string at = fmt::format("tools.{}", i);
    const Json& tool = tools[i];
    if (!tool.is_object()) return invalid(at, "Input should be a valid dictionary");
    // Server tools (web_search_..., bash_..., ...) execute inside Anthropic and have no function
    // equivalent; only custom tools (no type, or "custom") translate.
    if (string_member(tool, "type", "custom") != "custom") continue;
    auto name = string_field(tool, "name", at);
    if (!name) return std::unexpected(name.error());
    const Json* schema = member(tool, "input_schema");
    if (!schema) return invalid(at + ".input_schema", "Field required");
    if (!schema->is_object())
      return invalid(at + ".input_schema", "Input should be a valid dictionary");
    Json function = {{"name", std::move(*name)}, {"parameters", *schema}};
    if (const Json* description = member(tool, "description");
        description && description->is_string()) {
      function["description"] = *description;
    }
    out.push_back({{"type", "function"}, {"function", std::move(function)}});
  }
  return out;
}

// Adds tool_choice (and parallel_tool_calls) to `out`.
Result<void> apply_tool_choice(const Json& choice, Json& out) {
  auto type = string_field(choice, "type", "tool_choice");
  if (!type) return std::unexpected(type.error());
  if (*type == "auto" || *type == "none") {
    out["tool_choice"] = *type;
  } else if (*type == "any") {
    out["tool_choice"] = "required";
  } else if (*type == "tool") {
    auto name = string_field(choice, "name", "tool_choice");
    if (!name) return std::unexpected(name.error());
    out["tool_choice"] = {{"type", "function"}, {"function", {{"name", std::move(*name)}}}};
  } else {
    return invalid("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'");
  }
  if (const Json* serial = member(choice, "disable_parallel_tool_use");
      serial && serial->is_boolean()) {
    if (serial->get<bool>()) out["parallel_tool_calls"] = false;
  }
  return {};
}

struct TypedField {
  const char* name;
  bool (Json::*has_type)() const noexcept;
  const char* expected;
};

constexpr std::array<TypedField, 9> kOptionalFields{{
    {"model", &Json::is_string, "Input should be a valid string"},
    {"temperature", &Json::is_number, "Input should be a valid number"},
    {"top_p", &Json::is_number, "Input should be a valid number"},
    {"top_k", &Json::is_number_integer, "Input should be a valid integer"},
    {"stream", &Json::is_boolean, "Input should be a valid boolean"},
    {"stop_sequences", &Json::is_array, "Input should be a valid list"},
    {"metadata", &Json::is_object, "Input should be a valid dictionary"},
    {"tools", &Json::is_array, "Input should be a valid list"},
    {"tool_choice", &Json::is_object, "Input should be a valid dictionary"},
}};

// ---- OpenAI request -> Anthropic request.

// The string form stays as is; merging needs blocks.
Json as_blocks(const Json& content) {
  if (content.is_array()) return content;
  Json blocks = Json::array();
  if (content.is_string() && !content.get_ref<const std::string&>().empty()) {
    blocks.push_back(text_block(content.get<std::string>()));
  }
  return blocks;
}

// Appends a message, merging it into the previous one when the role repeats, because Anthropic
// requires user and assistant turns to alternate. tool_result blocks are kept first in a merged
// user turn, as Anthropic requires.
void append_message(Json& messages, const std::string& role, Json content) {
  if (messages.empty() || messages.back()["role"] != role) {
    messages.push_back({{"role", role}, {"content", std::move(content)}});
    return;
  }
  Json& previous = messages.back()["content"];
  Json results = Json::array();
  Json others = Json::array();
  for (const Json* blocks : {&previous, &content}) {
    for (Json& block : as_blocks(*blocks)) {
      (string_member(block, "type") == "tool_result" ? results : others)
          .push_back(std::move(block));
    }
  }
  for (Json& block : others) results.push_back(std::move(block));
  previous = std::move(results);
}

// OpenAI image_url -> Anthropic image block; data: URLs become base64 sources. Null when the
// URL is a data: URL that is not base64 (Anthropic cannot take it).
Json image_block(const std::string& url) {
  constexpr std::string_view kData = "data:";
  constexpr std::string_view kBase64 = ";base64,";
  if (!url.starts_with(kData)) {
    return Json{{"type", "image"}, {"source", {{"type", "url"}, {"url", url}}}};
  }
  const size_t marker = url.find(kBase64);
  if (marker == std::string::npos) return nullptr;
  return Json{{"type", "image"},
              {"source",
               {{"type", "base64"},
                {"media_type", url.substr(kData.size(), marker - kData.size())},
                {"data", url.substr(marker + kBase64.size())}}}};
}

// OpenAI user content -> Anthropic content; audio and file parts have no Anthropic equivalent
// and empty text blocks are rejected by Anthropic, so both are dropped.
Json user_content(const Json& content) {
  if (content.is_string()) return content;
  Json blocks = Json::array();
  if (!content.is_array()) return blocks;
  for (const Json& part : content) {
    const std::string type = string_member(part, "type");
    if (type == "text") {
      if (std::string text = string_member(part, "text"); !text.empty())
        blocks.push_back(text_block(std::move(text)));
    } else if (type == "image_url") {
      Json block = image_block(string_member(object_member(part, "image_url"), "url"));
      if (!block.is_null()) blocks.push_back(std::move(block));
    }
  }
  return blocks;
}

bool is_empty_content(const Json& content) {
  return content.empty() || (content.is_string() && content.get_ref<const std::string&>().empty());
}

Json anthropic_tools(const Json& tools) {
  Json out = Json::array();
  for (const Json& tool : tools) {
    if (string_member(tool, "type") != "function") continue;
    const Json& function = object_member(tool, "function");
    const Json* parameters = member(function, "parameters");
    Json converted = {
        {"name", string_member(function, "name")},
        {"input_schema", parameters && parameters->is_object()
                             ? *parameters
                             : Json{{"type", "object"}, {"properties", Json::object()}}}};
    if (const Json* description = member(function, "description");
        description && description->is_string()) {
      converted["description"] = *description;
    }
    out.push_back(std::move(converted));
  }
  return out;
}

// OpenAI tool_choice (+ parallel_tool_calls) -> Anthropic tool_choice; null when absent.
Json anthropic_tool_choice(const Json& body) {
  Json choice;
  const Json* requested = member(body, "tool_choice");
  if (requested && requested->is_string()) {
    const std::string& mode = requested->get_ref<const std::string&>();
    choice = {{"type", mode == "required" ? "any" : mode == "none" ? "none" : "auto"}};
  } else if (requested && requested->is_object()) {
    choice = {{"type", "tool"},
              {"name", string_member(object_member(*requested, "function"), "name")}};
  }
  const Json* parallel = member(body, "parallel_tool_calls");
  if (parallel && parallel->is_boolean() && !parallel->get<bool>()) {
    if (choice.is_null()) choice = {{"type", "auto"}};
    if (choice["type"] != "none") choice["disable_parallel_tool_use"] = true;
  }
  return choice;
}

// ---- Streams.

SseEvent anthropic_event(const char* type, Json data = Json::object()) {
  data["type"] = type;
  return SseEvent{type, dump_json(data)};
}

}  // namespace

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

Result<Json> anthropic_request_to_openai(const Json& body) {
  if (!body.is_object()) return invalid("body", "Input should be a valid dictionary");
  const Json* max_tokens = member(body, "max_tokens");
  if (!max_tokens) return invalid("max_tokens", "Field required");
  if (!max_tokens->is_number_integer())
    return invalid("max_tokens", "Input should be a valid integer");
  if (max_tokens->get<int64_t>() < 1)
    return invalid("max_tokens", "Input should be greater than or equal to 1");
  for (const TypedField& field : kOptionalFields) {
    const Json* value = member(body, field.name);
    if (value && !((*value).*field.has_type)()) return invalid(field.name, field.expected);
  }

  auto messages = openai_messages(body);
  if (!messages) return std::unexpected(messages.error());
  Json out = {{"messages", std::move(*messages)}, {"max_tokens", *max_tokens}};
  for (const char* key : {"model", "temperature", "top_p"}) {
    if (const Json* value = member(body, key)) out[key] = *value;
  }
  if (const Json* stop = member(body, "stop_sequences")) {
    for (size_t i = 0; i < stop->size(); ++i) {
      if (!(*stop)[i].is_string())
        return invalid(fmt::format("stop_sequences.{}", i), "Input should be a valid string");
    }
    if (!stop->empty()) out["stop"] = *stop;
  }
  if (const Json* stream = member(body, "stream")) {
    out["stream"] = *stream;
    // The Anthropic stream ends with token usage, which OpenAI only sends when asked.
    if (stream->get<bool>()) out["stream_options"] = {{"include_usage", true}};
  }
  if (std::string user = string_member(object_member(body, "metadata"), "user_id"); !user.empty()) {
    out["user"] = std::move(user);
  }
  if (const Json* tools = member(body, "tools")) {
    auto converted = openai_tools(*tools);
    if (!converted) return std::unexpected(converted.error());
    Json choice = Json::object();
    if (const Json* requested = member(body, "tool_choice")) {
      if (auto ok = apply_tool_choice(*requested, choice); !ok) return std::unexpected(ok.error());
    }
    // OpenAI rejects tool_choice and parallel_tool_calls without tools.
    if (!converted->empty()) {
      out["tools"] = std::move(*converted);
      out.update(choice);
    }
  }
  return out;
}

bool anthropic_needs_the_provider(const Json& body) {
  const Json* thinking = member(body, "thinking");
  if (thinking && thinking->is_object() && string_member(*thinking, "type", "disabled") != "disabled") return true;
  if (member(body, "mcp_servers") || member(body, "container")) return true;
  for (const Json& tool : array_member(body, "tools")) {
    if (string_member(tool, "type", "custom") != "custom") return true;  // a server tool
  }
  return false;
}

Result<void> check_anthropic_can_express(const Json& body) {
  auto refuse = [](const char* field, std::string_view why) -> Result<void> {
    return fail(ErrorCode::kUnprocessable, fmt::format("'{}': {} (the provider is Anthropic)", field, why), field);
  };
  if (const Json* n = member(body, "n"); n && !(n->is_number_integer() && n->get<int64_t>() == 1)) {
    return refuse("n", "Anthropic answers with one choice only");
  }
  if (const Json* logprobs = member(body, "logprobs"); logprobs && *logprobs == true) {
    return refuse("logprobs", "Anthropic returns no token log probabilities");
  }
  if (member(body, "top_logprobs")) return refuse("top_logprobs", "Anthropic returns no token log probabilities");
  if (const Json* format = member(body, "response_format")) {
    const std::string type = string_member(*format, "type");
    if (type != "text" && type != "json_object" && type != "json_schema") {
      return refuse("response_format", "the type must be text, json_object or json_schema");
    }
    if (type != "text" && !array_member(body, "tools").empty()) {
      return refuse("response_format", "JSON mode is emulated with a forced tool, which cannot go with other tools");
    }
    if (type == "json_schema") {
      const Json* schema = member(object_member(*format, "json_schema"), "schema");
      if (!schema || !schema->is_object() || string_member(*schema, "type", "object") != "object") {
        return fail(ErrorCode::kUnprocessable,
                    "'response_format.json_schema.schema': the root must be an object schema, the only kind Anthropic "
                    "tool input takes (the provider is Anthropic)",
                    "response_format.json_schema.schema");
      }
    }
  }
  if (const Json* bias = member(body, "logit_bias"); bias && !(bias->is_object() && bias->empty())) {
    return refuse("logit_bias", "Anthropic takes no logit bias");
  }
  if (member(body, "audio")) return refuse("audio", "Anthropic answers in text only");
  if (const Json* modalities = member(body, "modalities"); modalities && modalities->is_array()) {
    for (const Json& m : *modalities) {
      if (m != "text") return refuse("modalities", "Anthropic answers in text only");
    }
  }
  return {};
}

namespace {

constexpr std::string_view kJsonAnswerTool = "json_answer";

bool is_tool_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
  });
}

// The forced tool that carries a JSON answer (json_answer_tool() says when).
Json json_answer_tool_definition(const Json& format, const std::string& name) {
  const Json& spec = object_member(format, "json_schema");
  Json schema = string_member(format, "type") == "json_schema" ? object_member(spec, "schema") : Json::object();
  if (!schema.contains("type")) schema["type"] = "object";
  Json tool{{"name", name},
            {"description", string_member(spec, "description", "Give the answer as this tool's input.")},
            {"input_schema", std::move(schema)}};
  return tool;
}

}  // namespace

std::string json_answer_tool(const Json& body) {
  const Json& format = object_member(body, "response_format");
  const std::string type = string_member(format, "type");
  if (type == "json_object") return std::string(kJsonAnswerTool);
  if (type != "json_schema") return {};
  std::string name = string_member(object_member(format, "json_schema"), "name");
  return is_tool_name(name) ? name : std::string(kJsonAnswerTool);
}

Json openai_request_to_anthropic(const Json& body, int default_max_tokens) {
  Json out = Json::object();
  if (const Json* model = member(body, "model"); model && model->is_string()) out["model"] = *model;
  out["max_tokens"] =
      int_member(body, "max_completion_tokens", int_member(body, "max_tokens", default_max_tokens));

  std::string system;
  Json messages = Json::array();
  for (const Json& message : array_member(body, "messages")) {
    const std::string role = string_member(message, "role");
    const Json* content = member(message, "content");
    const Json& body_content = content ? *content : detail::empty_object();
    if (role == "system" || role == "developer") {
      std::string text = detail::content_text(body_content, "\n");
      if (text.empty()) continue;
      if (!system.empty()) system += "\n\n";
      system += text;
    } else if (role == "user") {
      Json converted = user_content(body_content);
      if (!is_empty_content(converted)) append_message(messages, "user", std::move(converted));
    } else if (role == "assistant") {
      Json blocks = assistant_blocks(message);
      // A plain text turn keeps the string form; Anthropic rejects empty turns, so they go.
      if (array_member(message, "tool_calls").empty() && content && content->is_string()) {
        if (!content->get_ref<const std::string&>().empty())
          append_message(messages, "assistant", *content);
      } else if (!blocks.empty()) {
        append_message(messages, "assistant", std::move(blocks));
      }
    } else if (role == "tool") {
      Json result = {{"type", "tool_result"},
                     {"tool_use_id", string_member(message, "tool_call_id")}};
      if (std::string text = detail::content_text(body_content, "\n"); !text.empty())
        result["content"] = std::move(text);
      append_message(messages, "user", Json::array({std::move(result)}));
    }
  }
  if (!system.empty()) out["system"] = std::move(system);
  out["messages"] = std::move(messages);

  // Anthropic accepts temperatures in [0, 1], OpenAI in [0, 2]; clamping beats an upstream 400.
  if (const Json* temperature = member(body, "temperature");
      temperature && temperature->is_number()) {
    out["temperature"] = std::clamp(temperature->get<double>(), 0.0, 1.0);
  }
  if (const Json* top_p = member(body, "top_p"); top_p && top_p->is_number()) out["top_p"] = *top_p;
  if (const Json* stop = member(body, "stop")) {
    Json sequences = Json::array();
    for (const Json& sequence : stop->is_array() ? *stop : Json::array({*stop})) {
      if (sequence.is_string() && !sequence.get_ref<const std::string&>().empty())
        sequences.push_back(sequence);
    }
    if (!sequences.empty()) out["stop_sequences"] = std::move(sequences);
  }
  if (const Json* stream = member(body, "stream"); stream && stream->is_boolean())
    out["stream"] = *stream;
  if (std::string user = string_member(body, "user"); !user.empty())
    out["metadata"] = {{"user_id", user}};
  if (Json tools = anthropic_tools(array_member(body, "tools")); !tools.empty()) {
    out["tools"] = std::move(tools);
    if (Json choice = anthropic_tool_choice(body); !choice.is_null())
      out["tool_choice"] = std::move(choice);
  }
  if (const std::string json_tool = json_answer_tool(body); !json_tool.empty()) {
    out["tools"] = Json::array({json_answer_tool_definition(object_member(body, "response_format"), json_tool)});
    out["tool_choice"] = {{"type", "tool"}, {"name", json_tool}};
  }
  return out;
}

Json anthropic_response_to_openai(const Json& message, std::string_view json_tool) {
  std::string text;
  bool has_text = false;
  bool json_answer = false;
  Json calls = Json::array();
  for (const Json& block : array_member(message, "content")) {
    const std::string type = string_member(block, "type");
    if (type == "text") {
      // Beside a JSON answer, text is the model's preamble, not part of the JSON.
      if (json_answer) continue;
      text += string_member(block, "text");
      has_text = true;
    } else if (type == "tool_use" && !json_tool.empty() && string_member(block, "name") == json_tool) {
      text = dump_json(object_member(block, "input"));
      has_text = json_answer = true;
    } else if (type == "tool_use") {
      calls.push_back(openai_tool_call(string_member(block, "id"), string_member(block, "name"),
                                       object_member(block, "input")));
    }
  }
  return Json{
      {"id", swap_id_prefix(member(message, "id"), kAnthropicIdPrefix, kOpenAIIdPrefix)},
      {"object", "chat.completion"},
      {"created", static_cast<int64_t>(std::time(nullptr))},
      {"model", string_member(message, "model")},
      {"choices",
       Json::array(
           {Json{{"index", 0},
                 {"message", openai_assistant_message(text, has_text, std::move(calls))},
                 {"logprobs", nullptr},
                 {"finish_reason", json_answer && calls.empty()
                                       ? std::string("stop")
                                       : openai_finish_reason(string_member(message, "stop_reason"))}}})},
      {"usage", openai_usage(object_member(message, "usage"))}};
}

Json openai_response_to_anthropic(const Json& completion) {
  const Json& choices = array_member(completion, "choices");
  const Json& choice = choices.empty() ? detail::empty_object() : choices[0];
  Json content = assistant_blocks(object_member(choice, "message"));
  if (content.empty()) content.push_back(text_block(""));
  return Json{{"id", swap_id_prefix(member(completion, "id"), kOpenAIIdPrefix, kAnthropicIdPrefix)},
              {"type", "message"},
              {"role", "assistant"},
              {"model", string_member(completion, "model")},
              {"content", std::move(content)},
              {"stop_reason", anthropic_stop_reason(string_member(choice, "finish_reason"))},
              {"stop_sequence", nullptr},
              {"usage", anthropic_usage(object_member(completion, "usage"))}};
}

std::vector<SseEvent> AnthropicStreamEncoder::start_if_needed() {
  std::vector<SseEvent> out;
  if (started_) return out;
  started_ = true;
  if (id_.empty()) id_ = std::string(kAnthropicIdPrefix) + random_suffix();
  Json usage = {{"input_tokens", int_member(usage_, "input_tokens")}, {"output_tokens", 0}};
  out.push_back(anthropic_event("message_start", {{"message",
                                                   {{"id", id_},
                                                    {"type", "message"},
                                                    {"role", "assistant"},
                                                    {"model", model_},
                                                    {"content", Json::array()},
                                                    {"stop_reason", nullptr},
                                                    {"stop_sequence", nullptr},
                                                    {"usage", std::move(usage)}}}}));
  out.push_back(anthropic_event("ping"));
  return out;
}

void AnthropicStreamEncoder::close_block(std::vector<SseEvent>& out) {
  if (block_type_.empty()) return;
  out.push_back(anthropic_event("content_block_stop", {{"index", block_index_}}));
  block_type_.clear();
  open_tool_index_ = -1;
}

std::vector<SseEvent> AnthropicStreamEncoder::on_chunk(const Json& chunk) {
  if (finished_ || !chunk.is_object()) return {};
  if (id_.empty() && member(chunk, "id"))
    id_ = swap_id_prefix(member(chunk, "id"), kOpenAIIdPrefix, kAnthropicIdPrefix);
  if (model_.empty()) model_ = string_member(chunk, "model");
  if (const Json* usage = member(chunk, "usage"); usage && usage->is_object())
    usage_ = anthropic_usage(*usage);
  std::vector<SseEvent> out = start_if_needed();

  for (const Json& choice : array_member(chunk, "choices")) {
    if (int_member(choice, "index") != 0) continue;
    const Json& delta = object_member(choice, "delta");
    if (std::string text = string_member(delta, "content"); !text.empty()) {
      if (block_type_ != "text") {
        close_block(out);
        block_type_ = "text";
        out.push_back(anthropic_event(
            "content_block_start", {{"index", ++block_index_}, {"content_block", text_block("")}}));
      }
      out.push_back(anthropic_event(
          "content_block_delta", {{"index", block_index_},
                                  {"delta", {{"type", "text_delta"}, {"text", std::move(text)}}}}));
    }
    for (const Json& call : array_member(delta, "tool_calls")) {
      const int64_t index = int_member(call, "index");
      const Json& function = object_member(call, "function");
      if (block_type_ != "tool_use" || index != open_tool_index_) {
        close_block(out);
        block_type_ = "tool_use";
        open_tool_index_ = static_cast<int>(index);
        out.push_back(anthropic_event(
            "content_block_start", {{"index", ++block_index_},
                                    {"content_block",
                                     {{"type", "tool_use"},
                                      {"id", string_member(call, "id", "toolu_" + random_suffix())},
                                      {"name", string_member(function, "name")},
                                      {"input", Json::object()}}}}));
      }
      if (std::string arguments = string_member(function, "arguments"); !arguments.empty()) {
        out.push_back(anthropic_event(
            "content_block_delta",
            {{"index", block_index_},
             {"delta", {{"type", "input_json_delta"}, {"partial_json", std::move(arguments)}}}}));
      }
    }
    if (const Json* reason = member(choice, "finish_reason"); reason && reason->is_string()) {
      stop_reason_ = anthropic_stop_reason(reason->get_ref<const std::string&>());
    }
  }
  return out;
}

std::vector<SseEvent> AnthropicStreamEncoder::finish() {
  if (finished_) return {};
  finished_ = true;
  std::vector<SseEvent> out = start_if_needed();
  if (block_index_ < 0) {
    // Real Anthropic always sends a content block, and clients read content[0].
    block_type_ = "text";
    out.push_back(anthropic_event("content_block_start",
                                  {{"index", ++block_index_}, {"content_block", text_block("")}}));
  }
  close_block(out);
  Json usage = usage_;
  if (!usage.contains("output_tokens")) usage["output_tokens"] = 0;
  out.push_back(anthropic_event(
      "message_delta", {{"delta", {{"stop_reason", stop_reason_}, {"stop_sequence", nullptr}}},
                        {"usage", std::move(usage)}}));
  out.push_back(anthropic_event("message_stop"));
  return out;
}

Result<std::vector<Json>> AnthropicStreamDecoder::on_event(const SseEvent& event) {
  const Json data = parse_json(event.data);
  if (data.is_discarded() || !data.is_object()) {
    return fail(ErrorCode::kUpstream, "Anthropic stream sent an event that is not a JSON object");
  }
  const std::string type = string_member(data, "type", event.event);
  std::vector<Json> out;
  auto chunk = [this](const Json& delta, const std::string& finish_reason = {}) {
    return make_chunk(id_, model_, created_, delta, finish_reason);
  };
  auto tool_chunk = [&](Json call) {
    call["index"] = tool_index_;
    return chunk({{"tool_calls", Json::array({std::move(call)})}});
  };

  if (type == "message_start") {
    const Json& message = object_member(data, "message");
    id_ = swap_id_prefix(member(message, "id"), kAnthropicIdPrefix, kOpenAIIdPrefix);
    model_ = string_member(message, "model", model_);
    created_ = static_cast<int64_t>(std::time(nullptr));
    usage_ = object_member(message, "usage");
    out.push_back(chunk({{"role", "assistant"}, {"content", ""}}));
  } else if (type == "content_block_start") {
    const Json& block = object_member(data, "content_block");
    const std::string block_kind = string_member(block, "type");
    if (block_kind == "text") {
      if (std::string text = string_member(block, "text"); !text.empty())
        out.push_back(chunk({{"content", text}}));
    } else if (block_kind == "tool_use" && !json_tool_.empty() && string_member(block, "name") == json_tool_) {
      in_json_answer_ = true;
      if (const Json& input = object_member(block, "input"); !input.empty()) out.push_back(chunk({{"content", dump_json(input)}}));
    } else if (block_kind == "tool_use") {
      ++tool_index_;
      const Json& input = object_member(block, "input");
      out.push_back(tool_chunk({{"id", string_member(block, "id")},
                                {"type", "function"},
                                {"function",
                                 {{"name", string_member(block, "name")},
                                  {"arguments", input.empty() ? "" : dump_json(input)}}}}));
    }
  } else if (type == "content_block_delta") {
    const Json& delta = object_member(data, "delta");
    const std::string delta_kind = string_member(delta, "type");
    if (delta_kind == "text_delta") {
      if (std::string text = string_member(delta, "text"); !text.empty())
        out.push_back(chunk({{"content", text}}));
    } else if (delta_kind == "input_json_delta" && in_json_answer_) {
      if (std::string partial = string_member(delta, "partial_json"); !partial.empty()) {
        out.push_back(chunk({{"content", std::move(partial)}}));
      }
    } else if (delta_kind == "input_json_delta" && tool_index_ >= 0) {
      if (std::string partial = string_member(delta, "partial_json"); !partial.empty()) {
        out.push_back(tool_chunk({{"function", {{"arguments", partial}}}}));
      }
    }
  } else if (type == "message_delta") {
    for (const auto& [key, value] : object_member(data, "usage").items()) {
      if (!value.is_null()) usage_[key] = value;
    }
    const std::string stop_reason = string_member(object_member(data, "delta"), "stop_reason");
    // The forced JSON tool is how this answer ends, not a call for the client to make.
    Json last = chunk(Json::object(), in_json_answer_ && stop_reason == "tool_use" && tool_index_ < 0
                                          ? std::string("stop")
                                          : openai_finish_reason(stop_reason));
    last["usage"] = openai_usage(usage_);
    out.push_back(std::move(last));
  } else if (type == "message_stop") {
    done_ = true;
  } else if (type == "error") {
    const Json& error = object_member(data, "error");
    return fail(ErrorCode::kUpstream, fmt::format("Anthropic stream error ({}): {}",
                                                  string_member(error, "type", "error"),
                                                  string_member(error, "message")));
  }
  // ping and event types added to the protocol later carry nothing for an OpenAI client.
  return out;
}

}  // namespace isartor::api
