#pragma once
// The wire formats the gateway speaks. The canonical in-process form of a chat request and of
// its answer is the OpenAI chat.completions JSON; other formats are translated at the edges.
#include <nlohmann/json.hpp>
#include <cstddef>
#include <string>
#include <string_view>

namespace isartor::api {

using Json = nlohmann::json;

// kCompletions: OpenAI's legacy /v1/completions (text_completion), and kResponses: OpenAI's
// Responses API (/v1/responses), both served through the chat path.
enum class WireFormat { kOpenAI, kAnthropic, kNative, kCompletions, kResponses };

// "openai", "anthropic", "native", "completions", "responses". Pure.
const char* to_string(WireFormat format);

// Compact serialization that replaces invalid UTF-8 instead of throwing, for everything we put on
// the wire. Pure.
std::string dump_json(const Json& value);

// The deepest nesting of objects and arrays accepted from outside (client bodies, upstream and
// sidecar answers, stream events). Serialising and hashing JSON recurse once per level, so an
// unbounded depth is a stack overflow; real requests (tool schemas included) stay far below.
inline constexpr std::size_t kMaxJsonDepth = 128;

// True when `text` nests objects/arrays deeper than `max_depth` (brackets inside strings do not
// count). One pass, no allocation; does not validate the rest of the syntax. Pure.
bool json_nests_deeper_than(std::string_view text, std::size_t max_depth = kMaxJsonDepth);

// Parses JSON from outside: a discarded value (is_discarded()) when `text` is not JSON or nests
// deeper than kMaxJsonDepth. Never throws. Pure.
Json parse_json(std::string_view text);

}  // namespace isartor::api
