#include "metrics/exposition.h"

#include <gtest/gtest.h>

namespace isartor::metrics {
namespace {

using namespace std::chrono_literals;

TEST(Exposition, WritesFamiliesSamplesAndEscapedLabels) {
  Exposition out;
  out.family("x_total", "counter", "Things.");
  out.sample("x_total", {}, uint64_t{3});
  out.sample("x_total", {{"route", "/v1/\"a\"\\b\nc"}, {"layer", "l1a"}}, uint64_t{7});
  out.sample("y", {{"k", "v"}}, 0.25);
  EXPECT_EQ(out.take(),
            "# HELP x_total Things.\n# TYPE x_total counter\n"
            "x_total 3\n"
            "x_total{route=\"/v1/\\\"a\\\"\\\\b\\nc\",layer=\"l1a\"} 7\n"
            "y{k=\"v\"} 0.25\n");
}

TEST(LatencyHistogram, BucketsAreCumulativeAndTheCountIsTheirTotal) {
  LatencyHistogram histogram;
  histogram.observe(50us);    // under the first bound
  histogram.observe(100us);   // on the first bound: le is inclusive
  histogram.observe(3ms);     // 0.005
  histogram.observe(120s);    // over the last bound: only +Inf
  const auto snapshot = histogram.snapshot();
  EXPECT_EQ(snapshot.cumulative[0], 2u);
  EXPECT_EQ(snapshot.cumulative[4], 2u);  // 0.0025
  EXPECT_EQ(snapshot.cumulative[5], 3u);  // 0.005
  EXPECT_EQ(snapshot.cumulative.back(), 3u);
  EXPECT_EQ(snapshot.count, 4u);
  EXPECT_NEAR(snapshot.sum_seconds, 120.00315, 1e-9);

  Exposition out;
  out.histogram("d_seconds", {{"layer", "l3"}}, snapshot);
  const std::string text = out.take();
  EXPECT_NE(text.find("d_seconds_bucket{layer=\"l3\",le=\"0.0001\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_bucket{layer=\"l3\",le=\"60\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_bucket{layer=\"l3\",le=\"+Inf\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_count{layer=\"l3\"} 4\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace isartor::metrics
