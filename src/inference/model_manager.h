#pragma once
// Which model files the configuration needs and where they are: resolves the embedding model
// (L1b) from a direct path or the Hugging Face hub, converting a sentence-transformers checkout
// to GGUF once, and the local chat model (L2) GGUF from a direct path or the hub. Used at start-up and by `isartor models pull|list`; blocking, never on the
// request path.
#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/result.h"
#include "inference/hf_hub.h"
#include "inference/llama_generator.h"

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

// The hub file of the L2 chat model: ISARTOR__LAYER2__REPO_ID / __GGUF_FILENAME / __REVISION;
// empty when L2 is off, served by a sidecar, or ISARTOR__LAYER2__MODEL_PATH is set. Pure.
std::vector<ModelFile> local_model_files(const config::Config& config);

// Downloads (or finds in the cache) every file in `files`; returns the snapshot folder of the
// first. Missing optional files are skipped. Blocking.
Result<std::filesystem::path> fetch(const HubConfig& hub, const std::vector<ModelFile>& files);

// The GGUF to load for L1b: the configured path when it is a .gguf file; else the checkout
// (configured folder, or the hub snapshot) converted once into <hub cache>/isartor/. Blocking.
Result<std::filesystem::path> resolve_embedding_gguf(const config::Config& config, const HubConfig& hub);

// The in-process generator settings the ISARTOR__LAYER2__* configuration asks for. Pure.
LlamaGeneratorOptions local_model_options(const config::Config& config);

// The GGUF to load for L2: ISARTOR__LAYER2__MODEL_PATH when set (kNotFound if it is no file), else
// the hub file, downloaded into the cache when needed. Blocking.
Result<std::filesystem::path> resolve_local_model_gguf(const config::Config& config, const HubConfig& hub);

}  // namespace isartor::inference
