#include "app/cache_control.h"

#include <gtest/gtest.h>

namespace isartor::app {
namespace {

using namespace std::chrono_literals;
using config::CacheScope;

http::Request with(http::Headers headers) {
  http::Request request;
  request.method = "POST";
  request.path = "/v1/chat/completions";
  request.headers = std::move(headers);
  return request;
}

pipeline::CachePolicy policy(http::Headers headers, CacheScope scope = CacheScope::kGlobal,
                             std::chrono::seconds ttl = 300s) {
  return cache_policy(with(std::move(headers)), scope, ttl);
}

TEST(CachePolicy, DefaultLooksUpAndStoresInTheSharedPartition) {
  const auto p = policy({});
  EXPECT_TRUE(p.lookup);
  EXPECT_TRUE(p.store);
  EXPECT_FALSE(p.ttl);
  EXPECT_EQ(p.partition, "");
}

TEST(CachePolicy, CacheControlDirectives) {
  auto p = policy({{"Cache-Control", "no-cache"}});
  EXPECT_FALSE(p.lookup);
  EXPECT_TRUE(p.store);
  p = policy({{"cache-control", "No-Store"}});
  EXPECT_TRUE(p.lookup);
  EXPECT_FALSE(p.store);
  p = policy({{"Cache-Control", "no-cache, no-store"}});
  EXPECT_FALSE(p.lookup);
  EXPECT_FALSE(p.store);
  p = policy({{"Cache-Control", "no-cache"}, {"Cache-Control", "max-age=60"}});  // repeated headers combine
  EXPECT_FALSE(p.lookup);
  EXPECT_EQ(p.ttl, 60s);
}

TEST(CachePolicy, MaxAgeShortensTheTtlButNeverExtendsIt) {
  EXPECT_EQ(policy({{"Cache-Control", "max-age=60"}}).ttl, 60s);
  EXPECT_EQ(policy({{"Cache-Control", " max-age=\"30\" "}}).ttl, 30s);
  EXPECT_EQ(policy({{"Cache-Control", "max-age=9000"}}).ttl, 300s);
  EXPECT_EQ(policy({{"Cache-Control", "max-age=9000"}}, CacheScope::kGlobal, 0s).ttl, 9000s);  // no TTL configured
  EXPECT_EQ(policy({{"Cache-Control", "max-age=99999999999999999999999"}}).ttl, std::nullopt);  // overflows: ignored
  EXPECT_EQ(policy({{"Cache-Control", "max-age=18446744073709551615"}}, CacheScope::kGlobal, 0s).ttl,
            std::chrono::seconds::max());
  const auto zero = policy({{"Cache-Control", "max-age=0"}});
  EXPECT_TRUE(zero.lookup);
  EXPECT_FALSE(zero.store);
}

TEST(CachePolicy, MalformedAndUnknownDirectivesAreIgnored) {
  for (const char* value : {"max-age=-1", "max-age=1.5", "max-age=", "max-age", "max-age=12abc", "private",
                            "no-transform, only-if-cached", "", ",,,", "=", "no-cachex"}) {
    const auto p = policy({{"Cache-Control", value}});
    EXPECT_TRUE(p.lookup) << value;
    EXPECT_TRUE(p.store) << value;
    EXPECT_FALSE(p.ttl) << value;
  }
}

TEST(CachePolicy, IsartorCacheOffBypassesBoth) {
  const auto p = policy({{"X-Isartor-Cache", " OFF "}});
  EXPECT_FALSE(p.lookup);
  EXPECT_FALSE(p.store);
  EXPECT_TRUE(policy({{"X-Isartor-Cache", "on"}}).lookup);
}

TEST(CachePolicy, NamespacesAndSessionsPartition) {
  const auto a = policy({{"x-isartor-cache-namespace", "team-a"}}).partition;
  const auto b = policy({{"x-isartor-cache-namespace", "team-b"}}).partition;
  EXPECT_NE(a, "");
  EXPECT_NE(a, b);
  EXPECT_EQ(a, policy({{"X-Isartor-Cache-Namespace", " team-a "}}).partition);
  // Session headers count only with the session scope, the first one present wins.
  EXPECT_EQ(policy({{"x-session-id", "s1"}}).partition, "");
  const auto s1 = policy({{"x-session-id", "s1"}}, CacheScope::kSession).partition;
  EXPECT_NE(s1, "");
  EXPECT_EQ(s1, policy({{"x-thread-id", "s1"}}, CacheScope::kSession).partition);
  EXPECT_EQ(s1, policy({{"x-isartor-session-id", "s1"}, {"x-session-id", "s2"}}, CacheScope::kSession).partition);
  EXPECT_NE(s1, policy({{"x-conversation-id", "s2"}}, CacheScope::kSession).partition);
  EXPECT_EQ(policy({}, CacheScope::kSession).partition, "");
  // A namespace and a session never add up to another pair.
  EXPECT_NE(policy({{"x-isartor-cache-namespace", "a|"}, {"x-session-id", "b"}}, CacheScope::kSession).partition,
            policy({{"x-isartor-cache-namespace", "a"}, {"x-session-id", "|b"}}, CacheScope::kSession).partition);
}

TEST(CacheOutcome, HitMissOrBypass) {
  EXPECT_EQ(cache_outcome(true, pipeline::LayerId::kL1a), "hit");
  EXPECT_EQ(cache_outcome(true, pipeline::LayerId::kL1b), "hit");
  EXPECT_EQ(cache_outcome(true, pipeline::LayerId::kL3), "miss");
  EXPECT_EQ(cache_outcome(true, pipeline::LayerId::kL2), "miss");
  EXPECT_EQ(cache_outcome(false, pipeline::LayerId::kL3), "bypass");
}

}  // namespace
}  // namespace isartor::app
