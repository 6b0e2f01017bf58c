#include "providers/openai_provider.h"

#include "core/strings.h"

namespace isartor::providers {
namespace asio = boost::asio;

namespace {

class OpenAISseStream final : public SseChunkStream {
 public:
  using SseChunkStream::SseChunkStream;

 protected:
  Result<bool> decode(const api::SseEvent& event, std::vector<api::Json>& out) override {
    if (event.data == "[DONE]") return true;
    if (event.data.empty()) return false;
    auto chunk = api::parse_json(event.data);
    if (!chunk.is_object()) return fail(ErrorCode::kUpstream, "upstream sent a stream event that is not JSON");
    // Some OpenAI-compatible servers report errors in-band.
    if (chunk.contains("error")) {
      const auto& e = chunk["error"];
      std::string message = e.is_object() && e.value("message", api::Json()).is_string()
                                ? e["message"].get<std::string>()
                                : e.dump();
      return fail(ErrorCode::kUpstream, "upstream stream failed: " + message);
    }
    out.push_back(std::move(chunk));
    return false;
  }
};

}  // namespace

Error missing_key_error(std::string_view provider) {
  return Error(ErrorCode::kUnavailable,
               "no API key configured for the " + std::string(provider) +
                   " provider: set ISARTOR__EXTERNAL_LLM_API_KEY (or ISARTOR__EXTERNAL_LLM_API_KEY_FILE)");
}

Error no_native_endpoint(std::string_view provider, NativeEndpoint endpoint) {
  const char* what = endpoint == NativeEndpoint::kEmbeddings    ? "embeddings"
                     : endpoint == NativeEndpoint::kCountTokens ? "count_tokens"
                                                                : "model list";
  return Error(ErrorCode::kNotFound, "the " + std::string(provider) + " provider has no " + what + " endpoint");
}

UpstreamSettings native_settings(const UpstreamSettings& settings, std::string url,
                                 const std::vector<std::string>& client_headers) {
  UpstreamSettings s = settings;
  s.url = std::move(url);
  for (const std::string& field : client_headers) {
    const std::size_t colon = field.find(':');
    if (colon == std::string::npos || colon == 0) continue;
    const std::string_view name = std::string_view(field).substr(0, colon + 1);  // "name:"
    std::erase_if(s.headers, [&](const std::string& ours) { return core::istarts_with(ours, name); });
    s.headers.push_back(field);
  }
  return s;
}

UpstreamSettings with_client_headers(const UpstreamSettings& settings, const ClientHeaders& client_headers) {
  ClientHeaders taken;
  if (!settings.client_header_prefix.empty()) {
    for (const std::string& field : client_headers) {
      if (core::istarts_with(field, settings.client_header_prefix)) taken.push_back(field);
    }
  }
  return native_settings(settings, settings.url, taken);
}

UpstreamSettings get_settings(const UpstreamSettings& settings, std::string url) {
  UpstreamSettings s = settings;
  s.url = std::move(url);
  s.method = "GET";
  return s;
}

std::string base_url(const config::UpstreamTarget& target, std::string_view default_url) {
  std::string url = target.url.empty() ? std::string(default_url) : target.url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

asio::awaitable<Result<api::Json>> OpenAICompatibleProvider::complete(const api::Json& body,
                                                                     const ClientHeaders& headers) {
  if (!ready()) co_return std::unexpected(missing_key_error(settings_.provider));
  api::Json request = body;
  request.erase("stream");
  request.erase("stream_options");
  co_return co_await post_json(http_, with_client_headers(settings_, headers), request);
}

asio::awaitable<Result<std::unique_ptr<ChunkStream>>> OpenAICompatibleProvider::stream(const api::Json& body,
                                                                                      const ClientHeaders& headers) {
  if (!ready()) co_return std::unexpected(missing_key_error(settings_.provider));
  api::Json request = body;
  request["stream"] = true;
  // Usage arrives in a final chunk only when asked for; the cache and the Anthropic front end need it.
  if (!request.contains("stream_options")) request["stream_options"] = {{"include_usage", true}};
  std::string payload = request.dump();
  CO_ASSIGN_OR_RETURN(auto call,
                      co_await open_upstream(http_, with_client_headers(settings_, headers), std::move(payload), true));
  co_return std::make_unique<OpenAISseStream>(std::move(call), settings_);
}

asio::awaitable<Result<api::Json>> OpenAICompatibleProvider::call_native(const NativeRequest& request) {
  if (request.endpoint == NativeEndpoint::kCountTokens || base_.empty()) {
    co_return std::unexpected(no_native_endpoint(settings_.provider, request.endpoint));
  }
  if (!ready()) co_return std::unexpected(missing_key_error(settings_.provider));
  UpstreamSettings settings = with_client_headers(settings_, request.headers);
  if (request.endpoint == NativeEndpoint::kModels) {
    co_return co_await post_json(http_, get_settings(settings, base_ + "/models"), request.body);
  }
  settings.url = base_ + "/embeddings";
  co_return co_await post_json(http_, settings, request.body);
}

namespace {

// `client_header_prefix`: see UpstreamSettings (OpenAI takes OpenAI-Organization / -Project).
std::unique_ptr<ProviderClient> make_bearer_provider(const ProviderSpec& spec, HttpClient& http,
                                                     std::string_view default_url, std::string client_header_prefix) {
  UpstreamSettings s;
  s.provider = spec.target.name;
  const std::string base = base_url(spec.target, default_url);
  s.url = base + "/chat/completions";
  s.api_key = spec.api_key;
  s.headers = {"Authorization: Bearer " + s.api_key};
  s.timeout = std::chrono::seconds(spec.config.l3_timeout_secs);
  s.client_header_prefix = std::move(client_header_prefix);
  return std::make_unique<OpenAICompatibleProvider>(std::move(s), base, http);
}

}  // namespace

std::unique_ptr<ProviderClient> make_openai_provider(const ProviderSpec& spec, HttpClient& http) {
  return make_bearer_provider(spec, http, "https://api.openai.com/v1", "openai-");
}

std::unique_ptr<ProviderClient> make_xai_provider(const ProviderSpec& spec, HttpClient& http) {
  return make_bearer_provider(spec, http, "https://api.x.ai/v1", "");
}

}  // namespace isartor::providers
