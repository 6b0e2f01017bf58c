#include "api/wire_format.h"

#include <gtest/gtest.h>

#include <string>

namespace isartor::api {
namespace {

std::string nested(std::size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(JsonDepth, CountsObjectsAndArraysUpToTheLimit) {
  EXPECT_FALSE(json_nests_deeper_than(nested(kMaxJsonDepth)));
  EXPECT_TRUE(json_nests_deeper_than(nested(kMaxJsonDepth + 1)));
  EXPECT_FALSE(json_nests_deeper_than(R"({"a": [{"b": [1, 2]}]})", 4));
  EXPECT_TRUE(json_nests_deeper_than(R"({"a": [{"b": [1, 2]}]})", 3));
}

TEST(JsonDepth, BracketsInsideStringsDoNotCount) {
  const std::string in_string = "{\"text\": \"" + nested(1000) + "\"}";
  EXPECT_FALSE(json_nests_deeper_than(in_string, 1));
  // An escaped quote does not end the string; an escaped backslash before the quote does.
  EXPECT_FALSE(json_nests_deeper_than(R"(["a\"[[[", 1])", 1));
  EXPECT_TRUE(json_nests_deeper_than(R"(["a\\", [[1]]])", 2));
}

TEST(JsonDepth, SiblingsDoNotAddUp) {
  std::string many = "[";
  for (int i = 0; i < 1000; ++i) many += nested(10) + ",";
  many += "1]";
  EXPECT_FALSE(json_nests_deeper_than(many, 11));
}

TEST(ParseJson, ParsesWhatIsValidAndShallow) {
  const Json parsed = parse_json(R"({"messages": [{"role": "user", "content": "hi"}]})");
  ASSERT_TRUE(parsed.is_object());
  EXPECT_EQ(parsed["messages"][0]["content"], "hi");
}

TEST(ParseJson, DiscardsInvalidAndTooDeepInputWithoutThrowing) {
  EXPECT_TRUE(parse_json("{nope").is_discarded());
  EXPECT_TRUE(parse_json("").is_discarded());
  // 70 000 levels is what crashed the serialiser; it is refused before any parsing.
  EXPECT_TRUE(parse_json("{\"x\": " + nested(70000) + "}").is_discarded());
  EXPECT_TRUE(parse_json(nested(kMaxJsonDepth)).is_array());
}

}  // namespace
}  // namespace isartor::api
