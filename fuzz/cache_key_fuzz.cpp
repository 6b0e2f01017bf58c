// The L1a cache-key canonicaliser (src/cache/cache_key.*) on any JSON a client can send, in every
// wire format. Checks that the canonical form is a fixed point: its JSON, parsed and
// canonicalised again, gives the same text (so equal requests cannot split into two entries
// however they were spelt), and that a partition always changes the key.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/wire_format.h"
#include "cache/cache_key.h"

using namespace isartor;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const api::Json body = api::parse_json(bytes);
  if (body.is_discarded()) return 0;
  for (auto format : {api::WireFormat::kOpenAI, api::WireFormat::kAnthropic, api::WireFormat::kNative,
                      api::WireFormat::kCompletions}) {
    const std::string canonical = cache::canonical_request(format, body);
    // "v1|<format>|<json>"
    const std::string_view json = std::string_view(canonical).substr(canonical.find('|', 3) + 1);
    const api::Json again = api::parse_json(json);
    if (again.is_discarded() || cache::canonical_request(format, again) != canonical) std::abort();

    const std::string key = cache::exact_cache_key(format, body);
    if (cache::partitioned_key("fuzz-session", key) == key) std::abort();
  }
  return 0;
}
