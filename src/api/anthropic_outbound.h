#pragma once
// Anthropic Messages from the provider's side (the Anthropic provider): a canonical OpenAI request
// as an Anthropic one (and what it cannot express, refused), Anthropic's answer and stream brought
// back into the canonical OpenAI form.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "api/anthropic_common.h"
#include "api/sse.h"
#include "api/wire_format.h"
#include "core/result.h"

namespace isartor::api {

// A canonical OpenAI request as Anthropic's, for the Anthropic provider: system messages
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
