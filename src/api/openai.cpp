#include "api/openai.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <random>
#include <string_view>

#include "api/field_rules.h"
#include "api/json_access.h"

namespace isartor::api {
namespace {

using detail::member;
using detail::string_member;

std::unexpected<Error> invalid(std::string param, std::string message) {
  return fail(ErrorCode::kInvalidRequest, std::move(message), std::move(param));
}

using detail::FieldRule;
using detail::JsonKind;

// Optional top-level fields: their JSON type and, for numbers, the range OpenAI accepts.
constexpr std::array<FieldRule, 14> kFieldRules{{
    {"model", JsonKind::kString},
    {"stream", JsonKind::kBoolean},
    {"temperature", JsonKind::kNumber, 0, 2},
    {"top_p", JsonKind::kNumber, 0, 1},
    {"presence_penalty", JsonKind::kNumber, -2, 2},
    {"frequency_penalty", JsonKind::kNumber, -2, 2},
    {"max_tokens", JsonKind::kInteger, 1},
    {"max_completion_tokens", JsonKind::kInteger, 1},
    {"n", JsonKind::kInteger, 1, 128},
    {"seed", JsonKind::kInteger},
    {"tools", JsonKind::kArray},
    {"stream_options", JsonKind::kObject},
    {"response_format", JsonKind::kObject},
    {"user", JsonKind::kString},
}};

bool is_role(std::string_view role) {
  return role == "system" || role == "developer" || role == "user" || role == "assistant" ||
         role == "tool";
}

// A string member that must be present; `at` is the path of `obj` for the error.
Result<void> require_string(const Json& obj, std::string_view key, const std::string& at) {
  const Json* value = member(obj, key);
  if (!value)
    return invalid(fmt::format("{}.{}", at, key),
                   fmt::format("'{}.{}' is a required property", at, key));
  if (!value->is_string()) {
    return invalid(fmt::format("{}.{}", at, key), fmt::format("{}.{} must be a string", at, key));
  }
  return {};
}

Result<void> require_object(const Json& value, const std::string& at) {
  if (!value.is_object()) return invalid(at, fmt::format("{} must be an object", at));
  return {};
}

Result<void> validate_content_part(const Json& part, const std::string& at) {
  RETURN_IF_ERROR(require_object(part, at));
  RETURN_IF_ERROR(require_string(part, "type", at));
  const std::string type = string_member(part, "type");
  if (type == "text") return require_string(part, "text", at);
  if (type == "image_url") {
    const Json* image = member(part, "image_url");
    if (!image)
      return invalid(at + ".image_url", fmt::format("'{}.image_url' is a required property", at));
    RETURN_IF_ERROR(require_object(*image, at + ".image_url"));
    return require_string(*image, "url", at + ".image_url");
  }
  return {};  // input_audio, file, refusal: passed on for the provider to judge
}

Result<void> validate_tool_call(const Json& call, const std::string& at) {
  RETURN_IF_ERROR(require_object(call, at));
  RETURN_IF_ERROR(require_string(call, "id", at));
  const Json* function = member(call, "function");
  if (!function)
    return invalid(at + ".function", fmt::format("'{}.function' is a required property", at));
  RETURN_IF_ERROR(require_object(*function, at + ".function"));
  RETURN_IF_ERROR(require_string(*function, "name", at + ".function"));
  return require_string(*function, "arguments", at + ".function");
}

Result<void> validate_message(const Json& message, size_t index) {
  const std::string at = fmt::format("messages[{}]", index);
  RETURN_IF_ERROR(require_object(message, at));
  const Json* role = member(message, "role");
  if (!role || !role->is_string()) return invalid(at + ".role", at + ".role must be a string");
  const std::string& role_name = role->get_ref<const std::string&>();
  if (!is_role(role_name)) {
    return invalid(at + ".role",
                   fmt::format("Invalid value for {}.role: '{}'. Supported values are: 'system', "
                               "'developer', 'user', 'assistant' and 'tool'.",
                               at, role_name));
  }

  bool has_tool_calls = false;
  if (const Json* calls = member(message, "tool_calls")) {
    if (role_name != "assistant") {
      return invalid(at + ".tool_calls",
                     fmt::format("{}.tool_calls is only allowed for role 'assistant'", at));
    }
    if (!calls->is_array()) return invalid(at + ".tool_calls", at + ".tool_calls must be an array");
    for (size_t i = 0; i < calls->size(); ++i) {
      if (auto ok = validate_tool_call((*calls)[i], fmt::format("{}.tool_calls[{}]", at, i)); !ok)
        return ok;
    }
    has_tool_calls = !calls->empty();
  }

  const Json* content = member(message, "content");
  if (!content) {
    // Only an assistant turn that calls tools (or a legacy function) may omit its text.
    if (role_name == "assistant" && (has_tool_calls || member(message, "function_call"))) return {};
    return invalid(at + ".content", fmt::format("'{}.content' is a required property", at));
  }
  if (content->is_array()) {
    for (size_t i = 0; i < content->size(); ++i) {
      if (auto ok = validate_content_part((*content)[i], fmt::format("{}.content[{}]", at, i)); !ok)
        return ok;
    }
  } else if (!content->is_string()) {
    return invalid(at + ".content", at + ".content must be a string, an array or null");
  }
  if (role_name == "tool") return require_string(message, "tool_call_id", at);
  return {};
}

Result<void> validate_tools(const Json& tools) {
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string at = fmt::format("tools[{}]", i);
    const Json& tool = tools[i];
    RETURN_IF_ERROR(require_object(tool, at));
    RETURN_IF_ERROR(require_string(tool, "type", at));
    if (string_member(tool, "type") != "function") continue;
    const Json* function = member(tool, "function");
    if (!function)
      return invalid(at + ".function", fmt::format("'{}.function' is a required property", at));
    RETURN_IF_ERROR(require_object(*function, at + ".function"));
    RETURN_IF_ERROR(require_string(*function, "name", at + ".function"));
    if (const Json* parameters = member(*function, "parameters")) {
      RETURN_IF_ERROR(require_object(*parameters, at + ".function.parameters"));
    }
  }
  return {};
}

Result<void> validate_tool_choice(const Json& choice) {
  if (choice.is_string()) {
    const std::string& value = choice.get_ref<const std::string&>();
    if (value == "none" || value == "auto" || value == "required") return {};
    return invalid("tool_choice",
                   fmt::format("Invalid value for 'tool_choice': '{}'. Supported values "
                               "are: 'none', 'auto' and 'required'.",
                               value));
  }
  if (!choice.is_object())
    return invalid("tool_choice", "'tool_choice' must be a string or an object");
  RETURN_IF_ERROR(require_string(choice, "type", "tool_choice"));
  if (string_member(choice, "type") != "function") return {};
  const Json* function = member(choice, "function");
  if (!function)
    return invalid("tool_choice.function", "'tool_choice.function' is a required property");
  RETURN_IF_ERROR(require_object(*function, "tool_choice.function"));
  return require_string(*function, "name", "tool_choice.function");
}

Result<void> validate_stop(const Json& stop) {
  if (stop.is_string()) return {};
  if (stop.is_array()) {
    for (const Json& sequence : stop) {
      if (!sequence.is_string())
        return invalid("stop", "'stop' must be a string or an array of strings");
    }
    return {};
  }
  return invalid("stop", "'stop' must be a string or an array of strings");
}

Json chunk_frame(const Json& id, const Json& model, const Json& created) {
  return Json{
      {"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model}};
}

Json chunk_choice(Json delta, const std::string& finish_reason) {
  return Json{{"index", 0},
              {"delta", std::move(delta)},
              {"logprobs", nullptr},
              {"finish_reason", finish_reason.empty() ? Json(nullptr) : Json(finish_reason)}};
}

// Splits at about `piece_chars` bytes (more for a text of over kMaxReplayPieces pieces), extending
// each piece to the end of a UTF-8 sequence.
std::vector<std::string_view> utf8_pieces(std::string_view text, size_t piece_chars) {
  std::vector<std::string_view> pieces;
  const size_t step =
      piece_chars == 0 ? text.size() : std::max(piece_chars, (text.size() + kMaxReplayPieces - 1) / kMaxReplayPieces);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = std::min(text.size(), pos + step);
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
    pieces.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return pieces;
}

// The tool call with stream index `index`, appended (without its index) if new.
Json& tool_call_slot(Json& calls, std::vector<int64_t>& indices, int64_t index) {
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] == index) return calls[i];
  }
  indices.push_back(index);
  calls.push_back(
      Json{{"id", ""}, {"type", "function"}, {"function", {{"name", ""}, {"arguments", ""}}}});
  return calls.back();
}

}  // namespace

Result<void> validate_chat_request(const Json& body) {
  if (!body.is_object()) return invalid("", "Request body must be a JSON object");
  const Json* messages = member(body, "messages");
  if (!messages) return invalid("messages", "'messages' is a required property");
  if (!messages->is_array() || messages->empty()) {
    return invalid("messages", "'messages' must be a non-empty array");
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    RETURN_IF_ERROR(validate_message((*messages)[i], i));
  }
  RETURN_IF_ERROR(detail::check_fields(body, kFieldRules, detail::FieldDialect::kOpenAI));
  if (const Json* tools = member(body, "tools")) {
    RETURN_IF_ERROR(validate_tools(*tools));
  }
  if (const Json* choice = member(body, "tool_choice")) {
    RETURN_IF_ERROR(validate_tool_choice(*choice));
  }
  if (const Json* stop = member(body, "stop")) {
    RETURN_IF_ERROR(validate_stop(*stop));
  }
  return {};
}

Json make_completion(const std::string& id, const std::string& model, int64_t created,
                     const std::string& text, const std::string& finish_reason,
                     const Usage& usage) {
  return Json{{"id", id},
              {"object", "chat.completion"},
              {"created", created},
              {"model", model},
              {"choices",
               Json::array({Json{{"index", 0},
                                 {"message", {{"role", "assistant"}, {"content", text}}},
                                 {"logprobs", nullptr},
                                 {"finish_reason",
                                  finish_reason.empty() ? Json(nullptr) : Json(finish_reason)}}})},
              {"usage",
               {{"prompt_tokens", usage.prompt_tokens},
                {"completion_tokens", usage.completion_tokens},
                {"total_tokens", usage.prompt_tokens + usage.completion_tokens}}}};
}

Json make_chunk(const std::string& id, const std::string& model, int64_t created, const Json& delta,
                const std::string& finish_reason) {
  Json chunk = chunk_frame(id, model, created);
  chunk["choices"] = Json::array({chunk_choice(delta, finish_reason)});
  return chunk;
}

std::string new_completion_id() {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 engine{std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, kAlphabet.size() - 1);
  std::string id = "chatcmpl-";
  for (int i = 0; i < 24; ++i) id += kAlphabet[pick(engine)];
  return id;
}

std::string completion_text(const Json& completion) {
  const Json& choices = detail::array_member(completion, "choices");
  if (choices.empty()) return "";
  return string_member(detail::object_member(choices[0], "message"), "content");
}

std::string chunk_text(const Json& chunk) {
  const Json& choices = detail::array_member(chunk, "choices");
  if (choices.empty()) return "";
  return string_member(detail::object_member(choices[0], "delta"), "content");
}

std::string finish_reason_of(const Json& completion_or_chunk) {
  const Json& choices = detail::array_member(completion_or_chunk, "choices");
  if (choices.empty()) return "";
  return string_member(choices[0], "finish_reason");
}

Usage usage_of(const Json& completion_or_chunk) {
  const Json& usage = detail::object_member(completion_or_chunk, "usage");
  return {detail::int_member(usage, "prompt_tokens"), detail::int_member(usage, "completion_tokens")};
}

namespace {

// Where the member `quoted_key` ("\"usage\":") of the compact JSON object that `json` starts with
// has its value, found by walking the text with its nesting depth and string state; npos when
// that object has no such member.
std::size_t top_level_member(std::string_view json, std::string_view quoted_key) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      if (depth == 1 && json.substr(i).starts_with(quoted_key)) return i + quoted_key.size();
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      break;  // the end of the outermost value
    }
  }
  return std::string_view::npos;
}

int64_t integer_member(std::string_view object, std::string_view quoted_key) {
  const std::size_t at = top_level_member(object, quoted_key);
  if (at == std::string_view::npos) return 0;
  int64_t value = 0;
  const char* first = object.data() + at;
  const auto [end, error] = std::from_chars(first, object.data() + object.size(), value);
  return error == std::errc() && end != first ? value : 0;
}

}  // namespace

Usage usage_in_text(std::string_view completion_json) {
  const std::size_t usage = top_level_member(completion_json, R"("usage":)");
  if (usage == std::string_view::npos || completion_json[usage] != '{') return {};
  const std::string_view object = completion_json.substr(usage);
  return {integer_member(object, R"("prompt_tokens":)"), integer_member(object, R"("completion_tokens":)")};
}

void CompletionAssembler::add_chunk(const Json& chunk) {
  if (!chunk.is_object()) return;
  auto keep_first = [&chunk](Json& slot, const char* key) {
    if (const Json* value = member(chunk, key); value && slot.is_null()) slot = *value;
  };
  keep_first(id_, "id");
  keep_first(model_, "model");
  keep_first(created_, "created");
  keep_first(system_fingerprint_, "system_fingerprint");
  if (const Json* usage = member(chunk, "usage"); usage && usage->is_object()) usage_ = *usage;

  for (const Json& choice : detail::array_member(chunk, "choices")) {
    if (detail::int_member(choice, "index") != 0) continue;  // we only ever ask for n=1
    const Json& delta = detail::object_member(choice, "delta");
    if (const Json* role = member(delta, "role"); role && role->is_string())
      role_ = role->get<std::string>();
    if (const Json* content = member(delta, "content"); content && content->is_string()) {
      content_ += content->get_ref<const std::string&>();
      has_content_ = true;
    }
    for (const Json& fragment : detail::array_member(delta, "tool_calls")) {
      if (!fragment.is_object()) continue;
      Json& call =
          tool_call_slot(tool_calls_, tool_indices_, detail::int_member(fragment, "index"));
      if (std::string id = string_member(fragment, "id"); !id.empty()) call["id"] = id;
      if (std::string type = string_member(fragment, "type"); !type.empty()) call["type"] = type;
      const Json& function = detail::object_member(fragment, "function");
      // Appended like the OpenAI SDK does: a name may in principle arrive in pieces, too.
      call["function"]["name"] =
          call["function"]["name"].get<std::string>() + string_member(function, "name");
      call["function"]["arguments"] =
          call["function"]["arguments"].get<std::string>() + string_member(function, "arguments");
    }
    if (const Json* reason = member(choice, "finish_reason"); reason && reason->is_string()) {
      finish_reason_ = reason->get<std::string>();
      finished_ = true;
    }
  }
}

Json CompletionAssembler::completion() const {
  Json message = {{"role", role_}};
  // Like OpenAI: a pure tool-call answer has null content, a text answer a string.
  message["content"] = (has_content_ || tool_calls_.empty()) ? Json(content_) : Json(nullptr);
  if (!tool_calls_.empty()) message["tool_calls"] = tool_calls_;
  Json completion = {
      {"id", id_.is_null() ? Json(new_completion_id()) : id_},
      {"object", "chat.completion"},
      {"created", created_.is_null() ? Json(0) : created_},
      {"model", model_.is_null() ? Json("") : model_},
      {"choices",
       Json::array({Json{
           {"index", 0},
           {"message", std::move(message)},
           {"logprobs", nullptr},
           {"finish_reason", finish_reason_.empty() ? Json(nullptr) : Json(finish_reason_)}}})}};
  if (!usage_.is_null()) completion["usage"] = usage_;
  if (!system_fingerprint_.is_null()) completion["system_fingerprint"] = system_fingerprint_;
  return completion;
}

std::vector<Json> completion_to_chunks(const Json& completion, size_t piece_chars) {
  const Json* id = member(completion, "id");
  const Json* model = member(completion, "model");
  const Json* created = member(completion, "created");
  Json frame = chunk_frame(id ? *id : Json(new_completion_id()), model ? *model : Json(""),
                           created ? *created : Json(0));
  if (const Json* fingerprint = member(completion, "system_fingerprint"))
    frame["system_fingerprint"] = *fingerprint;
  auto chunk = [&frame](Json delta, const std::string& finish_reason = {}) {
    Json out = frame;
    out["choices"] = Json::array({chunk_choice(std::move(delta), finish_reason)});
    return out;
  };

  const Json& choices = detail::array_member(completion, "choices");
  const Json& choice = choices.empty() ? detail::empty_object() : choices[0];
  const Json& message = detail::object_member(choice, "message");
  const Json* content = member(message, "content");

  std::vector<Json> chunks;
  // OpenAI's first chunk: the role, with "" content for a text answer and null for a tool call.
  chunks.push_back(
      chunk({{"role", string_member(message, "role", "assistant")},
             {"content", content && content->is_string() ? Json("") : Json(nullptr)}}));
  if (content && content->is_string()) {
    for (std::string_view piece :
         utf8_pieces(content->get_ref<const std::string&>(), piece_chars)) {
      chunks.push_back(chunk({{"content", piece}}));
    }
  }
  const Json& calls = detail::array_member(message, "tool_calls");
  for (size_t i = 0; i < calls.size(); ++i) {
    const Json& function = detail::object_member(calls[i], "function");
    chunks.push_back(chunk(
        {{"tool_calls",
          Json::array({Json{
              {"index", i},
              {"id", string_member(calls[i], "id")},
              {"type", string_member(calls[i], "type", "function")},
              {"function", {{"name", string_member(function, "name")}, {"arguments", ""}}}}})}}));
    const std::string arguments = string_member(function, "arguments");
    for (std::string_view piece : utf8_pieces(arguments, piece_chars)) {
      chunks.push_back(
          chunk({{"tool_calls",
                  Json::array({Json{{"index", i}, {"function", {{"arguments", piece}}}}})}}));
    }
  }
  std::string finish_reason =
      string_member(choice, "finish_reason", calls.empty() ? "stop" : "tool_calls");
  Json last = chunk(Json::object(), finish_reason);
  if (const Json* usage = member(completion, "usage")) last["usage"] = *usage;
  chunks.push_back(std::move(last));
  return chunks;
}

}  // namespace isartor::api
