#pragma once
// Providers that speak the OpenAI chat.completions protocol: OpenAI itself, xAI and Azure
// OpenAI differ only in endpoint URL and auth header. The request body is forwarded untouched
// (tools, unknown fields), apart from the resolved model and the stream flags.
#include "providers/upstream.h"

namespace isartor::providers {

class OpenAICompatibleProvider final : public ProviderClient {
 public:
  // `base`: the URL its embeddings and models endpoints hang off, "" when it has none (Azure).
  OpenAICompatibleProvider(UpstreamSettings settings, std::string base, HttpClient& http)
      : settings_(std::move(settings)), base_(std::move(base)), http_(http) {}

  std::string_view name() const override { return settings_.provider; }
  bool ready() const override { return !settings_.key_required || !settings_.api_key.empty(); }
  using ProviderClient::complete;  // the overloads without client headers
  using ProviderClient::stream;
  boost::asio::awaitable<Result<api::Json>> complete(const api::Json& body, const ClientHeaders& headers) override;
  boost::asio::awaitable<Result<std::unique_ptr<ChunkStream>>> stream(const api::Json& body,
                                                                      const ClientHeaders& headers) override;
  boost::asio::awaitable<Result<api::Json>> call_native(const NativeRequest& request) override;

 private:
  UpstreamSettings settings_;
  std::string base_;
  HttpClient& http_;
};

// The error every provider returns while no key is configured. Pure.
Error missing_key_error(std::string_view provider);
// kNotFound: `provider` has no such endpoint (Anthropic has no embeddings). Pure.
Error no_native_endpoint(std::string_view provider, NativeEndpoint endpoint);
// `settings` aimed at `url` (another endpoint of the same provider) with the client's header
// fields ("name: value"), each replacing the gateway's field of that name. The caller allow-lists
// them (never an auth field). Pure.
UpstreamSettings native_settings(const UpstreamSettings& settings, std::string url,
                                 const std::vector<std::string>& client_headers);
// `settings` with those of the client's fields that its provider takes (client_header_prefix). Pure.
UpstreamSettings with_client_headers(const UpstreamSettings& settings, const ClientHeaders& client_headers);
// `settings` for a GET of `url` (a model list). Pure.
UpstreamSettings get_settings(const UpstreamSettings& settings, std::string url);

// One factory per provider, as make_provider() dispatches; each names its client after spec.target.
std::unique_ptr<ProviderClient> make_openai_provider(const ProviderSpec& spec, HttpClient& http);
std::unique_ptr<ProviderClient> make_xai_provider(const ProviderSpec& spec, HttpClient& http);
std::unique_ptr<ProviderClient> make_azure_provider(const ProviderSpec& spec, HttpClient& http);
std::unique_ptr<ProviderClient> make_anthropic_provider(const ProviderSpec& spec, HttpClient& http);

// Base URL without a trailing slash: the target's own or the provider's default. Pure.
std::string base_url(const config::UpstreamTarget& target, std::string_view default_url);

}  // namespace isartor::providers
