#pragma once
// `isartor models eval`: how well a local model routes, on a labelled set of prompts. Each prompt
// is classified as L2 would classify it (one user message), one at a time, in each requested
// ClassifyMode; the report gives accuracy, how many SIMPLE prompts L2 would answer, how many
// COMPLEX ones it would wrongly keep, latency, and accuracy per category. Runs on any GGUF.
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/result.h"
#include "inference/generator.h"

namespace isartor::app {

// One line of the evaluation set: {"id": "s001", "label": "SIMPLE", "category": "greeting",
// "prompt": "hi there"}.
struct LabelledPrompt {
  std::string id;
  inference::Label label = inference::Label::kComplex;
  std::string category;
  std::string prompt;
};

// Reads a JSONL evaluation set. Errors: kNotFound (no file), kInvalidRequest naming the line of a
// malformed row (not JSON, a missing field, a label other than SIMPLE/COMPLEX). Blocking.
Result<std::vector<LabelledPrompt>> load_labelled_prompts(const std::filesystem::path& path);

// One classification of the evaluation.
struct Verdict {
  inference::Label label = inference::Label::kComplex;
  double ms = 0;
  bool ok = false;  // false: the generator failed (counted as COMPLEX, as L2 would pass it on)
};

struct ModeReport {
  inference::ClassifyMode mode = inference::ClassifyMode::kLogits;
  std::vector<Verdict> verdicts;  // one per prompt, in order
};

// Classifies every prompt with `generator`, one at a time, reporting progress on stderr. Blocking.
ModeReport evaluate(inference::Generator& generator, inference::ClassifyMode mode,
                    const std::vector<LabelledPrompt>& prompts);

// The Markdown report: a summary row per mode, then accuracy per category; `errors` adds the
// misclassified prompts. Pure.
std::string format_report(const std::string& model, const std::vector<LabelledPrompt>& prompts,
                          const std::vector<ModeReport>& reports, bool errors);

struct RouterEvalOptions {
  std::filesystem::path data;                   // the JSONL evaluation set
  std::vector<inference::ClassifyMode> modes;  // each is evaluated with a freshly loaded model
  std::size_t limit = 0;                        // the first N prompts only; 0: all
  bool errors = false;                          // list the misclassified prompts
};

// Resolves the configured L2 model (ISARTOR__LAYER2__MODEL_PATH or the hub, as the gateway does),
// loads it once per mode with the ISARTOR__LAYER2__* settings and returns format_report(). Errors:
// those of load_labelled_prompts, resolve_local_model_gguf and LlamaGenerator::load. Blocking.
Result<std::string> run_router_eval(const config::Config& config, const RouterEvalOptions& options);

}  // namespace isartor::app
