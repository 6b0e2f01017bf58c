#include "api/wire_format.h"

namespace isartor::api {

const char* to_string(WireFormat format) {
  switch (format) {
    case WireFormat::kOpenAI: return "openai";
    case WireFormat::kAnthropic: return "anthropic";
    case WireFormat::kNative: return "native";
  }
  return "openai";
}

std::string dump_json(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace isartor::api
