#include "api/wire_format.h"

namespace isartor::api {

const char* to_string(WireFormat format) {
  switch (format) {
    case WireFormat::kOpenAI: return "openai";
    case WireFormat::kAnthropic: return "anthropic";
    case WireFormat::kNative: return "native";
    case WireFormat::kCompletions: return "completions";
    case WireFormat::kResponses: return "responses";
  }
  return "openai";
}

std::string dump_json(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

bool json_nests_deeper_than(std::string_view text, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return true;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return false;
}

Json parse_json(std::string_view text) {
  if (json_nests_deeper_than(text)) return Json(Json::value_t::discarded);
  return Json::parse(text, nullptr, false);
}

}  // namespace isartor::api
