#include "app/gateway.h"

#include <llama.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "api/anthropic.h"
#include "api/errors.h"
#include "api/openai.h"
#include "app/answer_writer.h"
#include "cache/memory_backend.h"
#include "core/log.h"
#include "pipeline/cloud_layer.h"
#include "pipeline/exact_cache_layer.h"
#include "pipeline/local_model_layer.h"
#include "pipeline/semantic_cache_layer.h"
#include "inference/llama_embedder.h"
#include "inference/llama_generator.h"
#include "inference/model_manager.h"

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

std::array<unsigned char, SHA256_DIGEST_LENGTH> digest(std::string_view text) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> out{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data());
  return out;
}

// The key a client presented: X-API-Key (also what the Anthropic SDK sends as x-api-key) or a
// bearer token (OpenAI SDK).
std::string_view presented_key(const http::Request& request) {
  if (auto key = request.header("X-API-Key"); !key.empty()) return key;
  std::string_view auth = request.header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() > kBearer.size() && auth.substr(0, kBearer.size()) == kBearer) return auth.substr(kBearer.size());
  return {};
}

bool exact_enabled(const config::Config& c) {
  return c.cache_mode == config::CacheMode::kBoth || c.cache_mode == config::CacheMode::kExact;
}

bool semantic_enabled(const config::Config& c) {
  return c.cache_mode == config::CacheMode::kBoth || c.cache_mode == config::CacheMode::kSemantic;
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
  options.single_turn_only = config.semantic_single_turn_only;
  options.guard = config.semantic_guard;
  options.index = index_kind(config.semantic_index);
  return std::make_unique<pipeline::SemanticCacheLayer>(std::shared_ptr<inference::Embedder>(std::move(*embedder)),
                                                        options, name);
}

// L2, or nullptr (with a warning) when its model cannot be had: requests then go to L3.
std::unique_ptr<pipeline::Layer> build_local_model_layer(const config::Config& config) {
  constexpr const char* kL2 = "isartor::l2";
  if (config.router_backend != config::RouterBackend::kEmbedded) {
    LOG_WARN(kL2, "ISARTOR__ROUTER_BACKEND={} (sidecar) is not available in this build yet; L2 is off",
             config::to_string(config.router_backend));
    return nullptr;
  }
  const auto& l2 = config.layer2;
  if (l2.model_path.empty()) {
    LOG_WARN(kL2,
             "local model layer (L2) off: set ISARTOR__LAYER2__MODEL_PATH to a chat GGUF (hub download of the default "
             "Gemma comes with issue #4), or ISARTOR__ENABLE_SLM_ROUTER=false to silence this");
    return nullptr;
  }
  auto started = std::chrono::steady_clock::now();
  LOG_INFO(kL2, "Loading the local model ({})...", l2.model_path);
  inference::LlamaGeneratorOptions generator_options;
  generator_options.gpu_layers = l2.gpu_layers;
  auto generator = inference::LlamaGenerator::load(l2.model_path, generator_options);
  if (!generator) {
    LOG_WARN(kL2, "local model layer (L2) unavailable: {}; continuing without it", generator.error().message);
    return nullptr;
  }
  LOG_INFO(kL2, "Local model ready ({}, {:.1f} s)", (*generator)->name(),
           std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  pipeline::LocalModelOptions options;
  options.max_prompt_chars = static_cast<std::size_t>(l2.max_prompt_chars);
  options.generate.max_tokens = l2.max_generate_tokens;
  options.generate.temperature = static_cast<float>(l2.temperature);
  options.generate.repetition_penalty = static_cast<float>(l2.repetition_penalty);
  return std::make_unique<pipeline::LocalModelLayer>(std::shared_ptr<inference::Generator>(std::move(*generator)),
                                                     std::move(options));
}

std::vector<std::unique_ptr<pipeline::Layer>> build_layers(const config::Config& config,
                                                           providers::HttpClient& http) {
  std::vector<std::unique_ptr<pipeline::Layer>> layers;
  if (exact_enabled(config)) {
    if (config.cache_backend == config::CacheBackendKind::kRedis) {
      LOG_WARN(kTarget, "ISARTOR__CACHE_BACKEND=redis is not available in this build; using the in-process cache");
    }
    layers.push_back(std::make_unique<pipeline::ExactCacheLayer>(std::make_unique<cache::MemoryBackend>(
        config.cache_max_capacity, std::chrono::seconds(config.cache_ttl_secs))));
  }
  if (semantic_enabled(config)) {
    if (auto layer = build_semantic_layer(config)) layers.push_back(std::move(layer));
  }
  if (config.enable_slm_router) {
    if (auto layer = build_local_model_layer(config)) layers.push_back(std::move(layer));
  }
  layers.push_back(std::make_unique<pipeline::CloudLayer>(providers::make_provider(config, http)));
  return layers;
}

}  // namespace

std::string version_string() {
  return std::string("isartor ") + ISARTOR_VERSION + "\nllama.cpp: " + llama_print_system_info();
}

Gateway::Gateway(config::Config config)
    : config_(std::move(config)), http_client_(std::make_unique<providers::HttpClient>()) {
  pipeline_ = std::make_unique<pipeline::Pipeline>(build_layers(config_, *http_client_));
}

Gateway::~Gateway() = default;

void Gateway::run() {
  http::ServerOptions options;
  options.host = config_.host;
  options.port = config_.port;
  options.max_body_bytes = config_.max_body_bytes;
  options.header_timeout = std::chrono::seconds(config_.header_timeout_secs);
  options.idle_timeout = std::chrono::seconds(config_.idle_timeout_secs);
  options.shutdown_grace = std::chrono::seconds(config_.shutdown_grace_secs);
  options.threads = config_.worker_threads;
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
  auto want = digest(config_.gateway_api_key);
  auto got = digest(presented_key(request));
  return CRYPTO_memcmp(want.data(), got.data(), want.size()) == 0;
}

http::Response Gateway::health() const {
  api::Json layers = api::Json::object();
  auto describe = [](const pipeline::LayerStatus& s) {
    return api::Json{{"enabled", s.enabled}, {"ready", s.ready}, {"detail", s.detail}};
  };
  for (const char* name : {"l1a", "l1b", "l2"}) {
    layers[name] = describe({false, false, "disabled"});
  }
  if (semantic_enabled(config_)) layers["l1b"] = describe({true, false, "embedding model unavailable (see start-up log)"});
  if (config_.enable_slm_router) layers["l2"] = describe({true, false, "local model unavailable (see start-up log)"});
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

// Brings a request body of any route into the canonical OpenAI form.
Result<api::Json> to_canonical(api::WireFormat format, const api::Json& body) {
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
  auto canonical = to_canonical(format, body);
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
  const auto& so = chat_request.body.value("stream_options", api::Json::object());
  options.include_usage_chunk = so.is_object() && so.value("include_usage", false) == true;

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
