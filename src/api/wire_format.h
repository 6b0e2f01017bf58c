#pragma once
// The wire formats the gateway speaks. The canonical in-process form of a chat request and of
// its answer is the OpenAI chat.completions JSON; other formats are translated at the edges.
#include <nlohmann/json.hpp>
#include <string>

namespace isartor::api {

using Json = nlohmann::json;

enum class WireFormat { kOpenAI, kAnthropic, kNative };

// "openai", "anthropic", "native". Pure.
const char* to_string(WireFormat format);

// Compact serialization that replaces invalid UTF-8 instead of throwing, for everything we put on
// the wire. Pure.
std::string dump_json(const Json& value);

}  // namespace isartor::api
