// The error-forwarding macros: the first error leaves the function, a value is moved out once.
#include "core/result.h"

#include <gtest/gtest.h>

#include <boost/asio/awaitable.hpp>
#include <memory>

#include "support/run_coroutine.h"

namespace isartor {
namespace {

int evaluations = 0;

Result<std::unique_ptr<int>> make(int n) {
  ++evaluations;
  if (n < 0) return fail(ErrorCode::kInvalidRequest, "negative", "n");
  return std::make_unique<int>(n);
}

Result<void> check(int n) {
  if (n > 100) return fail(ErrorCode::kUnprocessable, "too big");
  return {};
}

Result<int> sum(int a, int b) {
  RETURN_IF_ERROR(check(a));
  ASSIGN_OR_RETURN(std::unique_ptr<int> x, make(a));
  int total = *x;
  ASSIGN_OR_RETURN(x, make(b));  // assigns to an existing name
  return total + *x;
}

boost::asio::awaitable<Result<int>> co_sum(int a, int b) {
  CO_RETURN_IF_ERROR(check(b));
  CO_ASSIGN_OR_RETURN(auto x, make(a));
  CO_ASSIGN_OR_RETURN(auto y, make(b));
  co_return *x + *y;
}

TEST(ResultMacros, ForwardTheFirstErrorAndEvaluateOnce) {
  evaluations = 0;
  EXPECT_EQ(sum(2, 3).value(), 5);
  EXPECT_EQ(evaluations, 2);
  auto negative = sum(-1, 3);
  ASSERT_FALSE(negative);
  EXPECT_EQ(negative.error().param, "n");
  EXPECT_EQ(evaluations, 3);  // make(b) never ran
  EXPECT_EQ(sum(200, 3).error().code, ErrorCode::kUnprocessable);
  EXPECT_EQ(sum(1, -3).error().message, "negative");
}

TEST(ResultMacros, CoroutineForms) {
  EXPECT_EQ(testing::run_coroutine(co_sum(4, 5)).value(), 9);
  EXPECT_EQ(testing::run_coroutine(co_sum(4, 500)).error().code, ErrorCode::kUnprocessable);
  EXPECT_EQ(testing::run_coroutine(co_sum(-4, 5)).error().code, ErrorCode::kInvalidRequest);
}

}  // namespace
}  // namespace isartor
