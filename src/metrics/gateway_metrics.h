#pragma once
// The gateway's metrics: every request by route, answering layer and status; every layer tried
// by outcome and latency; tokens per layer and tokens saved; upstream answers by status. Fed by
// the pipeline (as its Observer) and by the gateway once per exchange; rendered for /metrics in
// the Prometheus text format. Names follow upstream Isartor's where it has one
// (isartor_requests_total, isartor_request_duration_seconds, isartor_layer_duration_seconds,
// isartor_tokens_saved_total, isartor_errors_total, isartor_cache_events_total).
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "metrics/instruments.h"
#include "pipeline/observer.h"
#include "policy/clients.h"
#include "providers/upstream_chain.h"

namespace isartor::metrics {

// What the gateway reads at scrape time (gauges).
struct Readings {
  double uptime_seconds = 0;
  uint64_t requests_in_flight = 0;
  struct Layer {
    pipeline::LayerId id;
    bool ready = false;
    std::optional<pipeline::CacheStats> cache;
  };
  std::vector<Layer> layers;  // the layers configured
  std::vector<providers::MemberStatus> upstreams;  // L3's providers, in order
  struct Client {
    std::string name;
    policy::Client::Reading reading;
  };
  std::vector<Client> clients;  // one per gateway key
};

// Counting is lock-free (relaxed atomics); thread-safe throughout.
class GatewayMetrics final : public pipeline::Observer, public providers::UpstreamObserver {
 public:
  // `routes`: the label of each route index record_request() takes; `providers`: the name of
  // each member of L3's chain, in order.
  GatewayMetrics(std::vector<std::string> routes, std::vector<std::string> providers);
  ~GatewayMetrics() override;

  void on_layer(pipeline::LayerId layer, pipeline::LayerOutcome outcome, std::chrono::nanoseconds took,
                const Error* error) override;
  void on_usage(pipeline::LayerId layer, const api::Usage& usage) override;
  void on_attempt(std::size_t member, providers::AttemptOutcome outcome, int status,
                  std::chrono::nanoseconds took) override;

  // One finished exchange: `layer` is the layer that answered (none for errors and non-chat
  // routes); a route index out of range counts as the last route.
  void record_request(std::size_t route, std::optional<pipeline::LayerId> layer, int status,
                      std::chrono::nanoseconds took, uint64_t bytes_in, uint64_t bytes_out);

  // How often `layer` ended a request with `outcome` (a cache: hits, misses, bypasses).
  uint64_t layer_outcomes(pipeline::LayerId layer, pipeline::LayerOutcome outcome) const;

  // The whole exposition text for one scrape.
  std::string render(const Readings& readings) const;

 private:
  static constexpr std::size_t kStatuses = 600;             // HTTP status codes, 0 = no answer
  static constexpr std::size_t kLayerSlots = pipeline::kLayerCount + 1;  // the last: no layer
  struct RouteCounters;
  struct UpstreamCounters;
  std::vector<std::string> routes_;
  std::vector<std::string> providers_;
  std::unique_ptr<RouteCounters[]> by_route_;
  std::unique_ptr<UpstreamCounters[]> by_upstream_;
  std::array<std::array<Counter, pipeline::kLayerOutcomeCount>, pipeline::kLayerCount> layer_outcomes_;
  std::array<LatencyHistogram, pipeline::kLayerCount> layer_duration_;
  std::array<std::array<Counter, 2>, pipeline::kLayerCount> tokens_;  // prompt, completion
};

}  // namespace isartor::metrics
