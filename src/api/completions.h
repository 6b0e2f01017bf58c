#pragma once
// OpenAI's legacy /v1/completions served through the chat path: the prompt becomes one user
// message, and the chat answer is rendered back as a text_completion. What a chat model cannot
// do (echo, suffix, logprobs, best_of, several prompts or choices, token-id prompts) is refused,
// naming the field, rather than dropped.
#include "api/wire_format.h"
#include "core/result.h"

namespace isartor::api {

// OpenAI's default max_tokens for a legacy completion.
inline constexpr int kLegacyDefaultMaxTokens = 16;

// A /v1/completions body -> a chat.completions body: "prompt" (a string, or an array of one
// string) -> one user message; max_tokens (16 when absent, as OpenAI does), temperature, top_p,
// stop, seed, presence/frequency_penalty, logit_bias, user, stream, stream_options and any other
// field carried over. kInvalidRequest naming the field for a missing/ill-typed prompt, echo: true,
// suffix, logprobs, best_of > 1 or n > 1. Pure.
Result<Json> completions_request_to_chat(const Json& body);

// chat.completion -> text_completion: "cmpl-" id, choices[{"text","index","logprobs":null,
// "finish_reason"}], created, model, usage, system_fingerprint. Pure.
Json chat_to_text_completion(const Json& completion);

// chat.completion.chunk -> the text_completion stream chunk (the delta's content as "text";
// a usage-only chunk keeps its empty choices and its usage). Pure.
Json chat_chunk_to_text_completion(const Json& chunk);

}  // namespace isartor::api
