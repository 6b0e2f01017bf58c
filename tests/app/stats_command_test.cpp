#include "app/stats_command.h"

#include <gtest/gtest.h>

#include "metrics/gateway_metrics.h"

namespace isartor::app {
namespace {

using namespace std::chrono_literals;
using pipeline::LayerId;
using pipeline::LayerOutcome;

TEST(ParseExposition, TakesSamplesAndSkipsCommentsAndJunk) {
  const auto samples = parse_exposition(
      "# HELP x_total X.\n# TYPE x_total counter\nx_total 3\n"
      "y{route=\"/a b\",le=\"+Inf\"} 4.5\n\nnot a sample\nz{a=\"1\"} NaN-ish\n");
  EXPECT_EQ(samples.at("x_total"), 3);
  EXPECT_EQ(samples.at("y{route=\"/a b\",le=\"+Inf\"}"), 4.5);
  EXPECT_EQ(samples.count("not a"), 0u);
}

TEST(Summarize, ReadsWhatTheGatewayRenders) {
  metrics::GatewayMetrics metrics({"/v1/chat/completions", "other"}, {"openai"});
  for (int i = 0; i < 3; ++i) {
    metrics.on_layer(LayerId::kL1a, LayerOutcome::kAnswered, 200us, nullptr);
    metrics.on_usage(LayerId::kL1a, {10, 5});
    metrics.record_request(0, LayerId::kL1a, 200, 300us, 10, 100);
  }
  metrics.on_layer(LayerId::kL1a, LayerOutcome::kPassed, 100us, nullptr);
  metrics.on_layer(LayerId::kL3, LayerOutcome::kAnswered, 700ms, nullptr);
  metrics.on_attempt(0, providers::AttemptOutcome::kOk, 200, 700ms);
  metrics.record_request(0, LayerId::kL3, 200, 701ms, 10, 100);
  metrics.record_request(1, std::nullopt, 404, 1ms, 0, 10);
  metrics::Readings readings;
  readings.layers = {{LayerId::kL1a, true, pipeline::CacheStats{1, 500}}, {LayerId::kL3, true, std::nullopt}};

  const api::Json s = summarize(parse_exposition(metrics.render(readings)));
  EXPECT_EQ(s["requests"], 5);
  EXPECT_EQ(s["errors"], 1);
  EXPECT_EQ(s["deflected"], 3);
  EXPECT_EQ(s["deflection_ratio"], 0.75);
  EXPECT_EQ(s["tokens_saved"], 45);
  EXPECT_EQ(s["layers"]["l1a"]["answered"], 3);
  EXPECT_EQ(s["layers"]["l3"]["answered"], 1);
  // p50 of L1a lies in its (0.1 ms, 0.25 ms] bucket; L3's in (0.5 s, 1 s].
  EXPECT_GT(s["layers"]["l1a"]["p50_ms"].get<double>(), 0.1);
  EXPECT_LE(s["layers"]["l1a"]["p50_ms"].get<double>(), 0.25);
  EXPECT_GT(s["layers"]["l3"]["p95_ms"].get<double>(), 500);
  EXPECT_LE(s["layers"]["l3"]["p95_ms"].get<double>(), 1000);
  EXPECT_EQ(s["caches"]["exact"]["hits"], 3);
  EXPECT_EQ(s["caches"]["exact"]["misses"], 1);
  EXPECT_EQ(s["caches"]["exact"]["bytes"], 500);
  EXPECT_EQ(s["upstream_responses"]["200"], 1);

  const std::string text = format_summary(s);
  EXPECT_NE(text.find("deflected 3 (75.0 %)  tokens saved 45"), std::string::npos) << text;
  EXPECT_NE(text.find("exact         3        1        1        500"), std::string::npos) << text;
}

TEST(FetchMetrics, SaysWhereItCouldNotConnect) {
  auto text = fetch_metrics("http://127.0.0.1:1", "");
  ASSERT_FALSE(text);
  EXPECT_NE(text.error().message.find("cannot reach http://127.0.0.1:1/metrics"), std::string::npos);
}

}  // namespace
}  // namespace isartor::app
