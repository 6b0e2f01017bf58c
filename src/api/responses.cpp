#include "api/responses.h"

#include <fmt/format.h>

#include <array>
#include <ctime>
#include <string_view>

#include "api/errors.h"
#include "api/json_access.h"
#include "api/openai.h"

namespace isartor::api {
namespace {

using detail::array_member;
using detail::int_member;
using detail::member;
using detail::object_member;
using detail::string_member;

constexpr std::string_view kChatIdPrefix = "chatcmpl-";
constexpr std::string_view kResponseIdPrefix = "resp_";

std::unexpected<Error> invalid(std::string param, std::string message) {
  return fail(ErrorCode::kInvalidRequest, std::move(message), std::move(param));
}
std::unexpected<Error> refuse(std::string param, std::string why) {
  return fail(ErrorCode::kUnprocessable, fmt::format("'{}' is not supported by this gateway: {}", param, why),
              std::move(param));
}

// What becomes of each top-level field of a request: the one table of the format.
enum class FieldUse {
  kMapped,      // translated by responses_request_to_chat
  kCopied,      // the same name and meaning in chat.completions
  kIgnored,     // accepted, no effect on the answer (stored-object bookkeeping)
  kStateful,    // needs conversation state the gateway does not keep: 400
  kUnsupported  // runs only inside OpenAI: 422
};
struct Field {
  std::string_view name;
  FieldUse use;
  std::string_view why = {};  // for kStateful and kUnsupported
};
constexpr std::array<Field, 28> kFields{{
    {"model", FieldUse::kMapped},
    {"input", FieldUse::kMapped},
    {"instructions", FieldUse::kMapped},
    {"stream", FieldUse::kMapped},
    {"tools", FieldUse::kMapped},
    {"tool_choice", FieldUse::kMapped},
    {"max_output_tokens", FieldUse::kMapped},
    {"text", FieldUse::kMapped},
    {"reasoning", FieldUse::kMapped},
    {"truncation", FieldUse::kMapped},
    {"include", FieldUse::kMapped},
    {"temperature", FieldUse::kCopied},
    {"top_p", FieldUse::kCopied},
    {"parallel_tool_calls", FieldUse::kCopied},
    {"user", FieldUse::kCopied},
    {"safety_identifier", FieldUse::kCopied},
    {"prompt_cache_key", FieldUse::kCopied},
    {"service_tier", FieldUse::kCopied},
    {"store", FieldUse::kIgnored},
    {"metadata", FieldUse::kIgnored},
    {"stream_options", FieldUse::kIgnored},
    {"previous_response_id", FieldUse::kStateful,
     "this gateway keeps no conversation state; send the whole conversation as 'input' (as with store: false)"},
    {"conversation", FieldUse::kStateful,
     "this gateway keeps no conversations; send the whole conversation as 'input' (as with store: false)"},
    {"background", FieldUse::kUnsupported, "background responses run on OpenAI's servers"},
    {"prompt", FieldUse::kUnsupported, "prompt templates live on OpenAI's servers; send instructions and input"},
    {"top_logprobs", FieldUse::kUnsupported, "log probabilities are not carried through the chat path"},
    {"max_tool_calls", FieldUse::kUnsupported, "built-in tool calls run on OpenAI's servers"},
    {"modalities", FieldUse::kUnsupported, "answers are text"},
}};

const Field* field_of(std::string_view name) {
  for (const Field& field : kFields) {
    if (field.name == name) return &field;
  }
  return nullptr;
}

// A content part of an input message -> a chat content part.
Result<Json> chat_part(const Json& part, const std::string& at) {
  if (!part.is_object()) return invalid(at, fmt::format("'{}' must be an object", at));
  const std::string type = string_member(part, "type");
  if (type == "input_text" || type == "output_text" || type == "text" || type == "refusal") {
    const Json* text = member(part, type == "refusal" ? "refusal" : "text");
    if (!text || !text->is_string()) return invalid(at + ".text", fmt::format("'{}.text' must be a string", at));
    return Json{{"type", "text"}, {"text", *text}};
  }
  if (type == "input_image") {
    const Json* url = member(part, "image_url");
    if (!url || !url->is_string()) {
      if (member(part, "file_id")) return refuse(at + ".file_id", "uploaded files live on OpenAI's servers; send image_url");
      return invalid(at + ".image_url", fmt::format("'{}.image_url' must be a string", at));
    }
    Json image{{"url", *url}};
    if (const Json* detail = member(part, "detail"); detail && detail->is_string()) image["detail"] = *detail;
    return Json{{"type", "image_url"}, {"image_url", std::move(image)}};
  }
  if (type == "input_file" || type == "input_audio") return refuse(at, "only text and image inputs go through the chat path");
  return invalid(at + ".type", fmt::format("'{}.type' '{}' is not a content part type", at, type));
}

// A message item's content (a string, or parts) -> chat content.
Result<Json> chat_content(const Json& content, const std::string& at) {
  if (content.is_string()) return content;
  if (!content.is_array()) return invalid(at, fmt::format("'{}' must be a string or an array", at));
  Json parts = Json::array();
  for (std::size_t i = 0; i < content.size(); ++i) {
    ASSIGN_OR_RETURN(Json part, chat_part(content[i], fmt::format("{}[{}]", at, i)));
    parts.push_back(std::move(part));
  }
  return parts;
}

// The text of chat content: an assistant turn in chat takes text only.
std::string text_of(const Json& content) { return detail::content_text(content); }

Result<void> require_string(const Json& item, const char* key, const std::string& at) {
  const Json* value = member(item, key);
  if (!value || !value->is_string()) return invalid(at + "." + key, fmt::format("'{}.{}' must be a string", at, key));
  return {};
}

// The input items -> chat messages, appended to `messages`.
Result<void> add_input(const Json& input, Json& messages) {
  if (input.is_string()) {
    messages.push_back({{"role", "user"}, {"content", input}});
    return {};
  }
  if (!input.is_array()) return invalid("input", "'input' must be a string or an array of items");
  for (std::size_t i = 0; i < input.size(); ++i) {
    const Json& item = input[i];
    const std::string at = fmt::format("input[{}]", i);
    if (!item.is_object()) return invalid(at, fmt::format("'{}' must be an object", at));
    const std::string type = string_member(item, "type", "message");
    if (type == "message") {
      const std::string role = string_member(item, "role");
      if (role != "user" && role != "assistant" && role != "system" && role != "developer") {
        return invalid(at + ".role", fmt::format("'{}.role' must be one of user, assistant, system, developer", at));
      }
      const Json* content = member(item, "content");
      if (!content) return invalid(at + ".content", fmt::format("'{}.content' is a required property", at));
      ASSIGN_OR_RETURN(Json converted, chat_content(*content, at + ".content"));
      if (role == "assistant") converted = Json(text_of(converted));
      messages.push_back({{"role", role}, {"content", std::move(converted)}});
    } else if (type == "function_call") {
      for (const char* key : {"call_id", "name", "arguments"}) {
        RETURN_IF_ERROR(require_string(item, key, at));
      }
      Json call{{"id", item["call_id"]},
                {"type", "function"},
                {"function", {{"name", item["name"]}, {"arguments", item["arguments"]}}}};
      // Calls in a row, and the text before them, are one assistant turn in chat.
      if (messages.empty() || messages.back()["role"] != "assistant") {
        messages.push_back({{"role", "assistant"}, {"content", nullptr}});
      }
      if (!messages.back().contains("tool_calls")) messages.back()["tool_calls"] = Json::array();
      messages.back()["tool_calls"].push_back(std::move(call));
    } else if (type == "function_call_output") {
      RETURN_IF_ERROR(require_string(item, "call_id", at));
      const Json* output = member(item, "output");
      if (!output) return invalid(at + ".output", fmt::format("'{}.output' is a required property", at));
      ASSIGN_OR_RETURN(Json content, chat_content(*output, at + ".output"));
      messages.push_back({{"role", "tool"}, {"tool_call_id", item["call_id"]}, {"content", text_of(content)}});
    } else if (type == "reasoning") {
      // The model's own earlier reasoning: context for OpenAI's reasoning models, which chat
      // completions cannot take back; the answer does not depend on it being echoed.
      continue;
    } else if (type == "item_reference") {
      return invalid(at + ".type", fmt::format("'{}' refers to a stored item: this gateway keeps no state", at));
    } else {
      return refuse(at + ".type", fmt::format("'{}' items come from tools that run on OpenAI's servers", type));
    }
  }
  return {};
}

Result<Json> chat_tools(const Json& tools) {
  if (!tools.is_array()) return invalid("tools", "'tools' must be an array");
  Json out = Json::array();
  for (std::size_t i = 0; i < tools.size(); ++i) {
    const Json& tool = tools[i];
    const std::string at = fmt::format("tools[{}]", i);
    if (!tool.is_object()) return invalid(at, fmt::format("'{}' must be an object", at));
    const std::string type = string_member(tool, "type");
    if (type != "function") {
      return refuse(at + ".type", fmt::format("the '{}' tool runs on OpenAI's servers; only function tools pass", type));
    }
    RETURN_IF_ERROR(require_string(tool, "name", at));
    Json function{{"name", tool["name"]}};
    for (const char* key : {"description", "parameters", "strict"}) {
      if (const Json* value = member(tool, key)) function[key] = *value;
    }
    out.push_back({{"type", "function"}, {"function", std::move(function)}});
  }
  return out;
}

Result<Json> chat_tool_choice(const Json& choice) {
  if (choice.is_string()) {
    if (choice == "auto" || choice == "none" || choice == "required") return choice;
    return invalid("tool_choice", "'tool_choice' must be auto, none, required or a function");
  }
  if (string_member(choice, "type") == "function" && member(choice, "name")) {
    return Json{{"type", "function"}, {"function", {{"name", choice["name"]}}}};
  }
  return refuse("tool_choice", "only auto, none, required and function choices go through the chat path");
}

// text.format -> response_format; text.verbosity -> verbosity.
Result<void> add_text(const Json& text, Json& out) {
  if (!text.is_object()) return invalid("text", "'text' must be an object");
  if (const Json* format = member(text, "format")) {
    const std::string type = string_member(*format, "type");
    if (type == "json_schema") {
      if (!member(*format, "schema")) return invalid("text.format.schema", "'text.format.schema' is a required property");
      Json schema{{"name", string_member(*format, "name", "response")}, {"schema", (*format)["schema"]}};
      for (const char* key : {"description", "strict"}) {
        if (const Json* value = member(*format, key)) schema[key] = *value;
      }
      out["response_format"] = {{"type", "json_schema"}, {"json_schema", std::move(schema)}};
    } else if (type == "json_object") {
      out["response_format"] = {{"type", "json_object"}};
    } else if (type != "text") {
      return invalid("text.format.type", "'text.format.type' must be text, json_object or json_schema");
    }
  }
  if (const Json* verbosity = member(text, "verbosity")) out["verbosity"] = *verbosity;
  return {};
}

Result<void> check_include(const Json& include) {
  if (!include.is_array()) return invalid("include", "'include' must be an array of strings");
  for (const Json& value : include) {
    if (!value.is_string()) return invalid("include", "'include' must be an array of strings");
    // Everything else names output of tools refused above, or reasoning this path never returns.
    if (value == "message.output_text.logprobs") {
      return refuse("include", "log probabilities are not carried through the chat path");
    }
  }
  return {};
}

Result<void> add_mapped(std::string_view name, const Json& value, Json& out) {
  if (name == "model" || name == "stream") {
    out[std::string(name)] = value;  // typed by validate_chat_request
  } else if (name == "instructions") {
    if (!value.is_string()) return invalid("instructions", "'instructions' must be a string");
  } else if (name == "tools") {
    ASSIGN_OR_RETURN(Json tools, chat_tools(value));
    if (!tools.empty()) out["tools"] = std::move(tools);
  } else if (name == "tool_choice") {
    ASSIGN_OR_RETURN(out["tool_choice"], chat_tool_choice(value));
  } else if (name == "max_output_tokens") {
    if (!value.is_number_integer() || value.get<int64_t>() < 1) {
      return invalid("max_output_tokens", "'max_output_tokens' must be an integer of at least 1");
    }
    out["max_completion_tokens"] = value;
  } else if (name == "text") {
    return add_text(value, out);
  } else if (name == "reasoning") {
    if (!value.is_object()) return invalid("reasoning", "'reasoning' must be an object");
    // Summaries are produced on OpenAI's side only; the effort means the same to chat.
    if (const Json* effort = member(value, "effort")) out["reasoning_effort"] = *effort;
  } else if (name == "truncation") {
    if (value != "disabled") {
      return refuse("truncation", "the gateway does not drop input items; leave it 'disabled'");
    }
  } else if (name == "include") {
    return check_include(value);
  }
  return {};
}

// A chat completion id -> the response id family (a cached answer keeps its id).
std::string response_id(const Json& completion) {
  std::string id = string_member(completion, "id");
  if (id.starts_with(kChatIdPrefix)) id.erase(0, kChatIdPrefix.size());
  if (id.empty()) id = new_completion_id().substr(kChatIdPrefix.size());
  return std::string(kResponseIdPrefix) + id;
}

// The suffix of a response id, for its items' ids.
std::string_view id_suffix(const std::string& id) { return std::string_view(id).substr(kResponseIdPrefix.size()); }

Json message_item(const std::string& response, std::string text, const char* status) {
  return {{"type", "message"},
          {"id", fmt::format("msg_{}", id_suffix(response))},
          {"status", status},
          {"role", "assistant"},
          {"content", Json::array({{{"type", "output_text"}, {"text", std::move(text)}, {"annotations", Json::array()}}})}};
}

Json call_item(const std::string& response, int64_t index, Json call_id, Json name, std::string arguments,
               const char* status) {
  return {{"type", "function_call"},
          {"id", fmt::format("fc_{}_{}", id_suffix(response), index)},
          {"call_id", std::move(call_id)},
          {"name", std::move(name)},
          {"arguments", std::move(arguments)},
          {"status", status}};
}

Json responses_usage(const Json& usage) {
  const int64_t input = int_member(usage, "prompt_tokens");
  const int64_t output = int_member(usage, "completion_tokens");
  return {{"input_tokens", input},
          {"input_tokens_details", {{"cached_tokens", int_member(object_member(usage, "prompt_tokens_details"), "cached_tokens")}}},
          {"output_tokens", output},
          {"output_tokens_details",
           {{"reasoning_tokens", int_member(object_member(usage, "completion_tokens_details"), "reasoning_tokens")}}},
          {"total_tokens", input + output}};
}

// "incomplete" for an answer cut short, with why; "completed" otherwise.
const char* status_for(std::string_view finish_reason) {
  return finish_reason == "length" || finish_reason == "content_filter" ? "incomplete" : "completed";
}

Json incomplete_details(std::string_view finish_reason) {
  if (finish_reason == "length") return {{"reason", "max_output_tokens"}};
  if (finish_reason == "content_filter") return {{"reason", "content_filter"}};
  return nullptr;
}

Json response_object(const std::string& id, int64_t created, const Json& model, const char* status, Json output,
                     const Json& echo) {
  Json out{{"id", id},
           {"object", "response"},
           {"created_at", created},
           {"status", status},
           {"background", false},
           {"error", nullptr},
           {"incomplete_details", nullptr},
           {"model", model},
           {"output", std::move(output)},
           {"previous_response_id", nullptr},
           {"store", false}};
  for (const auto& [key, value] : echo.items()) out[key] = value;
  return out;
}

}  // namespace

Result<Json> responses_request_to_chat(const Json& body) {
  if (!body.is_object()) return invalid("", "request body must be a JSON object");
  Json out = Json::object();
  for (const auto& [name, value] : body.items()) {
    if (value.is_null()) continue;  // null means absent
    const Field* field = field_of(name);
    if (!field) return invalid(name, fmt::format("Unknown parameter: '{}'.", name));
    switch (field->use) {
      case FieldUse::kMapped:
        RETURN_IF_ERROR(add_mapped(name, value, out));
        break;
      case FieldUse::kCopied: out[name] = value; break;
      case FieldUse::kIgnored: break;
      case FieldUse::kStateful: return invalid(name, fmt::format("'{}' is not supported: {}", name, field->why));
      case FieldUse::kUnsupported:
        if (name == "background" && value == false) break;
        return refuse(name, std::string(field->why));
    }
  }
  const Json* input = member(body, "input");
  if (!input) return invalid("input", "'input' is a required property");
  Json messages = Json::array();
  if (const Json* instructions = member(body, "instructions")) messages.push_back({{"role", "system"}, {"content", *instructions}});
  RETURN_IF_ERROR(add_input(*input, messages));
  if (messages.empty()) return invalid("input", "'input' must hold at least one message");
  out["messages"] = std::move(messages);
  RETURN_IF_ERROR(validate_chat_request(out));
  return out;
}

Json responses_echo(const Json& body) {
  auto or_default = [&body](const char* key, Json fallback) {
    const Json* value = member(body, key);
    return value ? *value : fallback;
  };
  return {{"instructions", or_default("instructions", nullptr)},
          {"max_output_tokens", or_default("max_output_tokens", nullptr)},
          {"metadata", or_default("metadata", Json::object())},
          {"parallel_tool_calls", or_default("parallel_tool_calls", true)},
          {"reasoning", or_default("reasoning", Json{{"effort", nullptr}, {"summary", nullptr}})},
          {"temperature", or_default("temperature", 1.0)},
          {"text", or_default("text", Json{{"format", {{"type", "text"}}}})},
          {"tool_choice", or_default("tool_choice", "auto")},
          {"tools", or_default("tools", Json::array())},
          {"top_p", or_default("top_p", 1.0)},
          {"truncation", or_default("truncation", "disabled")},
          {"user", or_default("user", nullptr)}};
}

Json chat_to_response(const Json& completion, const Json& echo) {
  const Json& choices = array_member(completion, "choices");
  const Json& choice = choices.empty() ? detail::empty_object() : choices[0];
  const Json& message = object_member(choice, "message");
  const std::string finish_reason = string_member(choice, "finish_reason");
  const std::string id = response_id(completion);
  const Json& calls = array_member(message, "tool_calls");
  Json output = Json::array();
  const Json* content = member(message, "content");
  if ((content && !text_of(*content).empty()) || calls.empty()) {
    output.push_back(message_item(id, content ? text_of(*content) : std::string(), "completed"));
  }
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const Json& function = object_member(calls[i], "function");
    output.push_back(call_item(id, static_cast<int64_t>(i), string_member(calls[i], "id"),
                               string_member(function, "name"), string_member(function, "arguments"), "completed"));
  }
  const Json* created = member(completion, "created");
  Json out = response_object(id, created && created->is_number_integer() ? created->get<int64_t>() : 0,
                             string_member(completion, "model"), status_for(finish_reason), std::move(output), echo);
  out["incomplete_details"] = incomplete_details(finish_reason);
  out["usage"] = responses_usage(object_member(completion, "usage"));
  return out;
}

SseEvent ResponsesStreamEncoder::event(const char* type, Json data) {
  data["type"] = type;
  data["sequence_number"] = sequence_++;
  return SseEvent{type, dump_json(data)};
}

Json ResponsesStreamEncoder::response(const char* status) const {
  return response_object(id_, created_, model_, status, output_, echo_);
}

std::vector<SseEvent> ResponsesStreamEncoder::start_if_needed() {
  std::vector<SseEvent> out;
  if (started_) return out;
  started_ = true;
  if (id_.empty()) id_ = response_id(Json::object());
  if (created_ == 0) created_ = static_cast<int64_t>(std::time(nullptr));
  out.push_back(event("response.created", {{"response", response("in_progress")}}));
  out.push_back(event("response.in_progress", {{"response", response("in_progress")}}));
  return out;
}

void ResponsesStreamEncoder::open_item(Open kind, Json item, std::vector<SseEvent>& out) {
  close_item(out);
  open_ = kind;
  item_ = std::move(item);
  text_.clear();
  const int64_t index = static_cast<int64_t>(output_.size());
  Json added = item_;
  if (kind == Open::kMessage) added["content"] = Json::array();
  out.push_back(event("response.output_item.added", {{"output_index", index}, {"item", std::move(added)}}));
  if (kind == Open::kMessage) {
    out.push_back(event("response.content_part.added",
                        {{"item_id", item_["id"]},
                         {"output_index", index},
                         {"content_index", 0},
                         {"part", {{"type", "output_text"}, {"text", ""}, {"annotations", Json::array()}}}}));
  }
}

void ResponsesStreamEncoder::close_item(std::vector<SseEvent>& out) {
  if (open_ == Open::kNone) return;
  const int64_t index = static_cast<int64_t>(output_.size());
  const Json item_id = item_["id"];
  if (open_ == Open::kMessage) {
    out.push_back(event("response.output_text.done", {{"item_id", item_id},
                                                      {"output_index", index},
                                                      {"content_index", 0},
                                                      {"text", text_},
                                                      {"logprobs", Json::array()}}));
    Json part{{"type", "output_text"}, {"text", text_}, {"annotations", Json::array()}};
    out.push_back(event("response.content_part.done",
                        {{"item_id", item_id}, {"output_index", index}, {"content_index", 0}, {"part", part}}));
    item_["content"] = Json::array({std::move(part)});
  } else {
    out.push_back(event("response.function_call_arguments.done",
                        {{"item_id", item_id}, {"output_index", index}, {"name", item_["name"]}, {"arguments", text_}}));
    item_["arguments"] = text_;
  }
  item_["status"] = "completed";
  out.push_back(event("response.output_item.done", {{"output_index", index}, {"item", item_}}));
  output_.push_back(std::move(item_));
  item_ = Json();
  open_ = Open::kNone;
}

std::vector<SseEvent> ResponsesStreamEncoder::on_chunk(const Json& chunk) {
  if (id_.empty() && chunk.is_object() && member(chunk, "id")) id_ = response_id(chunk);
  if (const Json* created = member(chunk, "created"); created && created->is_number_integer() && created_ == 0) {
    created_ = created->get<int64_t>();
  }
  std::vector<SseEvent> out = start_if_needed();
  if (const Json* usage = member(chunk, "usage"); usage && usage->is_object()) usage_ = *usage;
  for (const Json& choice : array_member(chunk, "choices")) {
    if (int_member(choice, "index") != 0) continue;
    const Json& delta = object_member(choice, "delta");
    if (const Json* content = member(delta, "content"); content && content->is_string() && !content->get_ref<const std::string&>().empty()) {
      if (open_ != Open::kMessage) open_item(Open::kMessage, message_item(id_, "", "in_progress"), out);
      text_ += content->get_ref<const std::string&>();
      out.push_back(event("response.output_text.delta", {{"item_id", item_["id"]},
                                                         {"output_index", output_.size()},
                                                         {"content_index", 0},
                                                         {"delta", *content},
                                                         {"logprobs", Json::array()}}));
    }
    for (const Json& fragment : array_member(delta, "tool_calls")) {
      const int64_t index = int_member(fragment, "index");
      const Json& function = object_member(fragment, "function");
      if (open_ != Open::kFunctionCall || index != tool_index_) {
        tool_index_ = index;
        open_item(Open::kFunctionCall,
                  call_item(id_, index, string_member(fragment, "id"), string_member(function, "name"), "", "in_progress"),
                  out);
      }
      if (std::string arguments = string_member(function, "arguments"); !arguments.empty()) {
        text_ += arguments;
        out.push_back(event("response.function_call_arguments.delta",
                            {{"item_id", item_["id"]}, {"output_index", output_.size()}, {"delta", std::move(arguments)}}));
      }
    }
    if (const Json* reason = member(choice, "finish_reason"); reason && reason->is_string()) {
      finish_reason_ = reason->get<std::string>();
    }
  }
  return out;
}

std::vector<SseEvent> ResponsesStreamEncoder::finish() {
  std::vector<SseEvent> out = start_if_needed();
  // An empty answer still has its message, as a whole response would.
  if (output_.empty() && open_ == Open::kNone) open_item(Open::kMessage, message_item(id_, "", "in_progress"), out);
  close_item(out);
  const char* status = status_for(finish_reason_);
  Json done = response(status);
  done["incomplete_details"] = incomplete_details(finish_reason_);
  done["usage"] = responses_usage(usage_);
  out.push_back(event(std::string_view(status) == "completed" ? "response.completed" : "response.incomplete",
                      {{"response", std::move(done)}}));
  return out;
}

std::vector<SseEvent> ResponsesStreamEncoder::fail(const Error& error) {
  std::vector<SseEvent> out = start_if_needed();
  const Json body = error_body(WireFormat::kResponses, error)["error"];
  out.push_back(event("error", {{"code", body["code"]}, {"message", body["message"]}, {"param", body["param"]}}));
  Json failed = response("failed");
  failed["error"] = {{"code", body["code"].is_null() ? Json(body["type"]) : body["code"]}, {"message", body["message"]}};
  out.push_back(event("response.failed", {{"response", std::move(failed)}}));
  return out;
}

}  // namespace isartor::api
