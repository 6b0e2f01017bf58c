#include "api/anthropic_outbound.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "api/json_access.h"
#include "api/openai.h"

namespace isartor::api {
namespace {

// The helpers both directions share (anthropic_common.h) and the JSON accessors (json_access.h).
using namespace detail;

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
  // The forced JSON tool's call is the answer, not a tool call: "stop" when Anthropic ended on it,
  // and its own reason otherwise ("length" for an answer max_tokens cut off), as the stream says.
  const std::string stop_reason = string_member(message, "stop_reason");
  const bool json_done = json_answer && calls.empty() && stop_reason == "tool_use";
  const std::string finish_reason = json_done ? std::string("stop") : openai_finish_reason(stop_reason);
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
                 {"finish_reason", finish_reason}}})},
      {"usage", openai_usage(object_member(message, "usage"))}};
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