#include "app/router_eval.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>

#include "api/wire_format.h"
#include "inference/llama_generator.h"
#include "inference/model_manager.h"
#include "core/stats.h"

namespace isartor::app {

namespace {

std::unexpected<Error> bad_line(std::size_t line, std::string_view why) {
  return fail(ErrorCode::kInvalidRequest, fmt::format("line {}: {}", line, why));
}

std::string percent(std::size_t part, std::size_t whole) {
  return whole == 0 ? "–" : fmt::format("{:.1f} %", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

// The counts a summary row is made of.
struct Tally {
  std::size_t simple = 0, complex = 0;  // prompts of each label
  std::size_t simple_kept = 0;          // SIMPLE prompts labelled SIMPLE: L2 would answer them
  std::size_t complex_kept = 0;         // COMPLEX prompts labelled COMPLEX: sent to L3, as they should
  std::size_t failures = 0;
};

Tally tally(const std::vector<LabelledPrompt>& prompts, const ModeReport& report) {
  Tally t;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const bool simple = prompts[i].label == inference::Label::kSimple;
    const Verdict& v = report.verdicts[i];
    (simple ? t.simple : t.complex) += 1;
    if (!v.ok) ++t.failures;
    if (v.label == prompts[i].label) (simple ? t.simple_kept : t.complex_kept) += 1;
  }
  return t;
}

}  // namespace

Result<std::vector<LabelledPrompt>> load_labelled_prompts(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return fail(ErrorCode::kNotFound, "cannot read the evaluation set " + path.string());
  std::vector<LabelledPrompt> out;
  std::size_t number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto row = api::Json::parse(line, nullptr, false);
    if (!row.is_object()) return bad_line(number, "not a JSON object");
    for (const char* key : {"id", "label", "category", "prompt"}) {
      if (!row.contains(key) || !row[key].is_string()) return bad_line(number, fmt::format("'{}' must be a string", key));
    }
    const std::string label = row["label"].get<std::string>();
    if (label != inference::label_name(inference::Label::kSimple) &&
        label != inference::label_name(inference::Label::kComplex)) {
      return bad_line(number, "'label' must be SIMPLE or COMPLEX");
    }
    out.push_back({row["id"].get<std::string>(), inference::parse_label(label), row["category"].get<std::string>(),
                   row["prompt"].get<std::string>()});
  }
  if (out.empty()) return fail(ErrorCode::kInvalidRequest, path.string() + " holds no prompts");
  return out;
}

ModeReport evaluate(inference::Generator& generator, inference::ClassifyMode mode,
                    const std::vector<LabelledPrompt>& prompts) {
  ModeReport report;
  report.mode = mode;
  (void)generator.classify({{"user", "Hello"}});  // warm-up, not timed
  const std::size_t step = std::max<std::size_t>(1, prompts.size() / 10);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto label = generator.classify({{"user", prompts[i].prompt}});
    Verdict v;
    v.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    v.ok = label.has_value();
    v.label = label.value_or(inference::Label::kComplex);
    report.verdicts.push_back(v);
    if ((i + 1) % step == 0 || i + 1 == prompts.size()) {
      std::fprintf(stderr, "[eval] %s: %zu/%zu\n", std::string(inference::classify_mode_name(mode)).c_str(), i + 1,
                   prompts.size());
    }
  }
  return report;
}

std::string format_report(const std::string& model, const std::vector<LabelledPrompt>& prompts,
                          const std::vector<ModeReport>& reports, bool errors) {
  std::string out = fmt::format("model: {}\nprompts: {}\n\n", model, prompts.size());
  out +=
      "| mode | accuracy | SIMPLE answered by L2 | COMPLEX sent to L3 | SIMPLE verdicts that were right | "
      "p50 ms | p99 ms | failures |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const ModeReport& r : reports) {
    const Tally t = tally(prompts, r);
    const std::size_t said_simple = t.simple_kept + (t.complex - t.complex_kept);
    std::vector<double> ms;
    for (const Verdict& v : r.verdicts) ms.push_back(v.ms);
    out += fmt::format("| {} | {} | {} | {} | {} | {:.1f} | {:.1f} | {} |\n", inference::classify_mode_name(r.mode),
                       percent(t.simple_kept + t.complex_kept, prompts.size()), percent(t.simple_kept, t.simple),
                       percent(t.complex_kept, t.complex), percent(t.simple_kept, said_simple), percentile(ms, 0.5),
                       percentile(ms, 0.99), t.failures);
  }
  // Per category: label, size, accuracy per mode.
  std::map<std::pair<std::string, std::string>, std::vector<std::size_t>> categories;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    categories[{std::string(inference::label_name(prompts[i].label)), prompts[i].category}].push_back(i);
  }
  out += "\n| label | category | prompts |";
  for (const ModeReport& r : reports) out += fmt::format(" {} correct |", inference::classify_mode_name(r.mode));
  out += "\n|---|---|---:|";
  for (std::size_t k = 0; k < reports.size(); ++k) out += "---:|";
  out += "\n";
  for (const auto& [key, indexes] : categories) {
    out += fmt::format("| {} | {} | {} |", key.first, key.second, indexes.size());
    for (const ModeReport& r : reports) {
      const auto right = std::count_if(indexes.begin(), indexes.end(),
                                       [&](std::size_t i) { return r.verdicts[i].label == prompts[i].label; });
      out += fmt::format(" {} |", percent(static_cast<std::size_t>(right), indexes.size()));
    }
    out += "\n";
  }
  if (errors) {
    for (const ModeReport& r : reports) {
      out += fmt::format("\nmisclassified ({}):\n", inference::classify_mode_name(r.mode));
      for (std::size_t i = 0; i < prompts.size(); ++i) {
        if (r.verdicts[i].label == prompts[i].label) continue;
        out += fmt::format("  {} [{} {}] {}\n", prompts[i].id, inference::label_name(prompts[i].label),
                           prompts[i].category, prompts[i].prompt);
      }
    }
  }
  return out;
}

Result<std::string> run_router_eval(const config::Config& config, const RouterEvalOptions& options) {
  ASSIGN_OR_RETURN(auto prompts, load_labelled_prompts(options.data));
  if (options.limit > 0 && options.limit < prompts.size()) prompts.resize(options.limit);
  ASSIGN_OR_RETURN(auto gguf, inference::resolve_local_model_gguf(config, inference::hub_config_from_env(config)));
  std::vector<ModeReport> reports;
  for (inference::ClassifyMode mode : options.modes) {
    inference::LlamaGeneratorOptions generator_options = inference::local_model_options(config);
    generator_options.classify_mode = mode;
    ASSIGN_OR_RETURN(auto generator, inference::LlamaGenerator::load(gguf, generator_options));
    reports.push_back(evaluate(*generator, mode, prompts));
  }
  return format_report(gguf.filename().string(), prompts, reports, options.errors);
}

}  // namespace isartor::app
