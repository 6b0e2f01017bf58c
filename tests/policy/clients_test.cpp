// Gateway keys and their rate limits, in process.
#include "policy/clients.h"

#include <gtest/gtest.h>

namespace isartor::policy {
namespace {

using namespace std::chrono_literals;

std::string header(const Error& error, std::string_view name) {
  for (const auto& [n, v] : error.headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(TokenBucket, RefillsContinuouslyUpToAMinutesWorth) {
  TokenBucket bucket(60);  // one a second
  const auto t0 = Clock::now();
  EXPECT_DOUBLE_EQ(bucket.level(t0), 60);
  bucket.spend(60);
  EXPECT_NEAR(bucket.level(t0 + 1s), 1, 1e-6);
  EXPECT_NEAR(bucket.level(t0 + 10min), 60, 1e-6);  // never more than a minute's worth
  bucket.spend(70);
  EXPECT_EQ(bucket.until(1.0), 11000ms);
}

TEST(Client, RefusesPastItsRequestsPerMinuteWithRetryAfterAndRateLimitHeaders) {
  Client client("team-a", {2, 0});
  const auto t0 = Clock::now() + 1s;
  ASSERT_TRUE(client.admit(t0));
  ASSERT_TRUE(client.admit(t0));
  auto refused = client.admit(t0);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kRateLimited);
  EXPECT_NE(refused.error().message.find("'team-a': 2 requests per minute"), std::string::npos);
  EXPECT_EQ(header(refused.error(), "retry-after"), "30");
  EXPECT_EQ(header(refused.error(), "x-ratelimit-limit-requests"), "2");
  EXPECT_EQ(header(refused.error(), "x-ratelimit-remaining-requests"), "0");
  EXPECT_TRUE(client.admit(t0 + 30s));
  EXPECT_EQ(client.reading().admitted, 3u);
  EXPECT_EQ(client.reading().limited_requests, 1u);
}

TEST(Client, ATokenBudgetSpentByAnAnswerRefusesUntilItRefills) {
  Client client("team-b", {0, 600});  // ten tokens a second
  const auto t0 = Clock::now() + 1s;
  ASSERT_TRUE(client.admit(t0));
  client.charge(t0, 700);  // one answer may overdraw it
  auto refused = client.admit(t0);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("600 tokens per minute"), std::string::npos);
  EXPECT_EQ(header(refused.error(), "retry-after"), "11");
  EXPECT_FALSE(client.admit(t0 + 9s));
  EXPECT_TRUE(client.admit(t0 + 11s));
  EXPECT_EQ(client.reading().tokens, 700u);
  EXPECT_EQ(client.reading().limited_tokens, 2u);
}

TEST(Quota, DaysAndMonthsAreUtcCalendarWindows) {
  using namespace std::chrono;
  const WallClock::time_point jan31 = sys_days(2026y / January / 31) + 23h;
  Quota day(Quota::Window::kDay, 100);
  EXPECT_EQ(day.resets_at(jan31), sys_days(2026y / February / 1));
  EXPECT_FALSE(day.add(jan31, 99));
  EXPECT_TRUE(day.add(jan31, 1));   // crossed now
  EXPECT_FALSE(day.add(jan31, 5));  // already past: said once
  EXPECT_TRUE(day.spent(jan31));
  EXPECT_FALSE(day.spent(jan31 + 1h));  // a new day
  Quota month(Quota::Window::kMonth, 10);
  EXPECT_EQ(month.resets_at(sys_days(2026y / December / 15)), sys_days(2027y / January / 1));
  month.add(sys_days(2026y / December / 15), 10);
  EXPECT_TRUE(month.spent(sys_days(2026y / December / 31)));
  EXPECT_FALSE(month.spent(sys_days(2027y / January / 1)));
}

TEST(Client, AUsedUpQuotaBlocksUntilItsWindowEndsOrOnlyWarns) {
  using namespace std::chrono;
  const WallClock::time_point noon = sys_days(2026y / March / 3) + 12h;
  Client blocked("team-q", {0, 0, 50, 0}, config::QuotaAction::kBlock);
  ASSERT_TRUE(blocked.admit(Clock::now(), noon));
  blocked.charge(Clock::now(), 60, noon);
  auto refused = blocked.admit(Clock::now(), noon);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().upstream_code, "insufficient_quota");
  EXPECT_NE(refused.error().message.find("daily quota of 50 tokens"), std::string::npos);
  EXPECT_EQ(header(refused.error(), "retry-after"), "43200");
  EXPECT_TRUE(blocked.admit(Clock::now(), noon + 12h));  // the next day
  EXPECT_EQ(blocked.reading().limited_quota, 1u);

  Client warned("team-w", {0, 0, 50, 0}, config::QuotaAction::kWarn);
  warned.charge(Clock::now(), 60, noon);
  EXPECT_TRUE(warned.admit(Clock::now(), noon));
}

TEST(Client, NoLimitsNeverRefuses) {
  Client client("x", {});
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(client.admit(Clock::now()));
}

TEST(Clients, TellsKeysApartByNameAndFallsBackToTheDefaultLimits) {
  config::Config config;
  config.gateway_api_key = "legacy-key";
  config.rate_limit.defaults = {5, 0};
  config::GatewayKey a;
  a.name = "team-a";
  a.digest = sha256("key-a");
  a.limits = {1, 0};
  config::GatewayKey b;
  b.name = "team-b";
  b.digest = sha256("key-b");
  b.admin = true;
  config.gateway_api_keys = {a, b};
  const Clients clients(config);
  ASSERT_NE(clients.identify("legacy-key"), nullptr);
  EXPECT_EQ(clients.identify("legacy-key")->name(), "default");
  Client* team_a = clients.identify("key-a");
  ASSERT_NE(team_a, nullptr);
  EXPECT_EQ(team_a->name(), "team-a");
  EXPECT_EQ(clients.identify("nope"), nullptr);
  EXPECT_EQ(clients.identify(""), nullptr);
  ASSERT_TRUE(team_a->admit(Clock::now()));
  EXPECT_FALSE(team_a->admit(Clock::now()));  // its own limit
  Client* team_b = clients.identify("key-b");
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(team_b->admit(Clock::now()));
  EXPECT_FALSE(team_b->admit(Clock::now()));  // the default
  EXPECT_EQ(clients.all().size(), 3u);
  // The single key is the operator's; a named one only when marked.
  EXPECT_TRUE(clients.identify("legacy-key")->admin());
  EXPECT_FALSE(team_a->admin());
  EXPECT_TRUE(team_b->admin());
}

TEST(Clients, WithoutKeysEveryoneIsAnonymous) {
  const Clients clients{config::Config{}};
  ASSERT_NE(clients.identify(""), nullptr);
  EXPECT_EQ(clients.identify("anything")->name(), "anonymous");
}

}  // namespace
}  // namespace isartor::policy
