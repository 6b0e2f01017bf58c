#pragma once
// L1a exact-cache key: SHA-256 over a canonical form of everything that determines the answer:
// the route's wire format, the model (after alias), system prompt, all messages, tools and
// tool_choice, response_format and the sampling parameters (temperature, top_p, max_tokens, stop,
// seed, n, penalties, ...) and any unknown field. Never the API key, and not the top-level
// "stream"/"stream_options"/"user"/"metadata"/"store"/"service_tier": a streamed and a
// non-streamed request share an entry. Numbers are canonicalised (1 == 1.0 == 1e0, -0 == 0) and
// object keys sorted, so field order and number spelling do not split entries; strings are
// compared exactly, and an absent field is not equated with its default.
#include <string>
#include <string_view>

#include "api/wire_format.h"

namespace isartor::cache {

// Hex SHA-256 of the canonical form of an OpenAI-form request body. Pure, thread-safe.
std::string exact_cache_key(api::WireFormat format, const api::Json& openai_body);

// `key` inside a cache partition (a namespace or session): unchanged for the shared partition
// (""), else prefixed with the partition's hash, so entries of different partitions never meet.
// Pure, thread-safe.
std::string partitioned_key(std::string_view partition, std::string key);

// The canonical text that is hashed, "v1|<wire format>|<compact sorted JSON>" (exposed for tests
// and debugging). Never throws on any JSON value (deep nesting, invalid UTF-8). Pure, thread-safe.
std::string canonical_request(api::WireFormat format, const api::Json& openai_body);

}  // namespace isartor::cache
