#pragma once
// What both directions of the Anthropic Messages translation share: stop reasons and, for
// src/api only (detail), the content blocks, tool calls and ids either direction builds.
#include <string>
#include <string_view>

#include "api/wire_format.h"

namespace isartor::api {

// OpenAI finish_reason for an Anthropic stop_reason: end_turn/stop_sequence/pause_turn/unknown/""
// -> "stop", max_tokens -> "length", tool_use -> "tool_calls", refusal -> "content_filter". Pure.
std::string openai_finish_reason(std::string_view stop_reason);

// Anthropic stop_reason for an OpenAI finish_reason: length -> max_tokens, tool_calls and
// function_call -> tool_use, anything else (stop, content_filter, "") -> end_turn. Pure.
std::string anthropic_stop_reason(std::string_view finish_reason);

namespace detail {

inline constexpr std::string_view kOpenAIIdPrefix = "chatcmpl-";
inline constexpr std::string_view kAnthropicIdPrefix = "msg_";

// The random part of a new completion id. Thread-safe.
std::string random_suffix();
// `id` with prefix `from` replaced by `to` (a new random id when `id` is absent or empty): ids keep
// their random part across formats, so one answer can be traced in the logs of both. Pure.
std::string swap_id_prefix(const Json* id, std::string_view from, std::string_view to);
// {"type":"text","text":...}. Pure.
Json text_block(std::string text);
// An OpenAI tool call whose arguments are `input` as JSON text. Pure.
Json openai_tool_call(const std::string& id, const std::string& name, const Json& input);
// An OpenAI assistant message; like OpenAI, content is null only for a pure tool-call turn. Pure.
Json openai_assistant_message(const std::string& text, bool has_text, Json tool_calls);
// Anthropic content blocks of an OpenAI assistant message: its text (if any), then its tool calls
// as tool_use blocks (arguments that are not a JSON object become {}: Anthropic requires an object).
// Pure.
Json assistant_blocks(const Json& message);

}  // namespace detail
}  // namespace isartor::api
