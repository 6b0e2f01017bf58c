#pragma once
// OpenAI Responses API (/v1/responses) served through the chat path: a request becomes a
// canonical chat.completions body, and a chat answer (whole or streamed) is rendered back as a
// "response" object or the Responses event sequence (response.created … response.output_text.delta
// … response.completed). The gateway keeps no conversation state: previous_response_id and
// conversation are refused, and what only OpenAI's own servers run (built-in tools, background
// jobs, prompt templates) is refused naming the field, never dropped.
#include <cstdint>
#include <string>
#include <vector>

#include "api/sse.h"
#include "api/wire_format.h"
#include "core/result.h"

namespace isartor::api {

// A /v1/responses body -> a chat.completions body: "instructions" -> a leading system message;
// "input" (a string, or items: messages with input_text/output_text/input_image parts,
// function_call and function_call_output; reasoning items are left out) -> messages; function
// tools and tool_choice; max_output_tokens -> max_completion_tokens; text.format -> response_format;
// text.verbosity, reasoning.effort, temperature, top_p, parallel_tool_calls, user,
// safety_identifier, prompt_cache_key, service_tier, stream carried over. kInvalidRequest naming
// the field for an ill-typed or unknown field and for previous_response_id/conversation;
// kUnprocessable for what cannot go through chat (built-in tools, background, prompt, file or
// audio inputs, logprobs, truncation "auto", max_tool_calls). Pure.
Result<Json> responses_request_to_chat(const Json& body);

// The request fields a response object repeats (instructions, tools, tool_choice, temperature,
// top_p, max_output_tokens, text, reasoning, parallel_tool_calls, truncation, user, metadata),
// with the API's defaults for the absent ones. Pure.
Json responses_echo(const Json& body);

// chat.completion -> a "response" object: "resp_" id (from the completion's id, so a cached
// answer keeps its id), output = a message item with one output_text part (when there is text or
// nothing else) then one function_call item per tool call; status "completed", or "incomplete"
// with incomplete_details for finish_reason length/content_filter; usage in Responses terms;
// `echo` merged in. Pure.
Json chat_to_response(const Json& completion, const Json& echo);

// Renders a stream of chat.completion.chunk objects as Responses events (each an SseEvent whose
// event name is its "type", with a running sequence_number). Not thread-safe; one per stream.
class ResponsesStreamEncoder {
 public:
  ResponsesStreamEncoder(Json echo, std::string model) : echo_(std::move(echo)), model_(std::move(model)) {}
  // Events for one chunk; the first call also yields response.created and response.in_progress.
  std::vector<SseEvent> on_chunk(const Json& chunk);
  // Closes the open item and yields response.completed (or response.incomplete).
  std::vector<SseEvent> finish();
  // An "error" event for a stream that failed after it started, then response.failed.
  std::vector<SseEvent> fail(const Error& error);

 private:
  enum class Open { kNone, kMessage, kFunctionCall };
  Json echo_;
  std::string model_;
  std::string id_;  // "resp_…"
  int64_t created_ = 0;
  int64_t sequence_ = 0;
  bool started_ = false;
  Json output_ = Json::array();  // items done so far
  Open open_ = Open::kNone;
  Json item_;                    // the open item
  std::string text_;             // the open message's text, or the open call's arguments
  int64_t tool_index_ = -1;      // the chunk index of the open call
  std::string finish_reason_;
  Json usage_ = Json::object();
  SseEvent event(const char* type, Json data);
  std::vector<SseEvent> start_if_needed();
  void close_item(std::vector<SseEvent>& out);
  void open_item(Open kind, Json item, std::vector<SseEvent>& out);
  Json response(const char* status) const;
};

}  // namespace isartor::api
