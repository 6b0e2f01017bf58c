#include "core/fd_limit.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

namespace isartor::core {
namespace {

TEST(ConnectionBudget, AutomaticSplitsWhatTheReserveLeaves) {
  auto budget = connection_budget(1024, 0, 0);
  EXPECT_EQ(budget.clients, 768u);
  EXPECT_EQ(budget.upstream, 128u);
  budget = connection_budget(65536, 0, 0);
  EXPECT_EQ(budget.clients, 49152u);
  EXPECT_EQ(budget.upstream, 8192u);
  // A tiny limit keeps 32 (or half) for models and logs.
  budget = connection_budget(64, 0, 0);
  EXPECT_EQ(budget.clients, 27u);
  EXPECT_EQ(budget.upstream, 4u);
  budget = connection_budget(10, 0, 0);
  EXPECT_EQ(budget.clients, 4u);
  EXPECT_EQ(budget.upstream, 1u);
}

TEST(ConnectionBudget, ConfiguredValuesWin) {
  auto budget = connection_budget(1024, 5000, 0);
  EXPECT_EQ(budget.clients, 5000u);
  EXPECT_EQ(budget.upstream, 128u);
  budget = connection_budget(1024, 0, 3);
  EXPECT_EQ(budget.clients, 768u);
  EXPECT_EQ(budget.upstream, 3u);
}

TEST(OpenFilesLimit, SoftIsRaisedToHard) {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_max < 64) GTEST_SKIP() << "hard limit too low to lower the soft one";
  rlimit lowered = limit;
  // Below what raise_open_files_limit() caps at too (containers often allow 2^30).
  lowered.rlim_cur = std::min<rlim_t>(limit.rlim_max, 1u << 20) / 2;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  const auto expected = std::min<std::uint64_t>(limit.rlim_max, 1u << 20);
  EXPECT_EQ(raise_open_files_limit(), expected);
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  EXPECT_EQ(limit.rlim_cur, expected);
}

}  // namespace
}  // namespace isartor::core
