// Micro-benchmarks for the L1a exact cache: key derivation per request and MemoryBackend lookups.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "cache/cache_key.h"
#include "cache/memory_backend.h"

namespace isartor::cache {
namespace {

using api::Json;
using api::WireFormat;

constexpr std::size_t kEntries = 10000;

// A typical ~1 KB chat request: system prompt, a few turns, one tool and sampling parameters.
Json typical_request() {
  const std::string filler =
      "Please keep the answer short, cite the relevant section and avoid speculation. "
      "Use plain text. ";
  Json body = {
      {"model", "gpt-4o-mini"},
      {"temperature", 0.2},
      {"max_tokens", 512},
      {"stream", true},
      {"messages",
       Json::array({
           {{"role", "system"}, {"content", "You are a support assistant for Acme. " + filler}},
           {{"role", "user"}, {"content", "How do I rotate my API key? " + filler}},
           {{"role", "assistant"}, {"content", "Open Settings, then Keys, then Rotate. " + filler}},
           {{"role", "user"}, {"content", "And does the old key stop working at once? " + filler}},
       })},
      {"tools", Json::array({{{"type", "function"},
                              {"function",
                               {{"name", "lookup_docs"},
                                {"description", "Search the product documentation."},
                                {"parameters",
                                 {{"type", "object"},
                                  {"properties", {{"query", {{"type", "string"}}}}},
                                  {"required", {"query"}}}}}}}})},
  };
  return body;
}

void BM_ExactCacheKey(benchmark::State& state) {
  const Json body = typical_request();
  const std::size_t bytes = body.dump().size();
  for (auto _ : state) {
    benchmark::DoNotOptimize(exact_cache_key(WireFormat::kOpenAI, body));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["body_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_ExactCacheKey);

// Keys shaped like real ones (64 hex chars); `salt` separates the stored set from the missing one.
std::vector<std::string> make_keys(const char* salt) {
  std::vector<std::string> keys;
  keys.reserve(kEntries);
  for (std::size_t i = 0; i < kEntries; ++i) {
    keys.push_back(exact_cache_key(WireFormat::kOpenAI, Json{{salt, i}}));
  }
  return keys;
}

const std::vector<std::string>& stored_keys() {
  static const std::vector<std::string> keys = make_keys("stored");
  return keys;
}

const std::vector<std::string>& missing_keys() {
  static const std::vector<std::string> keys = make_keys("missing");
  return keys;
}

// Shared by all benchmark threads, filled once with kEntries ~1 KB answers; twice the capacity so
// an uneven shard spread evicts none of them.
MemoryBackend& filled_cache() {
  static MemoryBackend cache(2 * kEntries, std::chrono::seconds(3600));
  static const bool filled = [] {
    for (const auto& key : stored_keys()) cache.put(key, std::string(1024, 'a'));
    return true;
  }();
  benchmark::DoNotOptimize(filled);
  return cache;
}

void run_gets(benchmark::State& state, const std::vector<std::string>& keys) {
  MemoryBackend& cache = filled_cache();
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cache.get(keys[i++ % keys.size()]));
  }
}

void BM_MemoryGetHit(benchmark::State& state) { run_gets(state, stored_keys()); }
BENCHMARK(BM_MemoryGetHit)->Threads(1)->Threads(2)->UseRealTime();

void BM_MemoryGetMiss(benchmark::State& state) { run_gets(state, missing_keys()); }
BENCHMARK(BM_MemoryGetMiss)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace isartor::cache

BENCHMARK_MAIN();
