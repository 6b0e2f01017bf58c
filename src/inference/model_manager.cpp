#include "inference/model_manager.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "core/log.h"
#include "core/sha256.h"
#include "inference/bert_gguf.h"

namespace isartor::inference {

namespace {

namespace fs = std::filesystem;

constexpr const char* kTarget = "isartor::models";

// A short stable tag for a folder, so conversions of different checkouts don't collide.
std::string path_tag(const fs::path& dir) {
  std::string text = fs::absolute(dir).lexically_normal().string();
  return to_hex(sha256(text), 6);
}

// What bert_gguf.h reads from a sentence-transformers checkout of the embedding model.
std::vector<ModelFile> checkout_files(const config::EmbeddingConfig& embedding) {
  const auto& repo = embedding.repo_id;
  const auto& rev = embedding.revision;
  return {{repo, "config.json", rev, false},
          {repo, "model.safetensors", rev, false},
          {repo, "vocab.txt", rev, false},
          {repo, "tokenizer_config.json", rev, false},
          {repo, "sentence_bert_config.json", rev, true},
          {repo, "1_Pooling/config.json", rev, true},
          {repo, "special_tokens_map.json", rev, true}};
}

// The Hugging Face cache in ISARTOR__MODEL_DIR (DIR itself or DIR/hub) that holds `file` at its
// revision, read offline; nullopt when DIR is no such cache.
std::optional<HubConfig> cache_in_model_dir(const fs::path& dir, const ModelFile& file) {
  for (const fs::path& cache : {dir, dir / "hub"}) {
    HubConfig hub;
    hub.cache_dir = cache;
    hub.offline = true;
    if (try_load_from_cache(hub, file.repo_id, file.filename, file.revision)) return hub;
  }
  return std::nullopt;
}

std::string model_dir_name(const fs::path& dir) { return "ISARTOR__MODEL_DIR=" + dir.string(); }

// kNotFound unless ISARTOR__MODEL_DIR is a folder.
Result<void> require_model_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return {};
  return fail(ErrorCode::kNotFound, model_dir_name(dir) + " is not a folder");
}

// What keeps `folder` from holding `files` (the required ones): "no such folder" or "no <first
// missing file>"; empty when all are there.
std::string missing_from(const fs::path& folder, const std::vector<ModelFile>& files) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return "no such folder";
  for (const auto& f : files) {
    if (!f.optional && !fs::is_regular_file(folder / f.filename, ec)) return "no " + f.filename;
  }
  return {};
}

}  // namespace

std::vector<ModelFile> embedding_files(const config::Config& config) {
  if (!config.embedding.model_path.empty() || !config.model_dir.empty()) return {};
  return checkout_files(config.embedding);
}

std::vector<ModelFile> local_model_files(const config::Config& config) {
  const auto& l2 = config.layer2;
  if (!config.enable_slm_router || config::local_model_on_sidecar(config) || !l2.model_path.empty() ||
      !config.model_dir.empty()) {
    return {};
  }
  return {{l2.repo_id, l2.gguf_filename, l2.revision, false}};
}

Result<fs::path> find_embedding_in_model_dir(const config::Config& config) {
  const fs::path dir = config.model_dir;
  RETURN_IF_ERROR(require_model_dir(dir));
  const auto files = checkout_files(config.embedding);
  if (auto cache = cache_in_model_dir(dir, files.front())) {
    LOG_INFO(kTarget, "embedding model {} from the Hugging Face cache {}", config.embedding.repo_id,
             cache->cache_dir.string());
    return fetch(*cache, files);
  }
  const std::string& repo = config.embedding.repo_id;
  const fs::path name = fs::path(repo).filename();
  std::vector<fs::path> folders = {dir / name};
  if (name != fs::path(repo)) folders.push_back(dir / repo);
  folders.push_back(dir);
  std::string problems;
  for (const auto& folder : folders) {
    std::string problem = missing_from(folder, files);
    if (problem.empty()) {
      LOG_INFO(kTarget, "embedding model {} from {}", repo, folder.string());
      return folder;
    }
    problems += fmt::format("{}{}: {}", problems.empty() ? "" : ", ", folder.string(), problem);
  }
  return fail(ErrorCode::kNotFound,
              fmt::format("{} holds no embedding model {} (config.json, model.safetensors, vocab.txt, "
                          "tokenizer_config.json), nor a Hugging Face cache of it: {}",
                          model_dir_name(dir), repo, problems));
}

Result<fs::path> find_local_model_in_model_dir(const config::Config& config) {
  const fs::path dir = config.model_dir;
  RETURN_IF_ERROR(require_model_dir(dir));
  const auto& l2 = config.layer2;
  const ModelFile file{l2.repo_id, l2.gguf_filename, l2.revision, false};
  if (auto cache = cache_in_model_dir(dir, file)) {
    return hf_hub_download(*cache, file.repo_id, file.filename, file.revision);
  }
  const fs::path path = dir / l2.gguf_filename;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  return fail(ErrorCode::kNotFound,
              fmt::format("{} has no {} (ISARTOR__LAYER2__GGUF_FILENAME of {}), nor a Hugging Face cache of it",
                          model_dir_name(dir), path.string(), l2.repo_id));
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
    ASSIGN_OR_RETURN(
        source, config.model_dir.empty() ? fetch(hub, embedding_files(config)) : find_embedding_in_model_dir(config));
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
  if (!config.model_dir.empty()) return find_local_model_in_model_dir(config);
  const auto& l2 = config.layer2;
  return hf_hub_download(hub, l2.repo_id, l2.gguf_filename, l2.revision);
}

}  // namespace isartor::inference
