// L2 generator (in-process llama.cpp, continuous batching) as a Markdown table: load time, RSS
// after load, classification latency (label logits and label grammar), time to first token and tokens/s of one request, and the
// throughput of 8 concurrent requests batched (8 slots) vs. one at a time (1 slot).
//
// usage: generator_bench MODEL.gguf [--rounds N] [--max-tokens N] [--threads N] [--gpu-layers N]
// With the tiny random model of scripts/make_tiny_gguf.py the figures show the gateway-side
// overheads only; with a real model (gemma-2-2b-it Q4_K_M) they are the L2 latencies.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "inference/llama_generator.h"

namespace isartor::inference {
namespace {

namespace fs = std::filesystem;
using bench::Clock;
using bench::elapsed_ms;
using bench::percentile;

double rss_mib() { return bench::status_mib("VmRSS"); }

const std::vector<std::string>& prompts() { return bench::sample_prompts(); }

std::vector<ChatMessage> ask(const std::string& text) {
  return {{"user", text}};
}

struct Timed {
  double ttft_ms = 0;   // call to first streamed piece
  double total_ms = 0;  // call to done
  int tokens = 0;
};

// One generate call, timed from the call.
std::future<Timed> timed_generate(Generator& generator, const std::string& prompt, int max_tokens) {
  struct State {
    Clock::time_point start = Clock::now();
    std::once_flag first;
    Timed timed;
    std::promise<Timed> promise;
  };
  auto state = std::make_shared<State>();
  auto future = state->promise.get_future();
  GenerateOptions options;
  options.max_tokens = max_tokens;
  generator.generate_async(
      ask(prompt), options,
      [state](std::string_view) {
        std::call_once(state->first, [&] { state->timed.ttft_ms = elapsed_ms(state->start); });
      },
      [state](Result<Generation> result) {
        if (!result) {
          fmt::print(stderr, "generation failed: {}\n", result.error().message);
          std::abort();
        }
        state->timed.total_ms = elapsed_ms(state->start);
        state->timed.tokens = result->completion_tokens;
        state->promise.set_value(state->timed);
      });
  return future;
}

struct Classified {
  std::vector<double> ms;
  int simple = 0;
};

// `rounds` classifications one after another, after a warm-up (the first decode allocates buffers).
Classified classify_rounds(Generator& generator, int rounds) {
  (void)generator.classify(ask("warm up"));
  Classified out;
  for (int i = 0; i < rounds; ++i) {
    const auto t0 = Clock::now();
    auto label = generator.classify(ask(prompts()[static_cast<size_t>(i) % prompts().size()]));
    out.ms.push_back(elapsed_ms(t0));
    if (label && *label == Label::kSimple) ++out.simple;
  }
  return out;
}

// `requests` prompts submitted at once; generated tokens per second of wall time.
double throughput(Generator& generator, int requests, int max_tokens) {
  const auto start = Clock::now();
  std::vector<std::future<Timed>> futures;
  for (int i = 0; i < requests; ++i) {
    futures.push_back(timed_generate(generator, prompts()[static_cast<size_t>(i) % prompts().size()], max_tokens));
  }
  int tokens = 0;
  for (auto& f : futures) tokens += f.get().tokens;
  return tokens / (elapsed_ms(start) / 1000.0);
}

int run(int argc, char** argv) {
  bench::init_logging();
  if (argc < 2) {
    fmt::print(stderr, "usage: {} MODEL.gguf [--rounds N] [--max-tokens N] [--threads N] [--gpu-layers N]\n", argv[0]);
    return 2;
  }
  const fs::path model = argv[1];
  int rounds = 40, max_tokens = 64;
  LlamaGeneratorOptions options;
  options.max_sequences = 8;
  options.context_tokens = 1024;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--rounds")
      rounds = value;
    else if (flag == "--max-tokens")
      max_tokens = value;
    else if (flag == "--threads")
      options.threads = value;
    else if (flag == "--gpu-layers")
      options.gpu_layers = value;
  }

  const double rss_before = rss_mib();
  auto t0 = Clock::now();
  auto loaded = LlamaGenerator::load(model, options);
  if (!loaded) {
    fmt::print(stderr, "load failed: {}\n", loaded.error().message);
    return 1;
  }
  const double load_ms = elapsed_ms(t0);
  const double rss_loaded = rss_mib();
  LlamaGenerator& generator = **loaded;

  Classified logits = classify_rounds(generator, rounds);

  GenerateOptions sample_options;
  sample_options.max_tokens = max_tokens;
  auto sample = generator.generate(ask(prompts().front()), sample_options);
  if (sample) fmt::print("sample answer to \"{}\": {:?}\n", prompts().front(), sample->text.substr(0, 160));

  std::vector<double> ttft, tokens_per_s, total;
  for (int i = 0; i < std::max(1, rounds / 4); ++i) {
    const Timed t = timed_generate(generator, prompts()[static_cast<size_t>(i) % prompts().size()], max_tokens).get();
    ttft.push_back(t.ttft_ms);
    total.push_back(t.total_ms);
    if (t.total_ms > t.ttft_ms && t.tokens > 1)
      tokens_per_s.push_back((t.tokens - 1) / ((t.total_ms - t.ttft_ms) / 1000.0));
  }
  const double batched = throughput(generator, 8, max_tokens);
  const int max_in_decode = generator.stats().max_sequences_in_decode;
  loaded->reset();

  // One slot, classifying under the label grammar: the unbatched and grammar figures.
  options.max_sequences = 1;
  options.classify_mode = ClassifyMode::kGrammar;
  auto serial = LlamaGenerator::load(model, options);
  if (!serial) {
    fmt::print(stderr, "load failed: {}\n", serial.error().message);
    return 1;
  }
  Classified grammar = classify_rounds(**serial, rounds);
  const double unbatched = throughput(**serial, 8, max_tokens);

  const int threads = options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  fmt::print("model: {} ({:.1f} MiB), {} thread(s), {} GPU layer(s), max_tokens {}, {} rounds\n\n",
             model.filename().string(), static_cast<double>(fs::file_size(model)) / (1 << 20), threads,
             options.gpu_layers, max_tokens, rounds);
  fmt::print("| metric | value |\n|---|---:|\n");
  fmt::print("| load (8 slots x {} tokens) | {:.0f} ms |\n", options.context_tokens, load_ms);
  fmt::print("| RSS after load | {:.0f} MiB (+{:.0f}) |\n", rss_loaded, rss_loaded - rss_before);
  fmt::print("| classification (logits) p50 / p99 | {:.1f} / {:.1f} ms ({} of {} SIMPLE) |\n",
             percentile(logits.ms, 0.5), percentile(logits.ms, 0.99), logits.simple, rounds);
  fmt::print("| classification (grammar) p50 / p99 | {:.1f} / {:.1f} ms ({} of {} SIMPLE) |\n",
             percentile(grammar.ms, 0.5), percentile(grammar.ms, 0.99), grammar.simple, rounds);
  fmt::print("| time to first token p50 / p99 (1 request) | {:.1f} / {:.1f} ms |\n", percentile(ttft, 0.5),
             percentile(ttft, 0.99));
  fmt::print("| answer latency p50, {} tokens max (1 request) | {:.1f} ms |\n", max_tokens, percentile(total, 0.5));
  fmt::print("| decode tokens/s p50 (1 request) | {:.0f} |\n", percentile(tokens_per_s, 0.5));
  fmt::print("| 8 concurrent, batched (8 slots; max {} seqs/decode) | {:.0f} tokens/s |\n", max_in_decode, batched);
  fmt::print("| 8 concurrent, unbatched (1 slot) | {:.0f} tokens/s |\n", unbatched);
  fmt::print("| batching speed-up | {:.2f}x |\n", batched / unbatched);
  return 0;
}

}  // namespace
}  // namespace isartor::inference

int main(int argc, char** argv) {
  return isartor::inference::run(argc, argv);
}
