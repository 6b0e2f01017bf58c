// Azure OpenAI: the OpenAI protocol at a per-deployment URL, versioned by a query parameter,
// authenticated with an `api-key` header.
#include "providers/openai_provider.h"

namespace isartor::providers {

std::unique_ptr<ProviderClient> make_azure_provider(const ProviderSpec& spec, HttpClient& http) {
  UpstreamSettings s;
  s.provider = spec.target.name;
  // config::load() guarantees the endpoint and deployment are set for azure.
  s.url = base_url(spec.target, "") + "/openai/deployments/" + spec.target.azure_deployment_id +
          "/chat/completions?api-version=" + spec.config.azure_api_version;
  s.api_key = spec.api_key;
  s.headers = {"api-key: " + s.api_key};
  s.timeout = std::chrono::seconds(spec.config.l3_timeout_secs);
  // Embeddings live on a deployment of their own, which the configuration does not name, and
  // the model list is the resource's (deployments), not an OpenAI-style one.
  return std::make_unique<OpenAICompatibleProvider>(std::move(s), "", http);
}

}  // namespace isartor::providers
