#pragma once
// The composition root: the layer chain the configuration asks for (Level 1/2/3 are settings of
// it), and the parts of it that routes besides chat share (the provider, the embedder, the exact
// cache).
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "cache/cache_backend.h"
#include "config/config.h"
#include "inference/llama_embedder.h"
#include "pipeline/layer.h"
#include "providers/http_client.h"
#include "providers/upstream_chain.h"

namespace isartor::app {

struct Components {
  std::vector<std::unique_ptr<pipeline::Layer>> layers;  // L1a, L1b, L2, L3 as configured
  std::shared_ptr<providers::UpstreamChain> upstream;   // L3's providers, also for the native routes
  std::shared_ptr<inference::LlamaEmbedder> embedder;    // L1b's model; null when unavailable
  std::shared_ptr<cache::CacheBackend> exact_cache;      // L1a's store; null when L1a is off
  // Brings L2's model (hub download and load, or the sidecar's first answer) once run on a
  // thread of its own; empty when L2 is off.
  std::function<void(std::stop_token)> l2_loader;
};

// Builds the layers and loads the embedder (blocking, start-up). Throws std::runtime_error when
// a required model cannot be had, config::ConfigError for an unusable provider setting.
Components build_components(const config::Config& config, providers::HttpClient& http);

// The name the embedding model goes by (its model path or hub repo id). Pure.
std::string embedding_model_name(const config::Config& config);

}  // namespace isartor::app
