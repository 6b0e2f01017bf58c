#include "app/layers.h"

#include <fmt/format.h>

#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "cache/memory_backend.h"
#include "core/log.h"
#include "inference/llama_generator.h"
#include "inference/model_manager.h"
#include "inference/progress.h"
#include "inference/sidecar_generator.h"
#include "pipeline/cloud_layer.h"
#include "pipeline/exact_cache_layer.h"
#include "pipeline/local_model_layer.h"
#include "pipeline/semantic_cache_layer.h"

namespace isartor::app {

namespace {

constexpr const char* kTarget = "isartor";

vector::IndexKind index_kind(config::SemanticIndex kind) {
  switch (kind) {
    case config::SemanticIndex::kFlat: return vector::IndexKind::kFlat;
    case config::SemanticIndex::kHnsw: return vector::IndexKind::kHnsw;
    case config::SemanticIndex::kAuto: break;
  }
  return vector::IndexKind::kAuto;
}

// L1b's model, or nullptr (with a warning) when it cannot be had and is not required.
std::shared_ptr<inference::LlamaEmbedder> load_embedder(const config::Config& config, const std::string& name) {
  auto started = std::chrono::steady_clock::now();
  LOG_INFO("isartor::embeddings", "Initialising the embedder ({})...", name);
  auto gguf = inference::resolve_embedding_gguf(config, inference::hub_config_from_env(config));
  Result<std::unique_ptr<inference::LlamaEmbedder>> embedder =
      gguf ? inference::LlamaEmbedder::load(*gguf, {.threads = config.embedding.threads})
           : std::unexpected(gguf.error());
  if (!embedder) {
    std::string why = "semantic cache (L1b) unavailable: " + embedder.error().message;
    if (config.embedding.required) throw std::runtime_error(why + " (ISARTOR__EMBEDDING__REQUIRED=true)");
    LOG_WARN("isartor::embeddings", "{}; continuing without it", why);
    return nullptr;
  }
  LOG_INFO("isartor::embeddings", "Embedder ready ({}-d, {:.1f} s)", (*embedder)->dimensions(),
           std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return std::move(*embedder);
}

std::unique_ptr<pipeline::Layer> build_semantic_layer(const config::Config& config,
                                                      std::shared_ptr<inference::Embedder> embedder,
                                                      const std::string& name) {
  pipeline::SemanticCacheOptions options;
  options.threshold = config.similarity_threshold;
  options.ttl = std::chrono::seconds(config.cache_ttl_secs);
  options.capacity = config.cache_max_capacity;
  options.max_bytes = config.cache_max_bytes;
  options.single_turn_only = config.semantic_single_turn_only;
  options.guard = config.semantic_guard;
  options.index = index_kind(config.semantic_index);
  return std::make_unique<pipeline::SemanticCacheLayer>(std::move(embedder), options, name);
}

constexpr const char* kL2 = "isartor::l2";

// Says on /health how far a download got, once per percent.
std::function<void(std::string_view, std::uint64_t, std::uint64_t)> report_download(pipeline::LocalModelLayer& layer) {
  auto last = std::make_shared<int>(-1);
  return [&layer, last](std::string_view file, std::uint64_t done, std::uint64_t total) {
    const int percent = total > 0 ? static_cast<int>(done * 100 / total) : 0;
    if (percent == *last) return;
    *last = percent;
    layer.set_pending(fmt::format("downloading {} ({}%, {})", file, percent, inference::format_megabytes(done)));
  };
}

// Resolves (downloading from the hub if needed) and loads the in-process model, then puts it in
// service; runs on the loader thread so the gateway serves meanwhile.
void load_local_model(const config::Config& config, pipeline::LocalModelLayer& layer, std::stop_token stop) {
  const auto started = std::chrono::steady_clock::now();
  auto hub = inference::hub_config_from_env(config);
  hub.stop = stop;
  hub.on_progress = report_download(layer);
  auto gguf = inference::resolve_local_model_gguf(config, hub);
  if (!gguf) {
    LOG_WARN(kL2, "local model layer (L2) unavailable: {}; requests go to L3 (ISARTOR__ENABLE_SLM_ROUTER=false "
             "silences this)", gguf.error().message);
    layer.set_pending("unavailable: " + gguf.error().message);
    return;
  }
  layer.set_pending("loading " + gguf->filename().string());
  LOG_INFO(kL2, "Loading the local model ({})...", gguf->string());
  inference::LlamaGeneratorOptions options = inference::local_model_options(config);
  options.stop_loading = stop;
  auto generator = inference::LlamaGenerator::load(*gguf, options);
  if (!generator) {
    LOG_WARN(kL2, "local model layer (L2) unavailable: {}; requests go to L3", generator.error().message);
    layer.set_pending("unavailable: " + generator.error().message);
    return;
  }
  LOG_INFO(kL2, "Local model ready ({}, {} classification, {:.1f} s)", (*generator)->name(),
           inference::classify_mode_name(options.classify_mode),
           std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  layer.set_generator(std::shared_ptr<inference::Generator>(std::move(*generator)));
}

// Waits for the sidecar to list its models (it may start after the gateway), then puts it in service.
void connect_sidecar(const config::Config& config, providers::HttpClient& http, pipeline::LocalModelLayer& layer,
                     std::stop_token stop) {
  const auto& l2 = config.layer2;
  inference::SidecarOptions options;
  options.url = l2.sidecar_url;
  options.model = l2.sidecar_model;
  options.api_key = l2.sidecar_api_key;
  options.max_classify_tokens = l2.max_classify_tokens;
  options.max_in_flight = static_cast<std::size_t>(l2.max_queued + l2.max_sequences);
  auto generator = std::make_unique<inference::SidecarGenerator>(options, http);
  std::mutex mutex;
  std::condition_variable_any wake;
  for (int attempt = 0; !stop.stop_requested(); ++attempt) {
    auto model = generator->probe();
    if (model) {
      LOG_INFO(kL2, "Local model layer (L2) uses the sidecar {} ({})", l2.sidecar_url, *model);
      layer.set_generator(std::shared_ptr<inference::Generator>(std::move(generator)));
      return;
    }
    if (attempt == 0) LOG_WARN(kL2, "{}; retrying every 2 s, requests go to L3 meanwhile", model.error().message);
    layer.set_pending("waiting for the sidecar: " + model.error().message);
    std::unique_lock lock(mutex);
    wake.wait_for(lock, stop, std::chrono::seconds(2), [] { return false; });
  }
}

// L2 without its model, and how the gateway's loader thread will bring it: the layer serves
// (passing requests on) while the model downloads, loads or the sidecar comes up.
std::unique_ptr<pipeline::LocalModelLayer> build_local_model_layer(const config::Config& config,
                                                                   providers::HttpClient& http,
                                                                   const pipeline::Layer& fallback,
                                                                   std::function<void(std::stop_token)>& loader) {
  const auto& l2 = config.layer2;
  pipeline::LocalModelOptions options;
  options.max_prompt_chars = static_cast<std::size_t>(l2.max_prompt_chars);
  options.single_turn_only = l2.single_turn_only;
  options.generate.max_tokens = l2.max_generate_tokens;
  options.generate.temperature = static_cast<float>(l2.temperature);
  options.generate.repetition_penalty = static_cast<float>(l2.repetition_penalty);
  options.timeout = std::chrono::seconds(l2.timeout_secs);
  options.fallback_ready = [&fallback] { return fallback.status().ready; };
  const bool sidecar = config::local_model_on_sidecar(config);
  auto layer = std::make_unique<pipeline::LocalModelLayer>(
      std::move(options), sidecar ? "connecting to the sidecar " + l2.sidecar_url : "resolving the local model");
  pipeline::LocalModelLayer& ref = *layer;
  if (sidecar) {
    loader = [&config, &http, &ref](std::stop_token stop) { connect_sidecar(config, http, ref, stop); };
  } else {
    loader = [&config, &ref](std::stop_token stop) { load_local_model(config, ref, stop); };
  }
  return layer;
}

}  // namespace

std::string embedding_model_name(const config::Config& config) {
  return config.embedding.model_path.empty() ? config.embedding.repo_id : config.embedding.model_path;
}

Components build_components(const config::Config& config, providers::HttpClient& http) {
  Components c;
  if (config::exact_cache_enabled(config)) {
    if (config.cache_backend == config::CacheBackendKind::kRedis) {
      LOG_WARN(kTarget, "ISARTOR__CACHE_BACKEND=redis is not available in this build; using the in-process cache");
    }
    auto memory = [&config] {
      return std::make_shared<cache::MemoryBackend>(config.cache_max_capacity, std::chrono::seconds(config.cache_ttl_secs),
                                                    16, cache::MemoryBackend::Clock{}, config.cache_max_bytes);
    };
    c.exact_cache = memory();
    // Hits rendered in another form than the stored one, kept in-process within the same limits.
    c.layers.push_back(std::make_unique<pipeline::ExactCacheLayer>(c.exact_cache, memory()));
  }
  if (config::semantic_cache_enabled(config)) {
    const std::string name = embedding_model_name(config);
    c.embedder = load_embedder(config, name);
    if (c.embedder) c.layers.push_back(build_semantic_layer(config, c.embedder, name));
  }
  c.upstream = providers::UpstreamChain::build(config, http);
  auto cloud = std::make_unique<pipeline::CloudLayer>(c.upstream);
  if (config.enable_slm_router) c.layers.push_back(build_local_model_layer(config, http, *cloud, c.l2_loader));
  c.layers.push_back(std::move(cloud));
  return c;
}

}  // namespace isartor::app
