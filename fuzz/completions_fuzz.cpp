// POST /v1/completions (legacy): a client body through the translation to a chat request and
// the chat validation; the same bytes as a chat.completion and as a stream chunk through the
// translations back to text_completion.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/completions.h"
#include "api/openai.h"
#include "api/wire_format.h"

using namespace isartor;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const api::Json body = api::parse_json(std::string_view(reinterpret_cast<const char*>(data), size));
  if (body.is_discarded()) return 0;
  if (auto chat = api::completions_request_to_chat(body)) (void)api::validate_chat_request(*chat);

  (void)api::dump_json(api::chat_to_text_completion(body));
  (void)api::dump_json(api::chat_chunk_to_text_completion(body));
  return 0;
}
