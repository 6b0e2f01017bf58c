#pragma once
// The gateway: routes, auth and the wire-format edges around the layer pipeline. main() builds
// one from the configuration and runs it.
#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "cache/cache_backend.h"
#include "config/config.h"
#include "core/fd_limit.h"
#include "core/sha256.h"
#include "app/metered_responder.h"
#include "app/models_route.h"
#include "http/server.h"
#include "metrics/gateway_metrics.h"
#include "inference/embedder.h"
#include "pipeline/pipeline.h"
#include "providers/http_client.h"
#include "policy/clients.h"
#include "providers/upstream_chain.h"

namespace isartor::app {

class Gateway {
 public:
  // Builds the layers the configuration asks for. Throws config::ConfigError if unusable.
  explicit Gateway(config::Config config);
  ~Gateway();

  // Serves until SIGINT/SIGTERM (see http::Server::run).
  void run();

  // The request entry point (exposed for in-process tests). Never throws for bad input.
  // Counts the exchange in the metrics.
  boost::asio::awaitable<void> handle(const http::Request& request, http::Responder& client);
  // The error body for a path, in the format of the route it belongs to.
  http::Response render_error(std::string_view path, const Error& error) const;

 private:
  config::Config config_;
  core::ConnectionBudget connections_;  // from the open-files limit, raised at construction
  std::unique_ptr<policy::Clients> clients_;  // the gateway keys and their limits
  std::vector<std::string> secrets_;          // every key in the configuration, redacted from errors
  std::unique_ptr<providers::HttpClient> http_client_;
  std::shared_ptr<providers::UpstreamChain> upstream_;  // L3's providers, also for the native routes
  std::shared_ptr<inference::Embedder> embedder_;        // L1b's model; null when unavailable
  std::shared_ptr<cache::CacheBackend> exact_cache_;     // L1a's store; null when L1a is off
  std::unique_ptr<ModelCatalog> models_;                 // GET /v1/models, from upstream_
  std::shared_ptr<metrics::GatewayMetrics> metrics_;     // the pipeline's observer too
  std::unique_ptr<pipeline::Pipeline> pipeline_;
  std::atomic<uint64_t> in_flight_{0};
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  // Brings L2's model (hub download and load, or the sidecar's first answer) while the gateway
  // serves; declared last so it is stopped and joined before the layers it feeds go away.
  std::jthread l2_loader_;

  // Everything but the chat and JSON routes; std::nullopt for those. `client`: null = unauthorized.
  std::optional<http::Response> route(const http::Request& request, const policy::Client* client) const;
  http::Response health() const;
  http::Response scrape() const;  // GET /metrics
  // GET /admin/cache/stats, POST /admin/cache/flush, DELETE /admin/cache/entry; 403 unless `client`
  // is an admin key.
  http::Response admin(const http::Request& request, const policy::Client& client) const;
  boost::asio::awaitable<void> serve(const http::Request& request, MeteredResponder& responder);
  // GET /v1/models and /v1/models/{id}.
  boost::asio::awaitable<http::Response> models(const http::Request& request);
  // The JSON routes besides chat: /v1/embeddings and /v1/messages/count_tokens.
  boost::asio::awaitable<http::Response> json_route(const http::Request& request, policy::Client& client);
  // `client` is admitted here when cache hits count, otherwise before L2/L3 (pipeline::RequestBudget).
  boost::asio::awaitable<void> chat(api::WireFormat format, const http::Request& request, policy::Client& client,
                                    MeteredResponder& responder);
};

// "isartor X.Y.Z" plus the linked llama.cpp's system info (proves the inference library links).
std::string version_string();

}  // namespace isartor::app
