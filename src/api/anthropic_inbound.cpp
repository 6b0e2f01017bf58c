#include "api/anthropic_inbound.h"

#include <fmt/format.h>

#include <array>

#include "api/field_rules.h"
#include "api/json_access.h"
#include "api/openai.h"

namespace isartor::api {
namespace {

// The helpers both directions share (anthropic_common.h) and the JSON accessors (json_access.h).
using namespace detail;

// OpenAI usage -> Anthropic's, whose input_tokens excludes the prompt tokens read from its cache.
Json anthropic_usage(const Json& usage) {
  const int64_t cached = int_member(object_member(usage, "prompt_tokens_details"), "cached_tokens");
  Json out = {{"input_tokens", std::max<int64_t>(0, int_member(usage, "prompt_tokens") - cached)},
              {"output_tokens", int_member(usage, "completion_tokens")}};
  if (cached > 0) out["cache_read_input_tokens"] = cached;
  return out;
}

// Errors read like Anthropic's own ("field: problem").

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
  ASSIGN_OR_RETURN(auto type, string_field(*source, "type", at + ".source"));
  std::string url;
  if (type == "base64") {
    ASSIGN_OR_RETURN(auto media_type, string_field(*source, "media_type", at + ".source"));
    ASSIGN_OR_RETURN(auto data, string_field(*source, "data", at + ".source"));
    url = fmt::format("data:{};base64,{}", media_type, data);
  } else if (type == "url") {
    ASSIGN_OR_RETURN(auto source_url, string_field(*source, "url", at + ".source"));
    url = std::move(source_url);
  } else {
    return invalid(at + ".source.type", "Input should be 'base64' or 'url'");
  }
  return Json{{"type", "image_url"}, {"image_url", {{"url", std::move(url)}}}};
}

// A tool_result block as an OpenAI "tool" message. A tool message carries text only, so images
// inside the result move to `parts`, the user message that follows the tool messages.
Result<Json> tool_message(const Json& block, const std::string& at, Json& parts) {
  ASSIGN_OR_RETURN(auto id, string_field(block, "tool_use_id", at));
  std::string text;
  const Json* content = member(block, "content");
  if (content && content->is_string()) {
    text = content->get<std::string>();
  } else if (content && content->is_array()) {
    for (size_t i = 0; i < content->size(); ++i) {
      const std::string inner_at = fmt::format("{}.content.{}", at, i);
      const Json& inner = (*content)[i];
      ASSIGN_OR_RETURN(auto type, block_type(inner, inner_at));
      if (type == "text") {
        ASSIGN_OR_RETURN(auto piece, string_field(inner, "text", inner_at));
        if (!text.empty()) text += '\n';
        text += piece;
      } else if (type == "image") {
        ASSIGN_OR_RETURN(auto image, image_part(inner, inner_at));
        parts.push_back(std::move(image));
      } else {
        return unsupported_block(inner_at, type);
      }
    }
  } else if (content) {
    return invalid(at + ".content", "Input should be a valid string or list of content blocks");
  }
  return Json{{"role", "tool"}, {"tool_call_id", std::move(id)}, {"content", std::move(text)}};
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
    ASSIGN_OR_RETURN(auto type, block_type(block, block_at));
    if (type == "text") {
      ASSIGN_OR_RETURN(auto text, string_field(block, "text", block_at));
      parts.push_back(text_block(std::move(text)));
    } else if (type == "image") {
      ASSIGN_OR_RETURN(auto image, image_part(block, block_at));
      parts.push_back(std::move(image));
    } else if (type == "tool_result") {
      ASSIGN_OR_RETURN(auto tool, tool_message(block, block_at, parts));
      tool_messages.push_back(std::move(tool));
    } else {
      return unsupported_block(block_at, type);
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
    ASSIGN_OR_RETURN(auto type, block_type(block, block_at));
    if (type == "text") {
      ASSIGN_OR_RETURN(auto piece, string_field(block, "text", block_at));
      text += piece;
      has_text = true;
    } else if (type == "tool_use") {
      ASSIGN_OR_RETURN(auto id, string_field(block, "id", block_at));
      ASSIGN_OR_RETURN(auto name, string_field(block, "name", block_at));
      const Json* input = member(block, "input");
      if (input && !input->is_object())
        return invalid(block_at + ".input", "Input should be a valid dictionary");
      calls.push_back(openai_tool_call(id, name, input ? *input : Json::object()));
    } else if (type == "thinking" || type == "redacted_thinking") {
      continue;  // Anthropic-only reasoning traces; no OpenAI model can take them back
    } else {
      return unsupported_block(block_at, type);
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
        ASSIGN_OR_RETURN(auto type, block_type((*system)[i], at));
        if (type != "text") return invalid(at + ".type", "Input should be 'text'");
        ASSIGN_OR_RETURN(auto piece, string_field((*system)[i], "text", at));
        if (!text.empty() && !piece.empty()) text += "\n\n";
        text += piece;
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
    RETURN_IF_ERROR(role == "user" ? add_user_message(*content, at + ".content", out)
                                   : add_assistant_message(*content, at + ".content", out));
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
    ASSIGN_OR_RETURN(auto name, string_field(tool, "name", at));
    const Json* schema = member(tool, "input_schema");
    if (!schema) return invalid(at + ".input_schema", "Field required");
    if (!schema->is_object())
      return invalid(at + ".input_schema", "Input should be a valid dictionary");
    Json function = {{"name", std::move(name)}, {"parameters", *schema}};
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
  ASSIGN_OR_RETURN(auto type, string_field(choice, "type", "tool_choice"));
  if (type == "auto" || type == "none") {
    out["tool_choice"] = type;
  } else if (type == "any") {
    out["tool_choice"] = "required";
  } else if (type == "tool") {
    ASSIGN_OR_RETURN(auto name, string_field(choice, "name", "tool_choice"));
    out["tool_choice"] = {{"type", "function"}, {"function", {{"name", std::move(name)}}}};
  } else {
    return invalid("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'");
  }
  if (const Json* serial = member(choice, "disable_parallel_tool_use");
      serial && serial->is_boolean()) {
    if (serial->get<bool>()) out["parallel_tool_calls"] = false;
  }
  return {};
}

// Optional top-level fields: their JSON type and, for numbers, the range Anthropic accepts.
constexpr std::array<FieldRule, 9> kFieldRules{{
    {"model", JsonKind::kString},
    {"temperature", JsonKind::kNumber, 0, 1},
    {"top_p", JsonKind::kNumber, 0, 1},
    {"top_k", JsonKind::kInteger, 0},
    {"stream", JsonKind::kBoolean},
    {"stop_sequences", JsonKind::kArray},
    {"metadata", JsonKind::kObject},
    {"tools", JsonKind::kArray},
    {"tool_choice", JsonKind::kObject},
}};

SseEvent anthropic_event(const char* type, Json data = Json::object()) {
  data["type"] = type;
  return SseEvent{type, dump_json(data)};
}

}  // namespace

Result<Json> anthropic_request_to_openai(const Json& body) {
  if (!body.is_object()) return invalid("body", "Input should be a valid dictionary");
  const Json* max_tokens = member(body, "max_tokens");
  if (!max_tokens) return invalid("max_tokens", "Field required");
  if (!max_tokens->is_number_integer())
    return invalid("max_tokens", "Input should be a valid integer");
  if (max_tokens->get<int64_t>() < 1)
    return invalid("max_tokens", "Input should be greater than or equal to 1");
  RETURN_IF_ERROR(check_fields(body, kFieldRules, FieldDialect::kAnthropic));

  ASSIGN_OR_RETURN(auto messages, openai_messages(body));
  Json out = {{"messages", std::move(messages)}, {"max_tokens", *max_tokens}};
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
    ASSIGN_OR_RETURN(auto converted, openai_tools(*tools));
    Json choice = Json::object();
    if (const Json* requested = member(body, "tool_choice")) {
      RETURN_IF_ERROR(apply_tool_choice(*requested, choice));
    }
    // OpenAI rejects tool_choice and parallel_tool_calls without tools.
    if (!converted.empty()) {
      out["tools"] = std::move(converted);
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

Json openai_response_to_anthropic(const Json& completion) {
  const Json& choices = array_member(completion, "choices");
  const Json& choice = choices.empty() ? empty_object() : choices[0];
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

}  // namespace isartor::api
