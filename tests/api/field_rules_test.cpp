#include "api/field_rules.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace isartor::api::detail {
namespace {

constexpr std::array<FieldRule, 4> kRules{{
    {"model", JsonKind::kString},
    {"top_p", JsonKind::kNumber, 0, 1},
    {"n", JsonKind::kInteger, 1},
    {"tools", JsonKind::kArray},
}};

// The error message of `body` under `dialect`; "" when it passes.
std::string error_of(const char* body, FieldDialect dialect) {
  auto result = check_fields(Json::parse(body), kRules, dialect);
  return result ? std::string() : result.error().message;
}

TEST(FieldRules, TheParamIsTheFieldName) {
  auto result = check_fields(Json::parse(R"({"n": "two"})"), kRules, FieldDialect::kOpenAI);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().param, "n");
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidRequest);
}

TEST(FieldRules, AbsentNullAndWellTypedFieldsPass) {
  EXPECT_EQ(error_of(R"({})", FieldDialect::kOpenAI), "");
  EXPECT_EQ(error_of(R"({"model": null, "top_p": null, "extra": "x"})", FieldDialect::kOpenAI), "");
  EXPECT_EQ(error_of(R"({"model": "m", "top_p": 1, "n": 3, "tools": []})", FieldDialect::kAnthropic), "");
}

TEST(FieldRules, WrongKindIsWordedPerDialect) {
  EXPECT_EQ(error_of(R"({"model": 1})", FieldDialect::kOpenAI), "'model' must be a string");
  EXPECT_EQ(error_of(R"({"model": 1})", FieldDialect::kAnthropic), "model: Input should be a valid string");
  EXPECT_EQ(error_of(R"({"n": 1.5})", FieldDialect::kOpenAI), "'n' must be an integer");
  EXPECT_EQ(error_of(R"({"tools": {}})", FieldDialect::kAnthropic), "tools: Input should be a valid list");
  EXPECT_EQ(error_of(R"({"top_p": "0.5"})", FieldDialect::kAnthropic), "top_p: Input should be a valid number");
}

TEST(FieldRules, RangesAreInclusiveAndWordedPerDialect) {
  EXPECT_EQ(error_of(R"({"top_p": 0})", FieldDialect::kOpenAI), "");
  EXPECT_EQ(error_of(R"({"top_p": 1.01})", FieldDialect::kOpenAI), "'top_p' must be between 0 and 1");
  EXPECT_EQ(error_of(R"({"top_p": -0.5})", FieldDialect::kAnthropic), "top_p: range: 0..1");
  EXPECT_EQ(error_of(R"({"n": 0})", FieldDialect::kOpenAI), "'n' must be at least 1");
  EXPECT_EQ(error_of(R"({"n": 0})", FieldDialect::kAnthropic), "n: Input should be greater than or equal to 1");
}

TEST(FieldRules, TheFirstBrokenRuleInTableOrderIsReported) {
  EXPECT_EQ(error_of(R"({"tools": 1, "model": 2})", FieldDialect::kOpenAI), "'model' must be a string");
}

}  // namespace
}  // namespace isartor::api::detail
