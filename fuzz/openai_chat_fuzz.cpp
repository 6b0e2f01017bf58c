// POST /v1/chat/completions: a client body through validation and, when valid, the translation
// the Anthropic provider makes of it; the same bytes as an upstream's chat.completion through the
// answer translations (to an Anthropic message, to a legacy text_completion, replayed as stream
// chunks and reassembled).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/anthropic_inbound.h"
#include "api/anthropic_outbound.h"
#include "api/completions.h"
#include "api/openai.h"
#include "api/wire_format.h"

using namespace isartor;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const api::Json body = api::parse_json(std::string_view(reinterpret_cast<const char*>(data), size));
  if (body.is_discarded()) return 0;
  if (api::validate_chat_request(body)) (void)api::dump_json(api::openai_request_to_anthropic(body, 4096));

  (void)api::dump_json(api::openai_response_to_anthropic(body));
  (void)api::dump_json(api::chat_to_text_completion(body));
  api::CompletionAssembler assembler;
  for (const api::Json& chunk : api::completion_to_chunks(body, 3)) assembler.add_chunk(chunk);
  (void)api::dump_json(assembler.completion());
  return 0;
}
