// POST /v1/responses: a client body through the translation to a chat request and the chat
// validation; the same bytes as a chat.completion rendered as a response object, and as stream
// chunks through the Responses event encoder (finished, or failed midway).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/responses.h"
#include "api/wire_format.h"

using namespace isartor;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const api::Json body = api::parse_json(std::string_view(reinterpret_cast<const char*>(data), size));
  if (body.is_discarded()) return 0;
  (void)api::responses_request_to_chat(body);
  const api::Json echo = body.is_object() ? api::responses_echo(body) : api::Json::object();
  (void)api::dump_json(api::chat_to_response(body, echo));

  api::ResponsesStreamEncoder finished(echo, "m");
  api::ResponsesStreamEncoder failed(echo, "m");
  for (int i = 0; i < 2; ++i) {
    (void)finished.on_chunk(body);
    (void)failed.on_chunk(body);
  }
  (void)finished.finish();
  (void)failed.fail(Error(ErrorCode::kUpstream, "cut"));
  return 0;
}
