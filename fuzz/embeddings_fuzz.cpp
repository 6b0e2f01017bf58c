// POST /v1/embeddings: a client body through the request parser and, when it is accepted, the
// response built for it (one small vector per input text, float or base64 as asked).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "api/embeddings.h"
#include "api/wire_format.h"

using namespace isartor;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const api::Json body = api::parse_json(std::string_view(reinterpret_cast<const char*>(data), size));
  if (body.is_discarded()) return 0;
  auto request = api::parse_embeddings_request(body);
  if (!request) return 0;
  const std::vector<std::vector<float>> vectors(request->texts.size(), std::vector<float>{0.25f, -1.0f, 3.5f});
  (void)api::dump_json(api::make_embeddings_response(vectors, request->model, request->base64,
                                                     static_cast<int64_t>(request->texts.size())));
  return 0;
}
