// POST /v1/messages: a client body through the translation to the canonical OpenAI form and the
// validation that form then gets, and back (what the Anthropic provider sends); the same bytes
// as an upstream's Anthropic message through the answer translation and back to the client's
// format.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/anthropic_inbound.h"
#include "api/anthropic_outbound.h"
#include "api/openai.h"
#include "api/wire_format.h"

using namespace isartor;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const api::Json body = api::parse_json(std::string_view(reinterpret_cast<const char*>(data), size));
  if (body.is_discarded()) return 0;
  if (auto openai = api::anthropic_request_to_openai(body)) {
    if (api::validate_chat_request(*openai)) (void)api::dump_json(api::openai_request_to_anthropic(*openai, 4096));
  }

  const api::Json completion = api::anthropic_response_to_openai(body);
  (void)api::dump_json(api::openai_response_to_anthropic(completion));
  return 0;
}
