#pragma once
// Anthropic Messages wire format (/v1/messages) and its translation to and from the canonical
// OpenAI form, both for whole messages and for streams (message_start, content_block_start,
// content_block_delta, content_block_stop, message_delta, message_stop, ping, error).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "api/sse.h"
#include "api/wire_format.h"
#include "core/result.h"

namespace isartor::api {

// Validates an Anthropic Messages request and converts it to an OpenAI chat.completions body:
// "system" (string or text blocks) -> a system message; content blocks text/image/tool_use/
// tool_result -> OpenAI parts, assistant tool_calls and role "tool" messages; tools ->
// function tools; tool_choice; max_tokens, temperature, top_p, stop_sequences -> stop; stream.
// Missing/ill-typed "messages" or "max_tokens" -> kInvalidRequest naming the field. Pure.
Result<Json> anthropic_request_to_openai(const Json& body);

// True when only Anthropic itself can answer this Anthropic request as asked: extended thinking
// is on (a cached or local answer would lack the thinking blocks the next turn must send back),
// or it uses what runs inside Anthropic (server tools, MCP servers, a code container), which the
// canonical form drops and so the cache key cannot tell apart. Pure.
bool anthropic_needs_the_provider(const Json& body);

// The inverse, for serving OpenAI-format requests with the Anthropic provider: system messages
// are lifted into "system", tool messages become tool_result blocks, max_tokens defaults to
// `default_max_tokens` when absent, a JSON response_format becomes the forced json_answer_tool().
// Pure.
Json openai_request_to_anthropic(const Json& body, int default_max_tokens);

// What of an OpenAI request Anthropic cannot do, refused rather than dropped: kUnprocessable
// naming the field for n > 1, logprobs: true, top_logprobs, a non-empty logit_bias, audio
// output, and a JSON response_format that cannot be emulated (together with tools, or a
// json_schema whose root is not an object). Sampling hints without a guarantee (seed,
// presence_penalty, frequency_penalty) are not refused. Pure.
Result<void> check_anthropic_can_express(const Json& body);

// JSON mode on Anthropic, which has none: a response_format json_object or json_schema becomes
// one tool whose input schema is the requested one (json_object: any object), forced with
// tool_choice, and the tool's input is the answer's text. The name of that tool for `body`
// (json_schema.name when it is a valid tool name, else "json_answer"); "" when the request asks
// for no JSON. Pure.
std::string json_answer_tool(const Json& body);

// Anthropic "message" response -> OpenAI chat.completion (stop_reason end_turn/stop_sequence ->
// "stop", max_tokens -> "length", tool_use -> "tool_calls"; "msg_X" -> "chatcmpl-X"; usage
// input_tokens (+ cache tokens) -> prompt_tokens, output_tokens -> completion_tokens; created is
// the current time). A tool_use block of `json_tool` (json_answer_tool() of the request) is the
// answer's text, its input as JSON, finishing with "stop". Pure apart from reading the clock.
Json anthropic_response_to_openai(const Json& message, std::string_view json_tool = {});

// OpenAI chat.completion -> Anthropic "message" (id "msg_..."), the inverse mapping; content is
// never empty (an empty answer becomes one empty text block). Pure.
Json openai_response_to_anthropic(const Json& completion);

// OpenAI finish_reason for an Anthropic stop_reason: end_turn/stop_sequence/pause_turn/unknown/""
// -> "stop", max_tokens -> "length", tool_use -> "tool_calls", refusal -> "content_filter". Pure.
std::string openai_finish_reason(std::string_view stop_reason);

// Anthropic stop_reason for an OpenAI finish_reason: length -> max_tokens, tool_calls and
// function_call -> tool_use, anything else (stop, content_filter, "") -> end_turn. Pure.
std::string anthropic_stop_reason(std::string_view finish_reason);

// Renders a stream of OpenAI chunks as the Anthropic event sequence. Not thread-safe; one per stream.
class AnthropicStreamEncoder {
 public:
  explicit AnthropicStreamEncoder(std::string model) : model_(std::move(model)) {}
  // Events for one chunk; the first call also yields message_start.
  std::vector<SseEvent> on_chunk(const Json& chunk);
  // Closes open blocks and yields message_delta (stop_reason, usage) and message_stop.
  std::vector<SseEvent> finish();

 private:
  std::string model_;
  std::string id_;
  bool started_ = false;
  bool finished_ = false;
  int block_index_ = -1;
  std::string block_type_;  // "text" | "tool_use" | "" (none open)
  int open_tool_index_ = -1;
  std::string stop_reason_ = "end_turn";
  Json usage_ = Json::object();
  std::vector<SseEvent> start_if_needed();
  void close_block(std::vector<SseEvent>& out);
};

// Turns Anthropic stream events into OpenAI chunks. Not thread-safe; one per stream.
class AnthropicStreamDecoder {
 public:
  // `json_tool`: as for anthropic_response_to_openai, that tool's input streams as content.
  explicit AnthropicStreamDecoder(std::string json_tool = {}) : json_tool_(std::move(json_tool)) {}
  // OpenAI chunks for one event; an "error" event yields an Error.
  Result<std::vector<Json>> on_event(const SseEvent& event);
  // True after message_stop.
  bool done() const { return done_; }

 private:
  std::string id_ = "chatcmpl-anthropic";
  std::string model_;
  int64_t created_ = 0;
  Json usage_ = Json::object();
  int tool_index_ = -1;
  bool done_ = false;
  std::string json_tool_;
  bool in_json_answer_ = false;  // the open block is the json_tool's
};

}  // namespace isartor::api
