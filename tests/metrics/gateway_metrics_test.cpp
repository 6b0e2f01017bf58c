#include "metrics/gateway_metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace isartor::metrics {
namespace {

using namespace std::chrono_literals;
using pipeline::LayerId;
using pipeline::LayerOutcome;

// The value of the one sample line that starts with `series` + " ", or -1.
double value_of(const std::string& text, const std::string& series) {
  const std::string line = "\n" + series + " ";
  const auto at = text.find(line);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + line.size()));
}

TEST(GatewayMetrics, CountsWhatTheLayersAndTheGatewayReport) {
  GatewayMetrics metrics({"/v1/chat/completions", "/v1/messages", "other"}, {"openai"});
  // An exact hit; a miss answered by the provider; a bypass that failed upstream with a 429.
  metrics.on_layer(LayerId::kL1a, LayerOutcome::kAnswered, 1ms, nullptr);
  metrics.on_usage(LayerId::kL1a, {10, 5});
  metrics.record_request(0, LayerId::kL1a, 200, 1ms, 100, 300);
  metrics.on_layer(LayerId::kL1a, LayerOutcome::kPassed, 1ms, nullptr);
  metrics.on_layer(LayerId::kL3, LayerOutcome::kAnswered, 200ms, nullptr);
  metrics.on_usage(LayerId::kL3, {7, 3});
  metrics.record_request(1, LayerId::kL3, 200, 201ms, 50, 400);
  metrics.on_layer(LayerId::kL1a, LayerOutcome::kBypassed, 0ms, nullptr);
  Error limited(ErrorCode::kRateLimited, "slow down");
  limited.upstream_status = 429;
  metrics.on_layer(LayerId::kL3, LayerOutcome::kFailed, 30ms, &limited);
  metrics.record_request(0, std::nullopt, 429, 31ms, 60, 80);
  Error refused(ErrorCode::kUnprocessable, "n: one choice only");  // refused before any call
  metrics.on_layer(LayerId::kL3, LayerOutcome::kFailed, 0ms, &refused);
  Error timeout(ErrorCode::kUpstreamTimeout, "timed out");
  metrics.on_layer(LayerId::kL3, LayerOutcome::kFailed, 10s, &timeout);
  metrics.record_request(99, std::nullopt, 404, 0ms, 0, 20);  // an unknown route counts as "other"
  // The calls behind those: upstream figures come from the chain, one per call.
  metrics.on_attempt(0, providers::AttemptOutcome::kOk, 200, 200ms);
  metrics.on_attempt(0, providers::AttemptOutcome::kRateLimited, 429, 30ms);
  metrics.on_attempt(0, providers::AttemptOutcome::kTimeout, 0, 10s);
  metrics.on_attempt(7, providers::AttemptOutcome::kFailed, 503, 1ms);  // out of range: the last provider

  Readings readings;
  readings.layers = {{LayerId::kL1a, true, pipeline::CacheStats{1, 321}}, {LayerId::kL3, true, std::nullopt}};
  readings.upstreams.push_back({"openai", "openai", providers::BreakerState::kOpen, 2, 1, true});
  const std::string text = metrics.render(readings);
  EXPECT_EQ(value_of(text, R"(isartor_requests_total{route="/v1/chat/completions",layer="l1a",status="200"})"), 1);
  EXPECT_EQ(value_of(text, R"(isartor_requests_total{route="/v1/messages",layer="l3",status="200"})"), 1);
  EXPECT_EQ(value_of(text, R"(isartor_requests_total{route="/v1/chat/completions",layer="none",status="429"})"), 1);
  EXPECT_EQ(value_of(text, R"(isartor_requests_total{route="other",layer="none",status="404"})"), 1);
  EXPECT_EQ(value_of(text, "isartor_errors_total"), 2);
  EXPECT_EQ(value_of(text, R"(isartor_cache_events_total{cache="exact",event="hit"})"), 1);
  EXPECT_EQ(value_of(text, R"(isartor_cache_events_total{cache="exact",event="miss"})"), 1);
  EXPECT_EQ(value_of(text, R"(isartor_cache_events_total{cache="exact",event="bypass"})"), 1);
  EXPECT_EQ(value_of(text, R"(isartor_layer_requests_total{layer="l3",outcome="failed"})"), 3);
  EXPECT_EQ(value_of(text, R"(isartor_upstream_responses_total{provider="openai",status="0"})"), 1);
  EXPECT_EQ(value_of(text, "isartor_deflected_requests_total"), 1);
  EXPECT_EQ(value_of(text, "isartor_deflection_ratio"), 0.5);
  EXPECT_EQ(value_of(text, "isartor_tokens_saved_total"), 15);
  EXPECT_EQ(value_of(text, R"(isartor_tokens_total{layer="l3",type="prompt"})"), 7);
  EXPECT_EQ(value_of(text, R"(isartor_upstream_responses_total{provider="openai",status="200"})"), 1);
  EXPECT_EQ(value_of(text, R"(isartor_upstream_responses_total{provider="openai",status="429"})"), 1);
  EXPECT_EQ(value_of(text, R"(isartor_request_bytes_total{route="/v1/chat/completions"})"), 160);
  EXPECT_EQ(value_of(text, R"(isartor_response_bytes_total{route="/v1/messages"})"), 400);
  EXPECT_EQ(value_of(text, R"(isartor_request_duration_seconds_count{route="/v1/messages",layer="l3"})"), 1);
  EXPECT_EQ(value_of(text, R"(isartor_layer_duration_seconds_count{layer="l1a"})"), 2);  // a bypass is not timed
  EXPECT_EQ(value_of(text, R"(isartor_cache_entries{cache="exact"})"), 1);
  EXPECT_EQ(value_of(text, R"(isartor_cache_bytes{cache="exact"})"), 321);
  EXPECT_EQ(value_of(text, R"(isartor_layer_ready{layer="l3"})"), 1);
  EXPECT_EQ(value_of(text, R"(isartor_upstream_responses_total{provider="openai",status="503"})"), 1);
  EXPECT_EQ(value_of(text, R"(isartor_upstream_attempts_total{provider="openai",outcome="rate_limited"})"), 1);
  EXPECT_EQ(value_of(text, R"(isartor_upstream_attempts_total{provider="openai",outcome="failed"})"), 1);
  EXPECT_EQ(value_of(text, R"(isartor_upstream_attempt_duration_seconds_count{provider="openai"})"), 4);
  EXPECT_EQ(value_of(text, R"(isartor_upstream_circuit_state{provider="openai",state="open"})"), 1);
  EXPECT_EQ(value_of(text, R"(isartor_upstream_circuit_state{provider="openai",state="closed"})"), 0);
  EXPECT_EQ(value_of(text, R"(isartor_upstream_keys_available{provider="openai"})"), 1);
  // Series nothing touched are not written.
  EXPECT_EQ(text.find(R"(route="/v1/messages",layer="l1a")"), std::string::npos);
}

TEST(GatewayMetrics, ConcurrentCountsAreNotLost) {
  GatewayMetrics metrics({"/v1/chat/completions", "other"}, {"openai"});
  constexpr int kThreads = 4, kEach = 20000;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kEach; ++i) {
          metrics.on_layer(LayerId::kL1a, LayerOutcome::kAnswered, 1us, nullptr);
          metrics.record_request(0, LayerId::kL1a, 200, 1us, 1, 2);
        }
      });
    }
  }
  const std::string text = metrics.render({});
  EXPECT_EQ(value_of(text, R"(isartor_requests_total{route="/v1/chat/completions",layer="l1a",status="200"})"),
            kThreads * kEach);
  EXPECT_EQ(value_of(text, R"(isartor_layer_duration_seconds_count{layer="l1a"})"), kThreads * kEach);
}

}  // namespace
}  // namespace isartor::metrics
