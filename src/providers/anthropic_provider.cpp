// Anthropic Messages API: requests and answers are translated from and to the canonical OpenAI
// form (api/anthropic_outbound.h), streams event by event; a request that came as an Anthropic request
// goes as it came, and its answer comes back as Anthropic gave it (prompt caching, thinking,
// betas intact).
#include <utility>

#include "api/anthropic_outbound.h"
#include "providers/openai_provider.h"

namespace isartor::providers {
namespace asio = boost::asio;

namespace {

constexpr const char* kAnthropicVersion = "2023-06-01";

class AnthropicSseStream final : public SseChunkStream {
 public:
  // keep_native: every event is also kept as SSE text for take_native() (a pass-through stream).
  // json_tool: the request's json_answer_tool(), whose input streams as the answer's text.
  AnthropicSseStream(std::unique_ptr<HttpCall> call, const UpstreamSettings& settings, bool keep_native,
                     std::string json_tool = {})
      : SseChunkStream(std::move(call), settings),
        decoder_(std::move(json_tool)),
        keep_native_(keep_native),
        api_key_(settings.api_key) {}

  std::string take_native() override { return std::exchange(native_, {}); }

 protected:
  Result<bool> decode(const api::SseEvent& event, std::vector<api::Json>& out) override {
    ASSIGN_OR_RETURN(auto chunks, decoder_.on_event(event));
    if (keep_native_) {
      // The key, should the upstream ever echo it; only the literal key, since the generic
      // patterns would rewrite answers that merely show what a key looks like.
      std::string text = api::format_sse(event);
      constexpr std::string_view kRedacted = "[REDACTED]";
      for (std::size_t at = 0; !api_key_.empty() && (at = text.find(api_key_, at)) != std::string::npos;
           at += kRedacted.size()) {
        text.replace(at, api_key_.size(), kRedacted);
      }
      native_ += text;
      // An event with no canonical chunk (ping, thinking) still goes out at once.
      if (chunks.empty()) out.push_back(api::Json::object());
    }
    for (auto& c : chunks) out.push_back(std::move(c));
    return decoder_.done();
  }

 private:
  api::AnthropicStreamDecoder decoder_;
  bool keep_native_;
  std::string api_key_;
  std::string native_;
};

class AnthropicProvider final : public ProviderClient {
 public:
  AnthropicProvider(UpstreamSettings settings, int default_max_tokens, HttpClient& http)
      : settings_(std::move(settings)), default_max_tokens_(default_max_tokens), http_(http) {}

  std::string_view name() const override { return settings_.provider; }
  bool ready() const override { return !settings_.api_key.empty(); }

  asio::awaitable<Result<api::Json>> complete(const api::Json& body, const ClientHeaders& headers) override {
    if (!ready()) co_return std::unexpected(missing_key_error(settings_.provider));
    CO_RETURN_IF_ERROR(api::check_anthropic_can_express(body));
    api::Json request = api::openai_request_to_anthropic(body, default_max_tokens_);
    request.erase("stream");
    CO_ASSIGN_OR_RETURN(auto message, co_await post_json(http_, with_client_headers(settings_, headers), request));
    co_return api::anthropic_response_to_openai(message, api::json_answer_tool(body));
  }

  asio::awaitable<Result<std::unique_ptr<ChunkStream>>> stream(const api::Json& body,
                                                               const ClientHeaders& headers) override {
    if (!ready()) co_return std::unexpected(missing_key_error(settings_.provider));
    CO_RETURN_IF_ERROR(api::check_anthropic_can_express(body));
    api::Json request = api::openai_request_to_anthropic(body, default_max_tokens_);
    request["stream"] = true;
    std::string payload = request.dump();
    CO_ASSIGN_OR_RETURN(
        auto call, co_await open_upstream(http_, with_client_headers(settings_, headers), std::move(payload), true));
    co_return std::make_unique<AnthropicSseStream>(std::move(call), settings_, false, api::json_answer_tool(body));
  }

  bool speaks(api::WireFormat format) const override { return format == api::WireFormat::kAnthropic; }

  asio::awaitable<Result<NativeCompletion>> complete_native(const PassThrough& request) override {
    if (!ready()) co_return std::unexpected(missing_key_error(settings_.provider));
    api::Json body = request.body;
    body.erase("stream");
    CO_ASSIGN_OR_RETURN(auto message,
                        co_await post_json(http_, native_settings(settings_, settings_.url, request.headers), body));
    NativeCompletion answer;
    answer.completion = api::anthropic_response_to_openai(message);
    answer.native = std::move(message);
    co_return answer;
  }

  asio::awaitable<Result<std::unique_ptr<ChunkStream>>> stream_native(const PassThrough& request) override {
    if (!ready()) co_return std::unexpected(missing_key_error(settings_.provider));
    api::Json body = request.body;
    body["stream"] = true;
    const UpstreamSettings settings = native_settings(settings_, settings_.url, request.headers);
    CO_ASSIGN_OR_RETURN(auto call, co_await open_upstream(http_, settings, api::dump_json(body), true));
    co_return std::make_unique<AnthropicSseStream>(std::move(call), settings_, true);
  }

  asio::awaitable<Result<api::Json>> call_native(const NativeRequest& request) override {
    if (request.endpoint == NativeEndpoint::kEmbeddings) {
      co_return std::unexpected(no_native_endpoint(settings_.provider, request.endpoint));
    }
    if (!ready()) co_return std::unexpected(missing_key_error(settings_.provider));
    if (request.endpoint == NativeEndpoint::kModels) {
      // settings_.url is <base>/v1/messages; the list is <base>/v1/models, 1000 a page at most.
      std::string url =
          settings_.url.substr(0, settings_.url.size() - std::string_view("messages").size()) + "models?limit=1000";
      co_return co_await post_json(http_, get_settings(settings_, std::move(url)), request.body);
    }
    co_return co_await post_json(http_, native_settings(settings_, settings_.url + "/count_tokens", request.headers),
                                 request.body);
  }

 private:
  UpstreamSettings settings_;
  int default_max_tokens_;
  HttpClient& http_;
};

}  // namespace

std::unique_ptr<ProviderClient> make_anthropic_provider(const ProviderSpec& spec, HttpClient& http) {
  UpstreamSettings s;
  s.provider = spec.target.name;
  s.url = base_url(spec.target, "https://api.anthropic.com") + "/v1/messages";
  s.api_key = spec.api_key;
  s.headers = {"x-api-key: " + s.api_key, std::string("anthropic-version: ") + kAnthropicVersion};
  s.timeout = std::chrono::seconds(spec.config.l3_timeout_secs);
  s.client_header_prefix = "anthropic-";
  return std::make_unique<AnthropicProvider>(std::move(s), spec.config.anthropic_max_tokens, http);
}

std::unique_ptr<ProviderClient> make_provider(const ProviderSpec& spec, HttpClient& http) {
  switch (spec.target.provider) {
    case config::Provider::kOpenAI: return make_openai_provider(spec, http);
    case config::Provider::kXai: return make_xai_provider(spec, http);
    case config::Provider::kAzure: return make_azure_provider(spec, http);
    case config::Provider::kAnthropic: return make_anthropic_provider(spec, http);
  }
  return make_openai_provider(spec, http);
}

}  // namespace isartor::providers
