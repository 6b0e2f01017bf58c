#pragma once
// Which model files the configuration needs and where they are: resolves the embedding model
// (L1b) from a direct path, a local model folder or the Hugging Face hub, converting a
// sentence-transformers checkout to GGUF once, and the local chat model (L2) GGUF the same ways.
// Used at start-up and by `isartor models pull|list`; blocking, never on the request path.
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

// The hub files of the embedding model (empty when ISARTOR__EMBEDDING__MODEL_PATH or
// ISARTOR__MODEL_DIR is set). Pure.
std::vector<ModelFile> embedding_files(const config::Config& config);

// The hub file of the L2 chat model: ISARTOR__LAYER2__REPO_ID / __GGUF_FILENAME / __REVISION;
// empty when L2 is off, served by a sidecar, or ISARTOR__LAYER2__MODEL_PATH or ISARTOR__MODEL_DIR
// is set. Pure.
std::vector<ModelFile> local_model_files(const config::Config& config);

// ISARTOR__MODEL_DIR=DIR (`isartor up --model-dir DIR`) names a folder the models are taken from by
// file name, never from the network (an explicit ISARTOR__EMBEDDING__MODEL_PATH /
// ISARTOR__LAYER2__MODEL_PATH still wins). Accepted layouts, tried in this order:
//   a Hugging Face cache copied from a connected machine (what `isartor models pull` or
//     huggingface_hub fill): DIR/models--<org>--<name>/ or DIR/hub/models--<org>--<name>/, read at
//     the configured revision as in offline mode;
//   what `huggingface-cli download <repo> [<file>] --local-dir DIR` leaves:
//     L2:  DIR/<ISARTOR__LAYER2__GGUF_FILENAME>
//     L1b: the sentence-transformers files (config.json, model.safetensors, vocab.txt,
//          tokenizer_config.json; sentence_bert_config.json, 1_Pooling/config.json if present) in
//          DIR/<name>/, DIR/<org>/<name>/ or DIR/ itself, <org>/<name> = ISARTOR__EMBEDDING__REPO_ID.

// The embedding model's sentence-transformers folder in ISARTOR__MODEL_DIR; kNotFound naming the
// folders looked at and the first file missing in each. Reads only the file system.
Result<std::filesystem::path> find_embedding_in_model_dir(const config::Config& config);

// The L2 GGUF in ISARTOR__MODEL_DIR; kNotFound naming the file expected. Reads only the file system.
Result<std::filesystem::path> find_local_model_in_model_dir(const config::Config& config);

// Downloads (or finds in the cache) every file in `files`; returns the snapshot folder of the
// first. Missing optional files are skipped. Blocking.
Result<std::filesystem::path> fetch(const HubConfig& hub, const std::vector<ModelFile>& files);

// The GGUF to load for L1b: the configured path when it is a .gguf file; else the checkout
// (configured folder, the one in ISARTOR__MODEL_DIR, or the hub snapshot) converted once into
// <hub cache>/isartor/. Blocking.
Result<std::filesystem::path> resolve_embedding_gguf(const config::Config& config, const HubConfig& hub);

// The in-process generator settings the ISARTOR__LAYER2__* configuration asks for. Pure.
LlamaGeneratorOptions local_model_options(const config::Config& config);

// The GGUF to load for L2: ISARTOR__LAYER2__MODEL_PATH when set (kNotFound if it is no file), else
// the one in ISARTOR__MODEL_DIR, else the hub file, downloaded into the cache when needed. Blocking.
Result<std::filesystem::path> resolve_local_model_gguf(const config::Config& config, const HubConfig& hub);

}  // namespace isartor::inference
