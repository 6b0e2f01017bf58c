// Latency of the in-process embedder (all-MiniLM-L6-v2 on llama.cpp) as a Markdown table:
// one short prompt, one long (truncated to 256 word pieces), a batch of 32 in one call, and 8
// concurrent callers with one prompt each; for one worker batching everything on all threads
// and for a pool of single-threaded contexts. Plus resident memory after load.
//
// usage: embedder_bench MODEL [--rounds N]
//   MODEL: a sentence-transformers checkout (converted to F16 GGUF under $TMPDIR first) or a .gguf
// Link: isartor_inference (plus isartor_llama through it). No Google Benchmark: percentiles of
// whole requests are what the semantic-cache layer sees.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "inference/bert_gguf.h"
#include "inference/llama_embedder.h"

namespace isartor::inference {
namespace {

namespace fs = std::filesystem;
using bench::Clock;
using bench::elapsed_ms;
using bench::status_mib;

struct Stats {
  double p50_ms = 0, p99_ms = 0, texts_per_s = 0;
};

Stats summarize(const std::vector<double>& latencies_ms, size_t texts, double wall_s) {
  return {bench::percentile(latencies_ms, 0.5), bench::percentile(latencies_ms, 0.99),
          static_cast<double>(texts) / wall_s};
}

std::vector<std::string> prompts() { return bench::sample_prompts(); }

// Sequential calls of embed(texts); one latency per call.
Stats sequential(Embedder& embedder, const std::vector<std::string>& texts, int rounds) {
  std::vector<double> latencies;
  const auto start = Clock::now();
  for (int i = 0; i < rounds; ++i) {
    const auto t0 = Clock::now();
    if (!embedder.embed(texts)) std::abort();
    latencies.push_back(elapsed_ms(t0));
  }
  return summarize(latencies, texts.size() * static_cast<size_t>(rounds), elapsed_ms(start) / 1000.0);
}

// `callers` threads, each issuing `rounds` single-prompt requests back to back.
Stats concurrent(Embedder& embedder, int callers, int rounds) {
  const auto texts = prompts();
  std::vector<std::vector<double>> per_thread(static_cast<size_t>(callers));
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int c = 0; c < callers; ++c) {
    threads.emplace_back([&, c] {
      for (int i = 0; i < rounds; ++i) {
        const auto t0 = Clock::now();
        if (!embedder.embed({texts[static_cast<size_t>(c + i) % texts.size()]})) std::abort();
        per_thread[static_cast<size_t>(c)].push_back(elapsed_ms(t0));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const double wall_s = elapsed_ms(start) / 1000.0;
  std::vector<double> all;
  for (const auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
  return summarize(all, all.size(), wall_s);
}

int run(int argc, char** argv) {
  bench::init_logging();
  if (argc < 2) {
    fmt::print(stderr, "usage: {} MODEL_DIR_OR_GGUF [--rounds N]\n", argv[0]);
    return 2;
  }
  const fs::path model = argv[1];
  const int rounds = argc >= 4 && std::string(argv[2]) == "--rounds" ? std::atoi(argv[3]) : 40;
  fs::path gguf = model;
  if (fs::is_directory(model)) {
    gguf = fs::temp_directory_path() / "isartor-embedder-bench.f16.gguf";
    const auto t0 = Clock::now();
    auto converted = ensure_bert_gguf(model, gguf);
    if (!converted) {
      fmt::print(stderr, "conversion failed: {}\n", converted.error().message);
      return 1;
    }
    fmt::print("conversion (or reuse): {:.0f} ms, {:.1f} MiB\n\n", elapsed_ms(t0),
               static_cast<double>(fs::file_size(gguf)) / (1 << 20));
  }

  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  struct Config {
    std::string name;
    LlamaEmbedderOptions options;
  };
  std::vector<Config> configs = {{"1 worker x 1 thread", {.threads = 1, .workers = 1}}};
  if (hardware > 1) {
    configs.push_back({fmt::format("1 worker x {} threads", hardware), {.threads = hardware, .workers = 1}});
    configs.push_back(
        {fmt::format("{} workers x 1 thread (context pool)", hardware), {.threads = 1, .workers = hardware}});
  }
  std::string long_text;
  for (int i = 0; i < 60; ++i) long_text += "the gateway caches answers to repeated prompts ";
  std::vector<std::string> batch;
  for (size_t i = 0; batch.size() < 32; ++i)
    batch.push_back(prompts()[i % prompts().size()] + " #" + std::to_string(i));

  fmt::print("| configuration | scenario | p50 ms | p99 ms | texts/s |\n|---|---|---:|---:|---:|\n");
  for (const Config& config : configs) {
    const double rss_before = status_mib("VmRSS");
    auto loaded = LlamaEmbedder::load(gguf, config.options);
    if (!loaded) {
      fmt::print(stderr, "load failed: {}\n", loaded.error().message);
      return 1;
    }
    Embedder& embedder = **loaded;
    const double rss_loaded = status_mib("VmRSS");
    (void)embedder.embed(prompts());  // warm-up: first graph build and page-in
    const auto row = [&](std::string_view scenario, const Stats& s) {
      fmt::print("| {} | {} | {:.2f} | {:.2f} | {:.0f} |\n", config.name, scenario, s.p50_ms, s.p99_ms, s.texts_per_s);
    };
    row("1 short prompt", sequential(embedder, {prompts()[0]}, rounds));
    row("1 long prompt (256 pieces)", sequential(embedder, {long_text}, std::max(1, rounds / 4)));
    row("batch of 32 in one call", sequential(embedder, batch, std::max(1, rounds / 4)));
    row("8 concurrent callers x 1 prompt", concurrent(embedder, 8, rounds));
    fmt::print("| {} | RSS after load: +{:.0f} MiB (now {:.0f} MiB, peak {:.0f} MiB) | | | |\n", config.name,
               rss_loaded - rss_before, status_mib("VmRSS"), status_mib("VmHWM"));
  }
  return 0;
}

}  // namespace
}  // namespace isartor::inference

int main(int argc, char** argv) {
  return isartor::inference::run(argc, argv);
}
