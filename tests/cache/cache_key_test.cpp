#include "cache/cache_key.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace isartor::cache {
namespace {

using api::Json;
using api::WireFormat;

constexpr std::string_view kPrefix = "v1|openai|";

std::string key_of(std::string_view body, WireFormat format = WireFormat::kOpenAI) {
  return exact_cache_key(format, Json::parse(body));
}

// The JSON after the "v1|<format>|" prefix.
Json canonical_json(const Json& body) {
  const std::string text = canonical_request(WireFormat::kOpenAI, body);
  EXPECT_EQ(text.substr(0, kPrefix.size()), kPrefix);
  return Json::parse(text.substr(kPrefix.size()));
}

const char* const kBase = R"({
  "model": "gpt-4o-mini",
  "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 2+2?"}
  ],
  "temperature": 0.2,
  "max_tokens": 64
})";

Json base_with(std::string_view field, Json value) {
  Json body = Json::parse(kBase);
  body[std::string(field)] = std::move(value);
  return body;
}

TEST(CanonicalRequest, IsPrefixedWithVersionAndWireFormat) {
  const Json body = {{"model", "m"}};
  EXPECT_EQ(canonical_request(WireFormat::kOpenAI, body), R"(v1|openai|{"model":"m"})");
  EXPECT_EQ(canonical_request(WireFormat::kAnthropic, body), R"(v1|anthropic|{"model":"m"})");
  EXPECT_EQ(canonical_request(WireFormat::kNative, body), R"(v1|native|{"model":"m"})");
}

TEST(CanonicalRequest, SortsKeysAtEveryLevelAndWritesCompactJson) {
  const Json body = Json::parse(R"({"z": {"b": [3, {"y": 1, "x": null}], "a": true}, "m": false})");
  EXPECT_EQ(canonical_request(WireFormat::kOpenAI, body),
            R"(v1|openai|{"m":false,"z":{"a":true,"b":[3,{"x":null,"y":1}]}})");
}

TEST(CanonicalRequest, NonObjectBodiesAreWrittenAsIs) {
  EXPECT_EQ(canonical_request(WireFormat::kOpenAI, Json()), "v1|openai|null");
  EXPECT_EQ(canonical_request(WireFormat::kOpenAI, Json::array({1, "stream"})),
            R"(v1|openai|[1,"stream"])");
  EXPECT_EQ(canonical_request(WireFormat::kOpenAI, Json::object()), "v1|openai|{}");
}

TEST(CanonicalRequest, IntegralNumbersSpellTheSameWhateverTheirJsonForm) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"1", "1"},
      {"1.0", "1"},
      {"1e0", "1"},
      {"10e-1", "1"},
      {"-0", "0"},
      {"-0.0", "0"},
      {"0.0", "0"},
      {"-3.0", "-3"},
      {"10000000000000000000", "10000000000000000000"},  // unsigned integer
      {"1e19", "10000000000000000000"},                  // same value as a float
      {"-9223372036854775808", "-9223372036854775808"},
      {"-9.223372036854775808e18", "-9223372036854775808"},
      {"0.7", "0.7"},
      {"0.70", "0.7"},
      {"7e-1", "0.7"},
  };
  for (const auto& [spelling, expected] : cases) {
    const Json body = Json::parse(R"({"temperature":)" + spelling + "}");
    EXPECT_EQ(canonical_request(WireFormat::kOpenAI, body),
              std::string(kPrefix) + R"({"temperature":)" + expected + "}")
        << spelling;
  }
}

TEST(CanonicalRequest, NonIntegralAndHugeFloatsRoundTrip) {
  for (const double x : {0.1, -2.5, 1e-7, 1.5e300, 3.4e38, 18446744073709551616.0, -1e19}) {
    const Json body = {{"x", x}};
    EXPECT_EQ(canonical_json(body)["x"].get<double>(), x) << x;
  }
}

TEST(CanonicalRequest, IsValidJsonEqualToTheBodyWithoutDeliveryFields) {
  const Json body = Json::parse(R"({
    "model": "m",
    "stream": true,
    "user": "u-1",
    "messages": [{"role": "user", "content": "quote \" backslash \\ newline \n tab \t cr \r bell \u0007 del \u007f nul \u0000 end"}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "logit_bias": {"50256": -100},
    "n": 2,
    "empty": [],
    "nothing": null
  })");
  Json expected = body;
  expected.erase("stream");
  expected.erase("user");
  EXPECT_EQ(canonical_json(body), expected);
}

TEST(CanonicalRequest, EscapesControlCharactersWithOneSpelling) {
  const Json body = {{"s", std::string("a\x01\x1f\"\\\n/", 7)}};
  EXPECT_EQ(canonical_request(WireFormat::kOpenAI, body),
            std::string(kPrefix) + R"({"s":"a\u0001\u001f\"\\\n/"})");
}

TEST(CanonicalRequest, KeepsUnicodeAsUtf8WhateverItsJsonEscaping) {
  const Json escaped = Json::parse(R"({"content": "caf\u00e9 \ud83d\ude00 \u4e2d"})");
  const Json literal = Json::parse(R"({"content": "café 😀 中"})");
  EXPECT_EQ(canonical_request(WireFormat::kOpenAI, escaped),
            std::string(kPrefix) + R"({"content":"café 😀 中"})");
  EXPECT_EQ(exact_cache_key(WireFormat::kOpenAI, escaped),
            exact_cache_key(WireFormat::kOpenAI, literal));
}

TEST(CanonicalRequest, InvalidUtf8DoesNotThrowAndStaysDistinct) {
  const Json a = {{"content", std::string("\xff\xfe")}};
  const Json b = {{"content", std::string("\xff\xfd")}};
  std::string key_a;
  EXPECT_NO_THROW(key_a = exact_cache_key(WireFormat::kOpenAI, a));
  EXPECT_NE(key_a, exact_cache_key(WireFormat::kOpenAI, b));
}

TEST(CanonicalRequest, SurvivesDeepNestingWithoutRecursing) {
  constexpr std::size_t kDepth = 200000;
  const std::string text = std::string(kDepth, '[') + std::string(kDepth, ']');
  // Copying such a value would recurse in nlohmann itself, so each body is parsed directly.
  EXPECT_EQ(canonical_request(WireFormat::kOpenAI, Json::parse(text)), std::string(kPrefix) + text);
  const std::string in_object = R"({"messages":)" + text + "}";
  EXPECT_EQ(canonical_request(WireFormat::kOpenAI, Json::parse(in_object)),
            std::string(kPrefix) + in_object);
}

TEST(ExactCacheKey, IsLowercaseHexSha256OfTheCanonicalForm) {
  // printf 'v1|openai|{}' | sha256sum, and likewise for {"model":"m"}.
  EXPECT_EQ(exact_cache_key(WireFormat::kOpenAI, Json::object()),
            "34950f85d8ef8aef8e436d2488f560ca2698864de7d40b1f897e1d9d347538e3");
  EXPECT_EQ(exact_cache_key(WireFormat::kOpenAI, Json{{"model", "m"}, {"stream", true}}),
            "e116e0ee59a248ba553473f00dcb960deca18fbde22c0834266ec6e181a0cbd0");
}

TEST(ExactCacheKey, IgnoresFieldOrderAtEveryLevel) {
  const std::string a = key_of(R"({
    "model": "m", "temperature": 0.5,
    "messages": [{"role": "user", "content": "hi", "name": "bob"}],
    "response_format": {"type": "json_schema", "json_schema": {"name": "s", "strict": true}}
  })");
  const std::string b = key_of(R"({
    "response_format": {"json_schema": {"strict": true, "name": "s"}, "type": "json_schema"},
    "messages": [{"name": "bob", "content": "hi", "role": "user"}],
    "temperature": 0.5, "model": "m"
  })");
  EXPECT_EQ(a, b);
}

TEST(ExactCacheKey, IgnoresNumberSpelling) {
  EXPECT_EQ(key_of(R"({"model":"m","temperature":1,"max_tokens":100})"),
            key_of(R"({"model":"m","temperature":1.0,"max_tokens":1e2})"));
  EXPECT_NE(key_of(R"({"temperature":1})"), key_of(R"({"temperature":1.5})"));
  EXPECT_NE(key_of(R"({"temperature":1})"), key_of(R"({"temperature":"1"})"));
}

TEST(ExactCacheKey, IgnoresDeliveryAndBookkeepingFields) {
  const std::string base = exact_cache_key(WireFormat::kOpenAI, Json::parse(kBase));
  const std::vector<std::pair<std::string, Json>> ignored = {
      {"stream", true},
      {"stream", false},
      {"stream_options", {{"include_usage", true}}},
      {"user", "user-42"},
      {"metadata", {{"trace", "abc"}}},
      {"store", true},
      {"service_tier", "flex"},
  };
  for (const auto& [field, value] : ignored) {
    EXPECT_EQ(exact_cache_key(WireFormat::kOpenAI, base_with(field, value)), base) << field;
  }
}

TEST(ExactCacheKey, IgnoredNamesCountBelowTheTopLevel) {
  EXPECT_NE(key_of(R"({"messages":[{"role":"user","content":"hi"}]})"),
            key_of(R"({"messages":[{"role":"user","content":"hi","user":"x"}]})"));
  EXPECT_NE(key_of(R"({"response_format":{"type":"json_object"}})"),
            key_of(R"({"response_format":{"type":"json_object","stream":true}})"));
}

TEST(ExactCacheKey, EverythingThatShapesTheAnswerSplitsEntries) {
  const Json base = Json::parse(kBase);
  Json other_system = base;
  other_system["messages"][0]["content"] = "You are verbose.";
  Json other_question = base;
  other_question["messages"][1]["content"] = "What is 2+3?";
  Json extra_turn = base;
  extra_turn["messages"].push_back({{"role", "assistant"}, {"content", "4"}});
  Json no_temperature = base;
  no_temperature.erase("temperature");
  const Json tool = Json::parse(
      R"({"type":"function","function":{"name":"add","parameters":{"type":"object"}}})");

  const std::vector<std::pair<std::string, Json>> variants = {
      {"base", base},
      {"model", base_with("model", "gpt-4o")},
      {"temperature", base_with("temperature", 0.3)},
      {"temperature 1", base_with("temperature", 1)},
      {"no temperature", no_temperature},
      {"system prompt", other_system},
      {"question", other_question},
      {"extra turn", extra_turn},
      {"tools", base_with("tools", Json::array({tool}))},
      {"tool_choice", base_with("tool_choice", "required")},
      {"response_format", base_with("response_format", {{"type", "json_object"}})},
      {"top_p", base_with("top_p", 0.9)},
      {"max_tokens", base_with("max_tokens", 65)},
      {"max_completion_tokens", base_with("max_completion_tokens", 64)},
      {"stop", base_with("stop", Json::array({"\n"}))},
      {"seed", base_with("seed", 7)},
      {"n", base_with("n", 2)},
      {"presence_penalty", base_with("presence_penalty", 0.5)},
      {"frequency_penalty", base_with("frequency_penalty", 0.5)},
      {"logit_bias", base_with("logit_bias", {{"50256", -100}})},
      {"logprobs", base_with("logprobs", true)},
      {"reasoning_effort", base_with("reasoning_effort", "high")},
      {"parallel_tool_calls", base_with("parallel_tool_calls", false)},
      {"unknown field", base_with("x_vendor_knob", 1)},
  };
  std::set<std::string> keys;
  for (const auto& [name, body] : variants) {
    EXPECT_TRUE(keys.insert(exact_cache_key(WireFormat::kOpenAI, body)).second) << name;
  }
  EXPECT_TRUE(keys.insert(exact_cache_key(WireFormat::kAnthropic, base)).second);
  EXPECT_TRUE(keys.insert(exact_cache_key(WireFormat::kNative, base)).second);
}

TEST(ExactCacheKey, MissingTemperatureIsNotTemperatureOne) {
  EXPECT_NE(key_of(R"({"model":"m"})"), key_of(R"({"model":"m","temperature":1})"));
}

TEST(ExactCacheKey, ComparesStringsExactly) {
  const std::string plain = key_of(R"({"messages":[{"role":"user","content":"Hello"}]})");
  EXPECT_NE(plain, key_of(R"({"messages":[{"role":"user","content":"Hello "}]})"));
  EXPECT_NE(plain, key_of(R"({"messages":[{"role":"user","content":" Hello"}]})"));
  EXPECT_NE(plain, key_of(R"({"messages":[{"role":"user","content":"hello"}]})"));
}

TEST(ExactCacheKey, NestedToolSchemasIgnoreKeyOrderButNotToolOrder) {
  const char* const add = R"({"type":"function","function":{"name":"add","description":"Adds",
      "parameters":{"type":"object","required":["a","b"],
                    "properties":{"a":{"type":"number"},"b":{"type":"number"}}}}})";
  const char* const add_reordered = R"({"function":{"parameters":{
      "properties":{"b":{"type":"number"},"a":{"type":"number"}},
      "required":["a","b"],"type":"object"},"description":"Adds","name":"add"},"type":"function"})";
  const char* const now = R"({"type":"function","function":{"name":"now","parameters":{}}})";
  const auto tools = [](std::string_view first, std::string_view second) {
    return exact_cache_key(WireFormat::kOpenAI,
                           Json{{"model", "m"},
                                {"tools", Json::array({Json::parse(first), Json::parse(second)})}});
  };
  EXPECT_EQ(tools(add, now), tools(add_reordered, now));
  EXPECT_NE(tools(add, now), tools(now, add));
}

}  // namespace
}  // namespace isartor::cache
