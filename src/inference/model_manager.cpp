#include "inference/model_manager.h"

#include <algorithm>

#include "core/log.h"
#include "core/sha256.h"
#include "inference/bert_gguf.h"

namespace isartor::inference {

namespace {

// A short stable tag for a folder, so conversions of different checkouts don't collide.
std::string path_tag(const std::filesystem::path& dir) {
  std::string text = std::filesystem::absolute(dir).lexically_normal().string();
  return to_hex(sha256(text), 6);
}

}  // namespace

std::vector<ModelFile> embedding_files(const config::Config& config) {
  if (!config.embedding.model_path.empty()) return {};
  const auto& repo = config.embedding.repo_id;
  const auto& rev = config.embedding.revision;
  // What bert_gguf.h reads from a sentence-transformers checkout.
  return {{repo, "config.json", rev, false},
          {repo, "model.safetensors", rev, false},
          {repo, "vocab.txt", rev, false},
          {repo, "tokenizer_config.json", rev, false},
          {repo, "sentence_bert_config.json", rev, true},
          {repo, "1_Pooling/config.json", rev, true},
          {repo, "special_tokens_map.json", rev, true}};
}

std::vector<ModelFile> local_model_files(const config::Config& config) {
  const auto& l2 = config.layer2;
  if (!config.enable_slm_router || config::local_model_on_sidecar(config) || !l2.model_path.empty()) return {};
  return {{l2.repo_id, l2.gguf_filename, l2.revision, false}};
}

Result<std::filesystem::path> fetch(const HubConfig& hub, const std::vector<ModelFile>& files) {
  std::filesystem::path first;
  for (const auto& f : files) {
    auto path = hf_hub_download(hub, f.repo_id, f.filename, f.revision);
    if (!path) {
      if (f.optional) {
        LOG_DEBUG("isartor::models", "optional file {} of {} not available: {}", f.filename, f.repo_id,
                  path.error().message);
        continue;
      }
      return std::unexpected(path.error());
    }
    if (first.empty()) first = *path;
  }
  if (first.empty()) return fail(ErrorCode::kInvalidRequest, "no model files to fetch");
  return first.parent_path();
}

Result<std::filesystem::path> resolve_embedding_gguf(const config::Config& config, const HubConfig& hub) {
  std::filesystem::path source = config.embedding.model_path;
  if (!source.empty() && source.extension() == ".gguf") return source;
  if (source.empty()) {
    auto snapshot = fetch(hub, embedding_files(config));
    if (!snapshot) return std::unexpected(snapshot.error());
    source = *snapshot;
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(source, ec)) {
    return fail(ErrorCode::kUnavailable, "ISARTOR__EMBEDDING__MODEL_PATH=" + source.string() +
                                             " is neither a .gguf file nor a model folder");
  }
  std::string name = config.embedding.repo_id;
  for (auto& c : name) {
    if (c == '/') c = '-';
  }
  auto out = hub.cache_dir / "isartor" / (name + "-" + path_tag(source) + ".f16.gguf");
  return ensure_bert_gguf(source, out);
}

}  // namespace isartor::inference

namespace isartor::inference {

LlamaGeneratorOptions local_model_options(const config::Config& config) {
  const auto& l2 = config.layer2;
  LlamaGeneratorOptions options;
  options.context_tokens = l2.context_tokens;
  options.max_sequences = l2.max_sequences;
  options.batch_tokens = std::max(512, l2.max_sequences);
  options.max_queued = static_cast<std::size_t>(l2.max_queued);
  options.threads = l2.threads;
  options.gpu_layers = l2.gpu_layers;
  options.classify_mode =
      l2.classify_mode == config::ClassifyMode::kGrammar ? ClassifyMode::kGrammar : ClassifyMode::kLogits;
  options.max_classify_tokens = l2.max_classify_tokens;
  options.chat_template = l2.chat_template;
  return options;
}

Result<std::filesystem::path> resolve_local_model_gguf(const config::Config& config, const HubConfig& hub) {
  const std::filesystem::path direct = config.layer2.model_path;
  if (!direct.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(direct, ec)) {
      return fail(ErrorCode::kNotFound, "ISARTOR__LAYER2__MODEL_PATH=" + direct.string() + " is not a file");
    }
    return direct;
  }
  const auto& l2 = config.layer2;
  return hf_hub_download(hub, l2.repo_id, l2.gguf_filename, l2.revision);
}

}  // namespace isartor::inference
