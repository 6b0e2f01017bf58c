#include "app/gateway.h"

#include <fmt/format.h>
#include <llama.h>
#include <openssl/crypto.h>

#include <condition_variable>
#include <mutex>

#include "api/anthropic.h"
#include "api/errors.h"
#include "api/openai.h"
#include "app/answer_writer.h"
#include "cache/memory_backend.h"
#include "core/cpu_baseline.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/strings.h"
#include "pipeline/cloud_layer.h"
#include "pipeline/exact_cache_layer.h"
#include "pipeline/local_model_layer.h"
#include "pipeline/semantic_cache_layer.h"
#include "inference/llama_embedder.h"
#include "inference/llama_generator.h"
#include "inference/model_manager.h"
#include "inference/progress.h"
#include "inference/sidecar_generator.h"

namespace isartor::app {
namespace asio = boost::asio;

namespace {

constexpr const char* kTarget = "isartor";

struct Route {
  std::string_view path;
  std::string_view method;
};
// A table outside the coroutine: g++ 12 cannot keep a local array in a coroutine frame.
constexpr std::array<Route, 7> kRoutes{{
    {"/healthz", "GET"},
    {"/health", "GET"},
    {"/v1/models", "GET"},
    {"/api/chat", "POST"},
    {"/v1/chat/completions", "POST"},
    {"/chat/completions", "POST"},
    {"/v1/messages", "POST"},
}};

api::WireFormat format_of(std::string_view path) {
  if (path == "/v1/messages") return api::WireFormat::kAnthropic;
  if (path.starts_with("/api/")) return api::WireFormat::kNative;
  return api::WireFormat::kOpenAI;
}

http::Response json_response(int status, const api::Json& body) {
  return {status, "application/json", {}, body.dump()};
}

// The key a client presented: X-API-Key (also what the Anthropic SDK sends as x-api-key) or a
// bearer token (OpenAI SDK).
std::string_view presented_key(const http::Request& request) {
  if (auto key = request.header("X-API-Key"); !key.empty()) return key;
  std::string_view auth = request.header("Authorization");
  // The scheme is case-insensitive (RFC 9110 11.1): "bearer" and "BEARER" are the same.
  constexpr std::string_view kBearer = "Bearer ";
  if (core::istarts_with(auth, kBearer)) return core::trim(auth.substr(kBearer.size()));
  return {};
}

vector::IndexKind index_kind(config::SemanticIndex kind) {
  switch (kind) {
    case config::SemanticIndex::kFlat: return vector::IndexKind::kFlat;
    case config::SemanticIndex::kHnsw: return vector::IndexKind::kHnsw;
    case config::SemanticIndex::kAuto: break;
  }
  return vector::IndexKind::kAuto;
}

// L1b, or nullptr (with a warning) when its model cannot be had and it is not required.
std::unique_ptr<pipeline::Layer> build_semantic_layer(const config::Config& config) {
  auto started = std::chrono::steady_clock::now();
  const std::string& name = config.embedding.model_path.empty() ? config.embedding.repo_id : config.embedding.model_path;
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
  pipeline::SemanticCacheOptions options;
  options.threshold = config.similarity_threshold;
  options.ttl = std::chrono::seconds(config.cache_ttl_secs);
  options.capacity = config.cache_max_capacity;
  options.max_bytes = config.cache_max_bytes;
  options.single_turn_only = config.semantic_single_turn_only;
  options.guard = config.semantic_guard;
  options.index = index_kind(config.semantic_index);
  return std::make_unique<pipeline::SemanticCacheLayer>(std::shared_ptr<inference::Embedder>(std::move(*embedder)),
                                                        options, name);
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

std::vector<std::unique_ptr<pipeline::Layer>> build_layers(const config::Config& config, providers::HttpClient& http,
                                                           std::function<void(std::stop_token)>& l2_loader) {
  std::vector<std::unique_ptr<pipeline::Layer>> layers;
  if (config::exact_cache_enabled(config)) {
    if (config.cache_backend == config::CacheBackendKind::kRedis) {
      LOG_WARN(kTarget, "ISARTOR__CACHE_BACKEND=redis is not available in this build; using the in-process cache");
    }
    layers.push_back(std::make_unique<pipeline::ExactCacheLayer>(std::make_unique<cache::MemoryBackend>(
        config.cache_max_capacity, std::chrono::seconds(config.cache_ttl_secs), 16, cache::MemoryBackend::Clock{},
        config.cache_max_bytes)));
  }
  if (config::semantic_cache_enabled(config)) {
    if (auto layer = build_semantic_layer(config)) layers.push_back(std::move(layer));
  }
  auto cloud = std::make_unique<pipeline::CloudLayer>(providers::make_provider(config, http));
  if (config.enable_slm_router) layers.push_back(build_local_model_layer(config, http, *cloud, l2_loader));
  layers.push_back(std::move(cloud));
  return layers;
}

}  // namespace

std::string version_string() {
  return std::string("isartor ") + ISARTOR_VERSION + "\ncpu: built for " + std::string(core::cpu_baseline()) +
         "\nllama.cpp: " + llama_print_system_info();
}

namespace {

core::ConnectionBudget budget_for(const config::Config& config) {
  const auto open_files = core::raise_open_files_limit();
  const auto budget = core::connection_budget(open_files, config.max_connections, config.max_upstream_connections);
  LOG_INFO(kTarget, "open files limit {}: up to {} client and {} upstream connections", open_files, budget.clients,
           budget.upstream);
  if (budget.clients + budget.upstream >= open_files) {
    LOG_WARN(kTarget,
             "ISARTOR__MAX_CONNECTIONS + ISARTOR__MAX_UPSTREAM_CONNECTIONS = {} leave no descriptors of the {} "
             "allowed for models and logs: raise LimitNOFILE / ulimit -n",
             budget.clients + budget.upstream, open_files);
  }
  return budget;
}

}  // namespace

Gateway::Gateway(config::Config config)
    : config_(std::move(config)),
      connections_(budget_for(config_)),
      gateway_key_digest_(sha256(config_.gateway_api_key)),
      http_client_(std::make_unique<providers::HttpClient>(
          providers::HttpClientLimits{static_cast<long>(connections_.upstream), config_.max_response_bytes})) {
  std::function<void(std::stop_token)> l2_loader;
  pipeline_ = std::make_unique<pipeline::Pipeline>(build_layers(config_, *http_client_, l2_loader));
  if (l2_loader) l2_loader_ = std::jthread(std::move(l2_loader));
}

Gateway::~Gateway() = default;

void Gateway::run() {
  http::ServerOptions options;
  options.host = config_.host;
  options.port = config_.port;
  options.max_body_bytes = config_.max_body_bytes;
  options.header_timeout = std::chrono::seconds(config_.header_timeout_secs);
  options.idle_timeout = std::chrono::seconds(config_.idle_timeout_secs);
  options.write_timeout = std::chrono::seconds(config_.write_timeout_secs);
  options.shutdown_grace = std::chrono::seconds(config_.shutdown_grace_secs);
  options.threads = config_.worker_threads;
  options.max_connections = connections_.clients;
  options.render_stream_error = [](std::string_view path, const Error& error) {
    return api::render_stream_error(format_of(path), error);
  };
  http::Server server(
      options, [this](const http::Request& r, http::Responder& w) { return handle(r, w); },
      [this](std::string_view path, const Error& e) { return render_error(path, e); });
  server.run();
  LOG_INFO(kTarget, "stopped");
}

http::Response Gateway::render_error(std::string_view path, const Error& error) const {
  auto rendered = api::render_error(format_of(path), error);
  http::Response response{rendered.status, "application/json", {}, std::move(rendered.body)};
  if (error.code == ErrorCode::kOverloaded) response.headers.emplace_back("Retry-After", "1");
  return response;
}

bool Gateway::authorized(const http::Request& request) const {
  if (config_.gateway_api_key.empty()) return true;
  // Comparing digests keeps the comparison constant-time and independent of the key's length.
  auto got = sha256(presented_key(request));
  return CRYPTO_memcmp(gateway_key_digest_.data(), got.data(), got.size()) == 0;
}

http::Response Gateway::health() const {
  api::Json layers = api::Json::object();
  auto describe = [](const pipeline::LayerStatus& s) {
    return api::Json{{"enabled", s.enabled}, {"ready", s.ready}, {"detail", s.detail}};
  };
  for (const char* name : {"l1a", "l1b", "l2"}) {
    layers[name] = describe({false, false, "disabled"});
  }
  if (config::semantic_cache_enabled(config_)) layers["l1b"] = describe({true, false, "embedding model unavailable (see start-up log)"});
  for (const auto& layer : pipeline_->layers()) layers[std::string(layer->name())] = describe(layer->status());
  layers["l3"]["provider"] = config::to_string(config_.llm_provider);
  auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  return json_response(200, {{"status", "ok"}, {"version", ISARTOR_VERSION}, {"uptime_secs", uptime}, {"layers", layers}});
}

http::Response Gateway::models() const {
  api::Json model{{"id", config_.external_llm_model},
                  {"object", "model"},
                  {"created", 0},
                  {"owned_by", config::to_string(config_.llm_provider)}};
  return json_response(200, {{"object", "list"}, {"data", api::Json::array({model})}});
}

// Everything but the chat routes is answered synchronously; std::nullopt means "a chat route".
// (Kept out of the coroutine: g++ 12 miscompiles initializer lists inside coroutine frames.)
std::optional<http::Response> Gateway::route(const http::Request& request) const {
  const std::string& path = request.path;
  const Route* route = nullptr;
  bool path_known = false;
  for (const auto& r : kRoutes) {
    if (r.path != path) continue;
    path_known = true;
    if (r.method == request.method || (r.method == "GET" && request.method == "HEAD")) route = &r;
  }
  if (!route) {
    return path_known ? render_error(path, Error(ErrorCode::kMethodNotAllowed,
                                                 "method " + request.method + " is not allowed on " + path))
                      : render_error(path, Error(ErrorCode::kNotFound, "no route for " + path));
  }
  if (path == "/healthz") return json_response(200, {{"status", "ok"}});
  if (path == "/health") return health();
  if (!authorized(request)) {
    return render_error(path, Error(ErrorCode::kUnauthorized,
                                    "invalid or missing gateway API key: send it as 'X-API-Key: <key>' or "
                                    "'Authorization: Bearer <key>'"));
  }
  if (path == "/v1/models") return models();
  return std::nullopt;
}

asio::awaitable<void> Gateway::handle(const http::Request& request, http::Responder& responder) {
  if (auto response = route(request)) {
    co_await responder.send(std::move(*response));
    co_return;
  }
  co_await chat(format_of(request.path), request, responder);
}

namespace {

// Brings a request body of any route into the canonical OpenAI form (an OpenAI body moves through).
Result<api::Json> to_canonical(api::WireFormat format, api::Json body) {
  switch (format) {
    case api::WireFormat::kOpenAI: {
      auto ok = api::validate_chat_request(body);
      if (!ok) return std::unexpected(ok.error());
      return body;
    }
    case api::WireFormat::kAnthropic:
      return api::anthropic_request_to_openai(body);
    case api::WireFormat::kNative: {
      if (!body.contains("prompt")) return fail(ErrorCode::kInvalidRequest, "'prompt' is a required property", "prompt");
      if (!body["prompt"].is_string()) return fail(ErrorCode::kInvalidRequest, "'prompt' must be a string", "prompt");
      if (body.contains("model") && !body["model"].is_string()) {
        return fail(ErrorCode::kInvalidRequest, "'model' must be a string", "model");
      }
      api::Json out{{"messages", api::Json::array({{{"role", "user"}, {"content", body["prompt"]}}})}};
      if (body.contains("model")) out["model"] = body["model"];
      return out;
    }
  }
  return fail(ErrorCode::kInternal, "unknown wire format");
}

}  // namespace

asio::awaitable<void> Gateway::chat(api::WireFormat format, const http::Request& request,
                                    http::Responder& responder) {
  if (api::json_nests_deeper_than(request.body)) {
    auto response = render_error(
        request.path, Error(ErrorCode::kInvalidRequest,
                            fmt::format("request body nests objects and arrays deeper than {} levels", api::kMaxJsonDepth)));
    co_await responder.send(std::move(response));
    co_return;
  }
  auto body = api::Json::parse(request.body, nullptr, false);
  if (body.is_discarded()) {
    auto response = render_error(request.path, Error(ErrorCode::kInvalidRequest, "request body is not valid JSON"));
    co_await responder.send(std::move(response));
    co_return;
  }
  if (!body.is_object()) {
    auto response = render_error(request.path, Error(ErrorCode::kInvalidRequest, "request body must be a JSON object"));
    co_await responder.send(std::move(response));
    co_return;
  }
  // null means absent for every optional top-level field, as the providers treat it.
  for (auto it = body.begin(); it != body.end();) it = it->is_null() ? body.erase(it) : std::next(it);
  auto canonical = to_canonical(format, std::move(body));
  if (!canonical) {
    auto response = render_error(request.path, canonical.error());
    co_await responder.send(std::move(response));
    co_return;
  }
  pipeline::ChatRequest chat_request;
  chat_request.format = format;
  chat_request.body = std::move(*canonical);
  auto model = chat_request.body.find("model");
  if (model == chat_request.body.end() || !model->is_string() || model->get_ref<const std::string&>().empty()) {
    chat_request.body["model"] = config_.external_llm_model;
  }
  chat_request.stream = format != api::WireFormat::kNative && chat_request.body.value("stream", false) == true;

  WriteOptions options;
  options.format = format;
  options.stream = chat_request.stream;
  options.model = chat_request.body["model"].get<std::string>();
  options.secrets = {config_.external_llm_api_key, config_.gateway_api_key};
  // Compared, not converted: a client's {"include_usage": "yes"} must not throw.
  const auto so = chat_request.body.find("stream_options");
  options.include_usage_chunk = so != chat_request.body.end() && so->is_object() && so->contains("include_usage") &&
                                (*so)["include_usage"] == true;

  auto answer = co_await pipeline_->handle(std::move(chat_request));
  if (!answer) {
    Error error = answer.error();
    error.message = api::redact(error.message, options.secrets);
    auto response = render_error(request.path, error);
    co_await responder.send(std::move(response));
    co_return;
  }
  LOG_INFO(kTarget, "{} {} answered by {}", request.method, request.path, answer->layer);
  co_await write_answer(std::move(*answer), options, responder);
}

}  // namespace isartor::app
