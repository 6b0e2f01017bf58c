#include "app/gateway.h"

#include <fmt/format.h>
#include <llama.h>

#include "api/anthropic_inbound.h"
#include "api/completions.h"
#include "api/errors.h"
#include "api/native.h"
#include "api/openai.h"
#include "api/responses.h"
#include "app/answer_writer.h"
#include "app/cache_control.h"
#include "app/count_tokens_route.h"
#include "app/embeddings_route.h"
#include "app/layers.h"
#include "metrics/exposition.h"
#include "pipeline/exact_cache_layer.h"
#include "core/cpu_baseline.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/strings.h"

namespace isartor::app {
namespace asio = boost::asio;

namespace {

constexpr const char* kTarget = "isartor";

struct Route {
  std::string_view path;
  std::string_view method;
};
// A table outside the coroutine: g++ 12 cannot keep a local array in a coroutine frame.
constexpr std::array<Route, 18> kRoutes{{
    {"/healthz", "GET"},
    {"/health", "GET"},
    {"/v1/models", "GET"},
    {"/api/chat", "POST"},
    {"/v1/chat/completions", "POST"},
    {"/chat/completions", "POST"},
    {"/v1/messages", "POST"},
    {"/v1/messages/count_tokens", "POST"},
    {"/v1/embeddings", "POST"},
    {"/embeddings", "POST"},
    {"/v1/completions", "POST"},
    {"/completions", "POST"},
    {"/v1/responses", "POST"},
    {"/responses", "POST"},
    {"/metrics", "GET"},
    {"/admin/cache/stats", "GET"},
    {"/admin/cache/flush", "POST"},
    {"/admin/cache/entry", "DELETE"},
}};
constexpr std::string_view kAdminPrefix = "/admin/";
// GET /v1/models/{id}
constexpr std::string_view kModelPrefix = "/v1/models/";

// The kRoutes index a path counts under in metrics (a model id under /v1/models; kRoutes.size()
// for any other path), so that clients cannot grow the label set.
std::size_t route_index(std::string_view path) {
  if (path.starts_with(kModelPrefix)) path = "/v1/models";
  for (std::size_t i = 0; i < kRoutes.size(); ++i) {
    if (kRoutes[i].path == path) return i;
  }
  return kRoutes.size();
}

constexpr const char* kAccessTarget = "isartor::access";

// One line per exchange, never a prompt or a key: method, path, status, answering layer, time,
// body bytes in and out. Status 0: the client left before an answer began.
void log_access(const http::Request& request, const MeteredResponder& responder, std::chrono::nanoseconds took) {
  const auto layer = responder.layer();
  const policy::Client* client = responder.client();
  LOG_INFO(kAccessTarget, "{} {} {} layer={} key={} {:.2f}ms in={} out={}", request.method, request.path,
           responder.status(), layer ? pipeline::to_string(*layer) : std::string_view("-"),
           client ? std::string_view(client->name()) : std::string_view("-"),
           std::chrono::duration<double, std::milli>(took).count(), request.body.size(), responder.bytes());
}

// Counts and logs one exchange when it ends, however it ends.
class ExchangeRecord {
 public:
  ExchangeRecord(metrics::GatewayMetrics& metrics, const http::Request& request, const MeteredResponder& responder)
      : metrics_(metrics), request_(request), responder_(responder) {}
  ~ExchangeRecord() {
    const auto took = std::chrono::steady_clock::now() - started_;
    metrics_.record_request(route_index(request_.path), responder_.layer(), responder_.status(), took,
                            request_.body.size(), responder_.bytes());
    try {
      log_access(request_, responder_, took);
    } catch (...) {  // out of memory for one log line: not worth the process
    }
  }
  ExchangeRecord(const ExchangeRecord&) = delete;
  ExchangeRecord& operator=(const ExchangeRecord&) = delete;

 private:
  metrics::GatewayMetrics& metrics_;
  const http::Request& request_;
  const MeteredResponder& responder_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

// A client's limits as the chain applies them: with free cache hits, the request is admitted only
// when it goes past the caches, and only answers from beyond them spend tokens.
class ClientBudget final : public pipeline::RequestBudget {
 public:
  ClientBudget(policy::Client& client, bool count_cache_hits) : client_(client), count_cache_hits_(count_cache_hits) {}
  Result<void> before_uncached() override {
    if (count_cache_hits_) return {};  // admitted at the edge
    return client_.admit(policy::Clock::now());
  }
  void on_usage(pipeline::LayerId layer, const api::Usage& usage) override {
    if (!count_cache_hits_ && pipeline::is_cache(layer)) return;
    client_.charge(policy::Clock::now(), static_cast<uint64_t>(std::max<int64_t>(0, usage.prompt_tokens) +
                                                               std::max<int64_t>(0, usage.completion_tokens)));
  }

 private:
  policy::Client& client_;
  const bool count_cache_hits_;
};

// Every key the configuration holds in clear, to redact from what goes to clients and logs.
std::vector<std::string> secrets_of(const config::Config& config) {
  std::vector<std::string> secrets{config.gateway_api_key};
  for (const config::UpstreamTarget& target : config::upstream_targets(config)) {
    secrets.insert(secrets.end(), target.api_keys.begin(), target.api_keys.end());
  }
  std::erase(secrets, std::string());
  return secrets;
}

// Counts a request in flight for as long as it lives.
class InFlight {
 public:
  explicit InFlight(std::atomic<uint64_t>& count) : count_(count) { count_.fetch_add(1, std::memory_order_relaxed); }
  ~InFlight() { count_.fetch_sub(1, std::memory_order_relaxed); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::atomic<uint64_t>& count_;
};

std::vector<std::string> route_labels() {
  std::vector<std::string> labels;
  for (const auto& route : kRoutes) labels.emplace_back(route.path);
  labels.emplace_back("other");
  return labels;
}

api::WireFormat format_of(std::string_view path) {
  if (path == "/v1/messages" || path.starts_with("/v1/messages/")) return api::WireFormat::kAnthropic;
  if (path.starts_with("/api/")) return api::WireFormat::kNative;
  if (path == "/v1/completions" || path == "/completions") return api::WireFormat::kCompletions;
  if (path == "/v1/responses" || path == "/responses") return api::WireFormat::kResponses;
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

// The models the gateway names itself: the configured one, the local embedding model.
std::vector<ModelEntry> served_models(const config::Config& config, bool local_embedder) {
  std::vector<ModelEntry> served(1);
  served[0].id = served[0].display_name = config.external_llm_model;
  served[0].owner = std::string(config::to_string(config.llm_provider));
  if (local_embedder) {
    ModelEntry local;
    local.id = local.display_name = embedding_model_name(config);
    local.owner = "isartor";
    served.push_back(std::move(local));
  }
  return served;
}

// How long the provider's model list is kept, and how soon a failed fetch is tried again.
constexpr std::chrono::seconds kModelListTtl{300};
constexpr std::chrono::seconds kModelListRetry{30};

}  // namespace

Gateway::Gateway(config::Config config)
    : config_(std::move(config)),
      connections_(budget_for(config_)),
      clients_(std::make_unique<policy::Clients>(config_)),
      secrets_(secrets_of(config_)),
      http_client_(std::make_unique<providers::HttpClient>(
          providers::HttpClientLimits{static_cast<long>(connections_.upstream), config_.max_response_bytes})) {
  Components components = build_components(config_, *http_client_);
  upstream_ = std::move(components.upstream);
  embedder_ = std::move(components.embedder);
  exact_cache_ = std::move(components.exact_cache);
  metrics_ = std::make_shared<metrics::GatewayMetrics>(route_labels(), upstream_->names());
  upstream_->set_observer(metrics_.get());
  models_ = std::make_unique<ModelCatalog>(*upstream_, served_models(config_, embedder_ != nullptr), kModelListTtl,
                                           kModelListRetry);
  pipeline_ = std::make_unique<pipeline::Pipeline>(std::move(components.layers), metrics_);
  if (components.l2_loader) l2_loader_ = std::jthread(std::move(components.l2_loader));
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
  for (const auto& header : error.headers) response.headers.push_back(header);
  if (error.upstream_status != 0) {
    // Tells an operator the provider answered this, not the gateway.
    response.headers.emplace_back("X-Isartor-Upstream-Status", std::to_string(error.upstream_status));
  }
  return response;
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
  for (const auto& layer : pipeline_->layers()) layers[std::string(pipeline::to_string(layer->id()))] = describe(layer->status());
  layers["l3"]["provider"] = upstream_->primary();
  api::Json upstreams = api::Json::array();
  for (const auto& member : upstream_->status()) {
    upstreams.push_back({{"name", member.name},
                         {"ready", member.ready},
                         {"circuit", providers::to_string(member.breaker)},
                         {"keys", member.keys},
                         {"keys_available", member.keys_available}});
  }
  layers["l3"]["providers"] = std::move(upstreams);
  auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  return json_response(200, {{"status", "ok"}, {"version", ISARTOR_VERSION}, {"uptime_secs", uptime}, {"layers", layers}});
}

namespace {

// `id` among `models`, or a 404 naming those served.
http::Response model_response(const std::vector<ModelEntry>& models, std::string_view id, bool anthropic) {
  std::string names;
  for (const auto& model : models) {
    if (model.id == id) return json_response(200, render_model(model, anthropic));
    if (names.size() < 2000) names += (names.empty() ? "" : ", ") + model.id;
  }
  Error error(ErrorCode::kNotFound,
              "the model '" + std::string(id) + "' is not served by this gateway (it serves: " + names + ")", "model");
  auto rendered = api::render_error(anthropic ? api::WireFormat::kAnthropic : api::WireFormat::kOpenAI, error);
  return {rendered.status, "application/json", {}, std::move(rendered.body)};
}

}  // namespace

asio::awaitable<http::Response> Gateway::models(const http::Request& request) {
  // Anthropic's SDK sends anthropic-version and reads Anthropic's list shape.
  const bool anthropic = !request.header("anthropic-version").empty();
  const std::vector<ModelEntry> listed = co_await models_->list();
  if (!request.path.starts_with(kModelPrefix)) co_return json_response(200, render_model_list(listed, anthropic));
  co_return model_response(listed, core::percent_decode(request.path.substr(kModelPrefix.size())), anthropic);
}

// Everything but the chat routes is answered synchronously; std::nullopt means "a chat route".
// (Kept out of the coroutine: g++ 12 miscompiles initializer lists inside coroutine frames.)
std::optional<http::Response> Gateway::route(const http::Request& request, const policy::Client* client) const {
  const std::string& path = request.path;
  const Route* route = nullptr;
  bool path_known = false;
  for (const auto& r : kRoutes) {
    const bool matches = r.path == path || (r.path == "/v1/models" && path.starts_with(kModelPrefix) &&
                                            path.size() > kModelPrefix.size());
    if (!matches) continue;
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
  if (client == nullptr) {
    return render_error(path, Error(ErrorCode::kUnauthorized,
                                    "invalid or missing gateway API key: send it as 'X-API-Key: <key>' or "
                                    "'Authorization: Bearer <key>'"));
  }
  if (path == "/metrics") return scrape();
  if (path.starts_with(kAdminPrefix)) return admin(request, *client);
  return std::nullopt;
}

http::Response Gateway::scrape() const {
  metrics::Readings readings;
  readings.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  readings.requests_in_flight = in_flight_.load(std::memory_order_relaxed);
  for (const auto& layer : pipeline_->layers()) {
    readings.layers.push_back({layer->id(), layer->status().ready, layer->cache_stats()});
  }
  readings.upstreams = upstream_->status();
  for (const policy::Client* client : clients_->all()) readings.clients.push_back({client->name(), client->reading()});
  return {200, std::string(metrics::kExpositionContentType), {}, metrics_->render(readings)};
}

asio::awaitable<void> Gateway::handle(const http::Request& request, http::Responder& client) {
  const InFlight in_flight(in_flight_);
  MeteredResponder responder(client);
  // Recorded however the exchange ends, a client that went away (an exception) included.
  const ExchangeRecord record(*metrics_, request, responder);
  co_await serve(request, responder);
}

asio::awaitable<void> Gateway::serve(const http::Request& request, MeteredResponder& responder) {
  policy::Client* client = clients_->identify(presented_key(request));
  responder.set_client(client);
  if (auto response = route(request, client)) {
    co_await responder.send(std::move(*response));
    co_return;
  }
  if (request.path == "/v1/models" || request.path.starts_with(kModelPrefix)) {
    auto response = co_await models(request);
    co_await responder.send(std::move(response));
    co_return;
  }
  if (request.path == "/v1/embeddings" || request.path == "/embeddings" ||
      request.path == "/v1/messages/count_tokens") {
    auto response = co_await json_route(request, *client);
    co_await responder.send(std::move(response));
    co_return;
  }
  co_await chat(format_of(request.path), request, *client, responder);
}

namespace {

// Brings a request body of any route into the canonical OpenAI form (an OpenAI body moves through).
Result<api::Json> to_canonical(api::WireFormat format, api::Json body) {
  switch (format) {
    case api::WireFormat::kOpenAI: {
      RETURN_IF_ERROR(api::validate_chat_request(body));
      return body;
    }
    case api::WireFormat::kAnthropic:
      return api::anthropic_request_to_openai(body);
    case api::WireFormat::kCompletions:
      return api::completions_request_to_chat(body);
    case api::WireFormat::kResponses:
      return api::responses_request_to_chat(body);
    case api::WireFormat::kNative:
      return api::native_request_to_chat(body);
  }
  return fail(ErrorCode::kInternal, "unknown wire format");
}

// Null means absent for every optional top-level field, as the providers treat it.
void drop_null_members(api::Json& body) {
  for (auto it = body.begin(); it != body.end();) it = it->is_null() ? body.erase(it) : std::next(it);
}

// A client's JSON body, bounded in depth, as an object whose null members are gone (null means
// absent for every optional top-level field, as the providers treat it).
Result<api::Json> parse_body(const http::Request& request) {
  if (api::json_nests_deeper_than(request.body)) {
    return fail(ErrorCode::kInvalidRequest,
                fmt::format("request body nests objects and arrays deeper than {} levels", api::kMaxJsonDepth));
  }
  auto body = api::Json::parse(request.body, nullptr, false);
  if (body.is_discarded()) return fail(ErrorCode::kInvalidRequest, "request body is not valid JSON");
  if (!body.is_object()) return fail(ErrorCode::kInvalidRequest, "request body must be a JSON object");
  drop_null_members(body);
  return body;
}

// The client header fields passed on to the provider (an allow-list: never auth), by the API the
// route speaks: Anthropic's betas and API version, OpenAI's organization and project (which
// choose the gateway key's billing scope and permissions). A provider of another API drops them.
constexpr std::array<std::string_view, 2> kAnthropicHeaders{"anthropic-beta", "anthropic-version"};
constexpr std::array<std::string_view, 2> kOpenAIHeaders{"openai-organization", "openai-project"};

providers::ClientHeaders forwarded_headers(const http::Request& request, api::WireFormat format) {
  providers::ClientHeaders out;
  if (format == api::WireFormat::kNative) return out;
  for (std::string_view name : format == api::WireFormat::kAnthropic ? kAnthropicHeaders : kOpenAIHeaders) {
    if (auto value = request.header(name); !value.empty()) out.push_back(std::string(name) + ": " + std::string(value));
  }
  return out;
}

// Resolves the model of a body the way chat() does: the configured one when absent or empty.
void default_model(api::Json& body, const std::string& model) {
  auto it = body.find("model");
  if (it == body.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) body["model"] = model;
}

}  // namespace

http::Response Gateway::admin(const http::Request& request, const policy::Client& client) const {
  if (config_.gateway_api_key.empty() && config_.gateway_api_keys.empty()) {
    return render_error(request.path, Error(ErrorCode::kForbidden,
                                            "admin routes are off while no gateway key is set: set "
                                            "ISARTOR__GATEWAY_API_KEY or ISARTOR__GATEWAY_API_KEYS"));
  }
  // A team's key serves its traffic; flushing everyone's cache takes the operator's.
  if (!client.admin()) {
    return render_error(request.path, Error(ErrorCode::kForbidden,
                                            "the gateway key '" + client.name() +
                                                "' may not use the admin routes: use ISARTOR__GATEWAY_API_KEY or a "
                                                "key marked \"admin\": true in ISARTOR__GATEWAY_API_KEYS"));
  }
  const auto& layers = pipeline_->layers();
  if (request.path == "/admin/cache/stats") {
    api::Json out = api::Json::object();
    for (const auto& layer : layers) {
      const auto stats = layer->cache_stats();
      if (!stats) continue;
      const pipeline::LayerId id = layer->id();
      out[std::string(pipeline::to_string(id))] = {
          {"entries", stats->entries},
          {"bytes", stats->bytes},
          {"hits", metrics_->layer_outcomes(id, pipeline::LayerOutcome::kAnswered)},
          {"misses", metrics_->layer_outcomes(id, pipeline::LayerOutcome::kPassed)},
          {"bypassed", metrics_->layer_outcomes(id, pipeline::LayerOutcome::kBypassed)}};
    }
    return json_response(200, out);
  }
  auto body = request.body.empty() ? Result<api::Json>(api::Json::object()) : parse_body(request);
  if (!body) return render_error(request.path, body.error());
  if (request.path == "/admin/cache/flush") {
    // {"layer": "l1a"} flushes one cache; no layer, all of them.
    const auto layer_it = body->find("layer");
    if (layer_it != body->end() && !(layer_it->is_string() && !layer_it->get_ref<const std::string&>().empty())) {
      return render_error(request.path, Error(ErrorCode::kInvalidRequest, "'layer' must name a cache layer", "layer"));
    }
    const std::string only = layer_it == body->end() ? std::string() : layer_it->get<std::string>();
    api::Json flushed = api::Json::array();
    for (const auto& layer : layers) {
      const std::string name(pipeline::to_string(layer->id()));
      if (!layer->cache_stats() || (!only.empty() && only != name)) continue;
      layer->clear();
      flushed.push_back(name);
    }
    if (!only.empty() && flushed.empty()) {
      return render_error(request.path, Error(ErrorCode::kNotFound, "no cache layer '" + only + "' is configured", "layer"));
    }
    LOG_INFO(kTarget, "caches flushed by an admin request: {}", flushed.dump());
    return json_response(200, {{"flushed", flushed}});
  }
  // DELETE /admin/cache/entry {"route": "/v1/messages", "request": {...}}: the entry exactly this
  // request (with this admin request's cache headers: namespace, session) would be answered from.
  const auto route_it = body->find("route");
  if (route_it != body->end() && !route_it->is_string()) {
    return render_error(request.path, Error(ErrorCode::kInvalidRequest, "'route' must be a string", "route"));
  }
  const std::string route = route_it == body->end() ? std::string("/v1/chat/completions") : route_it->get<std::string>();
  const auto it = body->find("request");
  if (it == body->end() || !it->is_object()) {
    return render_error(request.path, Error(ErrorCode::kInvalidRequest, "'request' must be the chat request body", "request"));
  }
  const api::WireFormat format = format_of(route);
  api::Json client_body = *it;
  drop_null_members(client_body);
  auto canonical = to_canonical(format, std::move(client_body));
  if (!canonical) return render_error(request.path, canonical.error());
  pipeline::ChatRequest chat_request;
  chat_request.format = format;
  chat_request.body = std::move(*canonical);
  chat_request.cache = cache_policy(request, config_.cache_scope, std::chrono::seconds(config_.cache_ttl_secs));
  default_model(chat_request.body, config_.external_llm_model);
  api::Json deleted = api::Json::object();
  for (const auto& layer : layers) {
    if (layer->cache_stats()) deleted[std::string(pipeline::to_string(layer->id()))] = layer->forget(chat_request);
  }
  return json_response(200, {{"deleted", deleted}});
}

asio::awaitable<http::Response> Gateway::json_route(const http::Request& request, policy::Client& client) {
  if (auto admitted = client.admit(policy::Clock::now()); !admitted) co_return render_error(request.path, admitted.error());
  auto body = parse_body(request);
  if (!body) co_return render_error(request.path, body.error());
  Result<RouteAnswer> answer = fail(ErrorCode::kInternal, "unreachable");
  if (request.path == "/v1/messages/count_tokens") {
    CountTokensRoute route{upstream_.get(), config_.llm_provider == config::Provider::kAnthropic, embedder_.get(),
                           embedding_model_name(config_), config_.external_llm_model};
    answer = co_await answer_count_tokens(route, std::move(*body), forwarded_headers(request, api::WireFormat::kAnthropic));
  } else {
    EmbeddingsRoute route{embedder_.get(), embedding_model_name(config_), upstream_.get(), exact_cache_.get(),
                          forwarded_headers(request, api::WireFormat::kOpenAI)};
    answer = co_await answer_embeddings(
        route, std::move(*body), cache_policy(request, config_.cache_scope, std::chrono::seconds(config_.cache_ttl_secs)));
  }
  if (!answer) {
    Error error = answer.error();
    error.message = api::redact(error.message, secrets_);
    co_return render_error(request.path, error);
  }
  co_return http::Response{200, "application/json", std::move(answer->headers), std::move(answer->body)};
}

asio::awaitable<void> Gateway::chat(api::WireFormat format, const http::Request& request, policy::Client& client,
                                    MeteredResponder& responder) {
  if (clients_->count_cache_hits()) {
    if (auto admitted = client.admit(policy::Clock::now()); !admitted) {
      auto response = render_error(request.path, admitted.error());
      co_await responder.send(std::move(response));
      co_return;
    }
  }
  auto body = parse_body(request);
  if (!body) {
    auto response = render_error(request.path, body.error());
    co_await responder.send(std::move(response));
    co_return;
  }
  // Same format in as the provider's: the body goes upstream as the client wrote it.
  std::optional<providers::PassThrough> native;
  if (upstream_->speaks(format)) {
    native.emplace();
    native->body = *body;
    default_model(native->body, config_.external_llm_model);
    native->headers = forwarded_headers(request, format);
  }
  // A response object repeats the request's settings, whichever layer answers.
  api::Json echo = format == api::WireFormat::kResponses ? api::responses_echo(*body) : api::Json();
  auto canonical = to_canonical(format, std::move(*body));
  // Content the canonical form cannot hold (a document block, a server tool), or an answer only
  // the provider can give (extended thinking), goes straight to L3 when it reads the request as
  // it is: past the caches and L2, never stored.
  const bool provider_only =
      native && ((!canonical && canonical.error().code == ErrorCode::kUnprocessable) ||
                 (canonical && format == api::WireFormat::kAnthropic && api::anthropic_needs_the_provider(native->body)));
  if (!canonical && !provider_only) {
    auto response = render_error(request.path, canonical.error());
    co_await responder.send(std::move(response));
    co_return;
  }
  pipeline::ChatRequest chat_request;
  chat_request.format = format;
  chat_request.body = provider_only ? api::Json::object() : std::move(*canonical);
  chat_request.cache = cache_policy(request, config_.cache_scope, std::chrono::seconds(config_.cache_ttl_secs));
  chat_request.provider_only = provider_only;
  default_model(chat_request.body, config_.external_llm_model);
  const api::Json& stream_flag_from = provider_only ? native->body : chat_request.body;
  chat_request.stream = format != api::WireFormat::kNative && stream_flag_from.value("stream", false) == true;
  chat_request.client_headers = forwarded_headers(request, format);
  chat_request.native = std::move(native);
  chat_request.budget = std::make_shared<ClientBudget>(client, clients_->count_cache_hits());

  WriteOptions options;
  options.format = format;
  options.stream = chat_request.stream;
  options.model = chat_request.body["model"].get<std::string>();
  options.secrets = secrets_;
  options.cache_looked_up = chat_request.cache.lookup && !chat_request.provider_only;
  options.echo = std::move(echo);
  // Compared, not converted: a client's {"include_usage": "yes"} must not throw.
  const auto so = chat_request.body.find("stream_options");
  options.include_usage_chunk = so != chat_request.body.end() && so->is_object() && so->contains("include_usage") &&
                                (*so)["include_usage"] == true;

  chat_request.rendering = pipeline::rendering_of(format, chat_request.stream, options.include_usage_chunk);
  auto answer = co_await pipeline_->handle(std::move(chat_request));
  if (!answer) {
    Error error = answer.error();
    error.message = api::redact(error.message, options.secrets);
    auto response = render_error(request.path, error);
    co_await responder.send(std::move(response));
    co_return;
  }
  responder.set_layer(answer->layer);
  co_await write_answer(std::move(*answer), options, responder);
}

}  // namespace isartor::app
