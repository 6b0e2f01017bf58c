#pragma once
// Anthropic Messages from the client's side (POST /v1/messages): the request validated and brought
// into the canonical OpenAI form, the canonical answer and stream rendered back as Anthropic's
// (message_start, content_block_start/delta/stop, message_delta, message_stop, ping).
#include <string>
#include <vector>

#include "api/anthropic_common.h"
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

// OpenAI chat.completion -> Anthropic "message" (id "msg_..."), the inverse of the provider side's mapping; content is
// never empty (an empty answer becomes one empty text block). Pure.
Json openai_response_to_anthropic(const Json& completion);

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

}  // namespace isartor::api
