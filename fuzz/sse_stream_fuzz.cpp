// An upstream's SSE body as the providers read it (src/providers: SseChunkStream over SseParser,
// then the OpenAI decoder's JSON parse or the Anthropic stream decoder), and what the gateway
// makes of the chunks: the assembled completion (for the cache), the Anthropic event stream
// and the legacy text_completion chunks. The first byte sets the piece size the body is fed in.
// Checks the parser's contract: any split of the bytes yields the same events as one feed, and
// format_sse of an event parses back to that event.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "api/anthropic_inbound.h"
#include "api/anthropic_outbound.h"
#include "api/completions.h"
#include "api/openai.h"
#include "api/sse.h"
#include "api/wire_format.h"

using namespace isartor;

namespace {

std::vector<api::SseEvent> parse_all(std::string_view bytes, size_t piece) {
  api::SseParser parser;
  std::vector<api::SseEvent> events;
  for (size_t at = 0; at < bytes.size(); at += piece) {
    for (auto& event : parser.feed(bytes.substr(at, piece))) events.push_back(std::move(event));
  }
  for (auto& event : parser.finish()) events.push_back(std::move(event));
  return events;
}

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = 1 + data[0] % 16;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::vector<api::SseEvent> events = parse_all(bytes, bytes.size() + 1);
  check(parse_all(bytes, piece) == events);

  api::AnthropicStreamDecoder anthropic;
  api::AnthropicStreamEncoder encoder("claude-fuzz");
  api::CompletionAssembler from_anthropic;
  api::CompletionAssembler from_openai;
  for (const api::SseEvent& event : events) {
    check(parse_all(api::format_sse(event), 64) == std::vector<api::SseEvent>{event});
    if (!anthropic.done()) {
      if (auto chunks = anthropic.on_event(event)) {
        for (const api::Json& chunk : *chunks) {
          from_anthropic.add_chunk(chunk);
          for (const api::SseEvent& out : encoder.on_chunk(chunk)) (void)api::format_sse(out);
          (void)api::dump_json(api::chat_chunk_to_text_completion(chunk));
        }
      }
    }
    const api::Json chunk = api::parse_json(event.data);
    if (chunk.is_object()) from_openai.add_chunk(chunk);
  }
  for (const api::SseEvent& out : encoder.finish()) (void)api::format_sse(out);
  (void)api::dump_json(from_anthropic.completion());
  (void)api::dump_json(from_openai.completion());
  return 0;
}
