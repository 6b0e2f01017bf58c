#pragma once
// OpenAI chat.completions wire format: validation, building responses, assembling a streamed
// answer into a whole completion (for the cache) and replaying a completion as stream chunks.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "api/wire_format.h"
#include "core/result.h"

namespace isartor::api {

// Checks a /v1/chat/completions body: object; "messages" a non-empty array of objects with a
// string "role" and "content" string|array|null (null only with tool_calls); optional "model"
// string, "stream" bool, "temperature"/"top_p" numbers, "max_tokens"/"max_completion_tokens"/"n"
// integers, "tools" array. The error names the field in `param`. Pure.
Result<void> validate_chat_request(const Json& body);

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// A chat.completion object with one assistant choice. Pure.
Json make_completion(const std::string& id, const std::string& model, int64_t created,
                     const std::string& text, const std::string& finish_reason, const Usage& usage);

// A chat.completion.chunk with one choice; `delta` is e.g. {"content":"Hi"}; finish_reason null
// when empty. Pure.
Json make_chunk(const std::string& id, const std::string& model, int64_t created, const Json& delta,
                const std::string& finish_reason);

// "chatcmpl-" + 24 random alphanumerics. Thread-safe.
std::string new_completion_id();

// Text of choices[0].message.content ("" when absent or not a string). Pure.
std::string completion_text(const Json& completion);

// Text of a chat.completion.chunk's choices[0].delta.content ("" when absent or not a string). Pure.
std::string chunk_text(const Json& chunk);

// choices[0].finish_reason of a completion or chunk ("" when absent, null or not a string). Pure.
std::string finish_reason_of(const Json& completion_or_chunk);

// The token counts of a completion's or chunk's "usage" (0 for what is absent or ill-typed). Pure.
Usage usage_of(const Json& completion_or_chunk);
// The same from a completion as compact JSON text (what the caches store), without parsing it:
// the top-level "usage" object's members, found by one walk over the text. Pure.
Usage usage_in_text(std::string_view completion_json);

// Merges chat.completion.chunk objects into one chat.completion: content concatenated, tool_calls
// merged by index (arguments concatenated), role, finish_reason, usage, id/model/created kept.
// Not thread-safe; one per stream.
class CompletionAssembler {
 public:
  void add_chunk(const Json& chunk);
  // True once a chunk carried a non-null finish_reason.
  bool finished() const { return finished_; }
  Json completion() const;

 private:
  Json id_, model_, created_, usage_, system_fingerprint_;
  std::string role_ = "assistant";
  std::string content_;
  bool has_content_ = false;
  Json tool_calls_ = Json::array();
  std::vector<int64_t> tool_indices_;  // the stream "index" of each entry of tool_calls_
  std::string finish_reason_;
  bool finished_ = false;
};

// Replays a chat.completion as chunks: a role chunk, content in pieces of about `piece_chars`
// (split at UTF-8 boundaries), tool_calls if any, then a finish chunk with usage. A text gets at
// most kMaxReplayPieces pieces, longer ones for a long text, so that a replay costs memory in
// proportion to the answer (a 1 MB answer in 16-byte pieces took 112 MB). Pure.
inline constexpr size_t kMaxReplayPieces = 64;
std::vector<Json> completion_to_chunks(const Json& completion, size_t piece_chars = 16);

}  // namespace isartor::api
