#include "metrics/gateway_metrics.h"

#include "metrics/exposition.h"

namespace isartor::metrics {

using pipeline::LayerId;
using pipeline::LayerOutcome;

struct GatewayMetrics::RouteCounters {
  std::array<std::array<Counter, kStatuses>, kLayerSlots> requests;
  std::array<LatencyHistogram, kLayerSlots> duration;
  Counter bytes_in, bytes_out;
};

struct GatewayMetrics::UpstreamCounters {
  std::array<Counter, kStatuses> status;
  std::array<Counter, providers::kAttemptOutcomeCount> outcome;
  LatencyHistogram duration;
};

namespace {

constexpr std::array<LayerId, pipeline::kLayerCount> kLayers{LayerId::kL1a, LayerId::kL1b, LayerId::kL2, LayerId::kL3};
constexpr std::array<LayerOutcome, pipeline::kLayerOutcomeCount> kOutcomes{
    LayerOutcome::kAnswered, LayerOutcome::kPassed, LayerOutcome::kBypassed, LayerOutcome::kFailed};

std::size_t index(LayerId layer) { return static_cast<std::size_t>(layer); }
std::size_t index(LayerOutcome outcome) { return static_cast<std::size_t>(outcome); }

std::string_view layer_label(std::size_t slot) {
  return slot < pipeline::kLayerCount ? pipeline::to_string(kLayers[slot]) : std::string_view("none");
}

std::size_t status_slot(int status, std::size_t statuses) {
  return status > 0 && static_cast<std::size_t>(status) < statuses ? static_cast<std::size_t>(status) : 0;
}

// The cache label of a cache layer: "exact" (L1a) or "semantic" (L1b).
std::string_view cache_label(LayerId layer) { return layer == LayerId::kL1a ? "exact" : "semantic"; }

}  // namespace

GatewayMetrics::GatewayMetrics(std::vector<std::string> routes, std::vector<std::string> providers)
    : routes_(std::move(routes)), providers_(std::move(providers)) {
  if (routes_.empty()) routes_.emplace_back("other");
  if (providers_.empty()) providers_.emplace_back("none");
  by_route_ = std::make_unique<RouteCounters[]>(routes_.size());
  by_upstream_ = std::make_unique<UpstreamCounters[]>(providers_.size());
}

GatewayMetrics::~GatewayMetrics() = default;

void GatewayMetrics::on_layer(LayerId layer, LayerOutcome outcome, std::chrono::nanoseconds took, const Error*) {
  layer_outcomes_[index(layer)][index(outcome)].add();
  if (outcome != LayerOutcome::kBypassed) layer_duration_[index(layer)].observe(took);
}

void GatewayMetrics::on_attempt(std::size_t member, providers::AttemptOutcome outcome, int status,
                                std::chrono::nanoseconds took) {
  UpstreamCounters& counters = by_upstream_[std::min(member, providers_.size() - 1)];
  counters.status[status_slot(status, kStatuses)].add();
  counters.outcome[static_cast<std::size_t>(outcome)].add();
  counters.duration.observe(took);
}

void GatewayMetrics::on_usage(LayerId layer, const api::Usage& usage) {
  tokens_[index(layer)][0].add(static_cast<uint64_t>(std::max<int64_t>(0, usage.prompt_tokens)));
  tokens_[index(layer)][1].add(static_cast<uint64_t>(std::max<int64_t>(0, usage.completion_tokens)));
}

void GatewayMetrics::record_request(std::size_t route, std::optional<LayerId> layer, int status,
                                    std::chrono::nanoseconds took, uint64_t bytes_in, uint64_t bytes_out) {
  RouteCounters& counters = by_route_[std::min(route, routes_.size() - 1)];
  const std::size_t slot = layer ? index(*layer) : pipeline::kLayerCount;
  counters.requests[slot][status_slot(status, kStatuses)].add();
  counters.duration[slot].observe(took);
  counters.bytes_in.add(bytes_in);
  counters.bytes_out.add(bytes_out);
}

uint64_t GatewayMetrics::layer_outcomes(LayerId layer, LayerOutcome outcome) const {
  return layer_outcomes_[index(layer)][index(outcome)].value();
}

std::string GatewayMetrics::render(const Readings& readings) const {
  Exposition out;
  out.family("isartor_build_info", "gauge", "The running version.");
  out.sample("isartor_build_info", {{"version", ISARTOR_VERSION}}, uint64_t{1});
  out.family("isartor_uptime_seconds", "gauge", "Seconds since the gateway started.");
  out.sample("isartor_uptime_seconds", {}, readings.uptime_seconds);
  out.family("isartor_requests_in_flight", "gauge", "Requests being answered now.");
  out.sample("isartor_requests_in_flight", {}, readings.requests_in_flight);

  out.family("isartor_requests_total", "counter", "Requests answered, by route, answering layer and HTTP status.");
  uint64_t errors = 0;
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    for (std::size_t slot = 0; slot < kLayerSlots; ++slot) {
      for (std::size_t status = 0; status < kStatuses; ++status) {
        const uint64_t n = by_route_[r].requests[slot][status].value();
        if (n == 0) continue;
        if (status >= 400) errors += n;
        out.sample("isartor_requests_total",
                   {{"route", routes_[r]}, {"layer", layer_label(slot)}, {"status", std::to_string(status)}}, n);
      }
    }
  }
  out.family("isartor_errors_total", "counter", "Requests answered with an HTTP error status (4xx, 5xx).");
  out.sample("isartor_errors_total", {}, errors);

  out.family("isartor_request_duration_seconds", "histogram",
             "Time from a request's arrival to its last byte written, by route and answering layer.");
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    for (std::size_t slot = 0; slot < kLayerSlots; ++slot) {
      const auto snapshot = by_route_[r].duration[slot].snapshot();
      if (snapshot.count > 0) {
        out.histogram("isartor_request_duration_seconds", {{"route", routes_[r]}, {"layer", layer_label(slot)}},
                      snapshot);
      }
    }
  }
  out.family("isartor_request_bytes_total", "counter", "Request body bytes received, by route.");
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    if (const uint64_t n = by_route_[r].bytes_in.value()) out.sample("isartor_request_bytes_total", {{"route", routes_[r]}}, n);
  }
  out.family("isartor_response_bytes_total", "counter", "Response body bytes sent, by route.");
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    if (const uint64_t n = by_route_[r].bytes_out.value()) out.sample("isartor_response_bytes_total", {{"route", routes_[r]}}, n);
  }

  out.family("isartor_layer_requests_total", "counter",
             "Requests each layer saw, by outcome (answered, passed on, bypassed by the request, failed).");
  for (LayerId layer : kLayers) {
    for (LayerOutcome outcome : kOutcomes) {
      if (const uint64_t n = layer_outcomes_[index(layer)][index(outcome)].value()) {
        out.sample("isartor_layer_requests_total",
                   {{"layer", pipeline::to_string(layer)}, {"outcome", pipeline::to_string(outcome)}}, n);
      }
    }
  }
  out.family("isartor_layer_duration_seconds", "histogram",
             "Time each layer took to answer or pass a request on (for L3: until the provider's answer or first chunk).");
  for (LayerId layer : kLayers) {
    const auto snapshot = layer_duration_[index(layer)].snapshot();
    if (snapshot.count > 0) out.histogram("isartor_layer_duration_seconds", {{"layer", pipeline::to_string(layer)}}, snapshot);
  }
  out.family("isartor_cache_events_total", "counter", "Cache lookups: hit, miss, or bypass (the request said no-cache).");
  for (LayerId layer : {LayerId::kL1a, LayerId::kL1b}) {
    const std::string_view cache = cache_label(layer);
    const auto& outcomes = layer_outcomes_[index(layer)];
    for (const auto& [outcome, event] : {std::pair{LayerOutcome::kAnswered, "hit"}, std::pair{LayerOutcome::kPassed, "miss"},
                                         std::pair{LayerOutcome::kBypassed, "bypass"}}) {
      out.sample("isartor_cache_events_total", {{"cache", cache}, {"event", event}}, outcomes[index(outcome)].value());
    }
  }

  uint64_t deflected = 0, answered = 0, saved = 0;
  for (LayerId layer : kLayers) {
    const uint64_t n = layer_outcomes_[index(layer)][index(LayerOutcome::kAnswered)].value();
    answered += n;
    if (!pipeline::deflects(layer)) continue;
    deflected += n;
    saved += tokens_[index(layer)][0].value() + tokens_[index(layer)][1].value();
  }
  out.family("isartor_deflected_requests_total", "counter", "Chat requests answered without calling the provider (L1a, L1b, L2).");
  out.sample("isartor_deflected_requests_total", {}, deflected);
  out.family("isartor_deflection_ratio", "gauge", "Deflected chat requests / all answered chat requests (0 before the first).");
  out.sample("isartor_deflection_ratio", {}, answered ? static_cast<double>(deflected) / static_cast<double>(answered) : 0.0);
  out.family("isartor_tokens_total", "counter", "Tokens of the answers each layer gave, as their usage says (type: prompt, completion).");
  for (LayerId layer : kLayers) {
    for (std::size_t type = 0; type < 2; ++type) {
      out.sample("isartor_tokens_total", {{"layer", pipeline::to_string(layer)}, {"type", type == 0 ? "prompt" : "completion"}},
                 tokens_[index(layer)][type].value());
    }
  }
  out.family("isartor_tokens_saved_total", "counter",
             "Prompt and completion tokens of deflected answers: what the provider would have billed.");
  out.sample("isartor_tokens_saved_total", {}, saved);
  out.family("isartor_upstream_responses_total", "counter",
             "Provider calls (retries and fallbacks each count) by the provider's HTTP status (0: no answer, e.g. a timeout).");
  for (std::size_t p = 0; p < providers_.size(); ++p) {
    for (std::size_t status = 0; status < kStatuses; ++status) {
      if (const uint64_t n = by_upstream_[p].status[status].value()) {
        out.sample("isartor_upstream_responses_total", {{"provider", providers_[p]}, {"status", std::to_string(status)}}, n);
      }
    }
  }
  out.family("isartor_upstream_attempts_total", "counter",
             "Provider calls by how they ended (ok, rate_limited, key_refused, rejected, failed, timeout).");
  for (std::size_t p = 0; p < providers_.size(); ++p) {
    for (std::size_t o = 0; o < providers::kAttemptOutcomeCount; ++o) {
      out.sample("isartor_upstream_attempts_total",
                 {{"provider", providers_[p]}, {"outcome", providers::to_string(static_cast<providers::AttemptOutcome>(o))}},
                 by_upstream_[p].outcome[o].value());
    }
  }
  out.family("isartor_upstream_attempt_duration_seconds", "histogram", "Duration of each provider call (to its status for a stream).");
  for (std::size_t p = 0; p < providers_.size(); ++p) {
    out.histogram("isartor_upstream_attempt_duration_seconds", {{"provider", providers_[p]}}, by_upstream_[p].duration.snapshot());
  }

  out.family("isartor_layer_ready", "gauge", "1 when a configured layer can answer (its model loaded, its provider keyed).");
  for (const auto& layer : readings.layers) {
    out.sample("isartor_layer_ready", {{"layer", pipeline::to_string(layer.id)}}, uint64_t{layer.ready ? 1u : 0u});
  }
  out.family("isartor_upstream_circuit_state", "gauge", "1 for the state each provider's circuit breaker is in (closed, open, half_open).");
  for (const auto& upstream : readings.upstreams) {
    for (auto state : {providers::BreakerState::kClosed, providers::BreakerState::kOpen, providers::BreakerState::kHalfOpen}) {
      out.sample("isartor_upstream_circuit_state", {{"provider", upstream.name}, {"state", providers::to_string(state)}},
                 uint64_t{upstream.breaker == state ? 1u : 0u});
    }
  }
  out.family("isartor_upstream_keys_available", "gauge", "Keys of each provider's pool not cooling down after a 429/401/403.");
  for (const auto& upstream : readings.upstreams) {
    out.sample("isartor_upstream_keys_available", {{"provider", upstream.name}}, uint64_t{upstream.keys_available});
  }
  out.family("isartor_client_requests_total", "counter", "Requests each gateway key had admitted.");
  for (const auto& client : readings.clients) out.sample("isartor_client_requests_total", {{"client", client.name}}, client.reading.admitted);
  out.family("isartor_client_tokens_total", "counter", "Tokens of the answers each gateway key got (what its limit counts).");
  for (const auto& client : readings.clients) out.sample("isartor_client_tokens_total", {{"client", client.name}}, client.reading.tokens);
  out.family("isartor_rate_limited_total", "counter", "Requests refused with 429 by the gateway's own limits (limit: requests, tokens, quota).");
  for (const auto& client : readings.clients) {
    out.sample("isartor_rate_limited_total", {{"client", client.name}, {"limit", "requests"}}, client.reading.limited_requests);
    out.sample("isartor_rate_limited_total", {{"client", client.name}, {"limit", "tokens"}}, client.reading.limited_tokens);
    out.sample("isartor_rate_limited_total", {{"client", client.name}, {"limit", "quota"}}, client.reading.limited_quota);
  }
  out.family("isartor_cache_entries", "gauge", "Entries each cache holds.");
  for (const auto& layer : readings.layers) {
    if (layer.cache) out.sample("isartor_cache_entries", {{"cache", cache_label(layer.id)}}, uint64_t{layer.cache->entries});
  }
  out.family("isartor_cache_bytes", "gauge", "Bytes each cache holds (keys, answers, embeddings).");
  for (const auto& layer : readings.layers) {
    if (layer.cache) out.sample("isartor_cache_bytes", {{"cache", cache_label(layer.id)}}, uint64_t{layer.cache->bytes});
  }
  return out.take();
}

}  // namespace isartor::metrics
