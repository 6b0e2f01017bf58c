#pragma once
// Which model files the configuration needs and where they are: resolves the embedding model
// (L1b) from a direct path or the Hugging Face hub, converting a sentence-transformers checkout
// to GGUF once. Used at start-up and by `isartor models pull|list`; blocking, never on the
// request path.
#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/result.h"
#include "inference/hf_hub.h"

namespace isartor::inference {

// A repo file the configuration needs; optional ones may be absent from the repo.
struct ModelFile {
  std::string repo_id;
  std::string filename;
  std::string revision;
  bool optional = false;
};

// The hub files of the embedding model (empty when ISARTOR__EMBEDDING__MODEL_PATH is set). Pure.
std::vector<ModelFile> embedding_files(const config::Config& config);

// Downloads (or finds in the cache) every file in `files`; returns the snapshot folder of the
// first. Missing optional files are skipped. Blocking.
Result<std::filesystem::path> fetch(const HubConfig& hub, const std::vector<ModelFile>& files);

// The GGUF to load for L1b: the configured path when it is a .gguf file; else the checkout
// (configured folder, or the hub snapshot) converted once into <hub cache>/isartor/. Blocking.
Result<std::filesystem::path> resolve_embedding_gguf(const config::Config& config, const HubConfig& hub);

}  // namespace isartor::inference
