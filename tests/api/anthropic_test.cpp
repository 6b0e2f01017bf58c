#include "api/anthropic_inbound.h"
#include "api/anthropic_outbound.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api/openai.h"

namespace isartor::api {
namespace {

// ---- Anthropic request -> OpenAI request

TEST(AnthropicRequestToOpenAI, ConvertsFullConversation) {
  Json body = Json::parse(R"({
    "model": "claude-sonnet-4-5", "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are helpful."},
               {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
      {"role": "user", "content": [
        {"type": "text", "text": "Weather in Paris?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0"}}]},
      {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
          {"type": "text", "text": "18C"}, {"type": "text", "text": "sunny"},
          {"type": "image", "source": {"type": "url", "url": "https://x.test/y.png"}}]},
        {"type": "text", "text": "And tomorrow?"}]},
      {"role": "assistant", "content": "Also sunny."}
    ],
    "tools": [
      {"name": "get_weather", "description": "Weather",
       "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
      {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
    "temperature": 0.2, "top_p": 0.9, "top_k": 40, "stop_sequences": ["###"], "stream": true,
    "metadata": {"user_id": "u-9"}, "thinking": {"type": "enabled", "budget_tokens": 2000}
  })");
  auto result = anthropic_request_to_openai(body);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(*result, Json::parse(R"({
    "model": "claude-sonnet-4-5", "max_tokens": 1024,
    "messages": [
      {"role": "system", "content": "You are helpful.\n\nBe brief."},
      {"role": "user", "content": [
        {"type": "text", "text": "Weather in Paris?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0"}}]},
      {"role": "assistant", "content": "Checking.", "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "toolu_1", "content": "18C\nsunny"},
      {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x.test/y.png"}},
        {"type": "text", "text": "And tomorrow?"}]},
      {"role": "assistant", "content": "Also sunny."}
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
    "tool_choice": "required", "parallel_tool_calls": false,
    "temperature": 0.2, "top_p": 0.9, "stop": ["###"], "stream": true,
    "stream_options": {"include_usage": true}, "user": "u-9"
  })"));
}

TEST(AnthropicRequestToOpenAI, ToolOnlyAssistantHasNullContentAndResultOnlyUserHasNoUserMessage) {
  Json body = Json::parse(R"({"max_tokens": 5, "messages": [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f"}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": true}]}]})");
  auto result = anthropic_request_to_openai(body);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ((*result)["messages"], Json::parse(R"([
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": null,
     "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "t1", "content": ""}])"));
  EXPECT_FALSE(result->contains("stream_options"));
}

TEST(AnthropicRequestToOpenAI, ToolChoiceVariantsAndNoToolsDropsChoice) {
  auto choice_for = [](const char* choice) {
    Json body = Json::parse(R"({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
      "tools": [{"name": "f", "input_schema": {"type": "object"}}]})");
    body["tool_choice"] = Json::parse(choice);
    auto result = anthropic_request_to_openai(body);
    EXPECT_TRUE(result.has_value());
    return result.has_value() ? (*result)["tool_choice"] : Json();
  };
  EXPECT_EQ(choice_for(R"({"type":"auto"})"), "auto");
  EXPECT_EQ(choice_for(R"({"type":"none"})"), "none");
  EXPECT_EQ(choice_for(R"({"type":"any"})"), "required");
  EXPECT_EQ(choice_for(R"({"type":"tool","name":"f"})"),
            Json::parse(R"({"type":"function","function":{"name":"f"}})"));

  // Only server tools: OpenAI rejects tool_choice without tools, so both go.
  Json body = Json::parse(R"({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
    "tools": [{"type": "bash_20250124", "name": "bash"}], "tool_choice": {"type": "any"}})");
  auto result = anthropic_request_to_openai(body);
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(result->contains("tools"));
  EXPECT_FALSE(result->contains("tool_choice"));
}

Json minimal_anthropic() {
  return Json::parse(R"({"model": "claude", "max_tokens": 10, "messages": [
    {"role": "user", "content": [{"type": "text", "text": "hi"},
      {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}}]},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}],
    "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": {"type": "auto"}})");
}

template <class Edit>
Error anthropic_error_after(Edit edit) {
  Json body = minimal_anthropic();
  edit(body);
  auto result = anthropic_request_to_openai(body);
  EXPECT_FALSE(result.has_value()) << body.dump();
  return result.has_value() ? Error{} : result.error();
}

TEST(AnthropicRequestToOpenAI, MinimalFixtureIsValid) {
  EXPECT_TRUE(anthropic_request_to_openai(minimal_anthropic()).has_value());
}

TEST(AnthropicRequestToOpenAI, RejectsNonObjectBodies) {
  for (const char* text : {"[]", "\"x\"", "null", "1"}) {
    auto result = anthropic_request_to_openai(Json::parse(text));
    ASSERT_FALSE(result.has_value()) << text;
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidRequest);
  }
}

TEST(AnthropicRequestToOpenAI, MaxTokensIsRequiredPositiveInteger) {
  Error e = anthropic_error_after([](Json& b) { b.erase("max_tokens"); });
  EXPECT_EQ(e.message, "max_tokens: Field required");
  EXPECT_EQ(e.param, "max_tokens");
  EXPECT_EQ(e.code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["max_tokens"] = "10"; }).message,
            "max_tokens: Input should be a valid integer");
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["max_tokens"] = 2.5; }).param, "max_tokens");
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["max_tokens"] = 0; }).message,
            "max_tokens: Input should be greater than or equal to 1");
}

TEST(AnthropicRequestToOpenAI, MessagesErrors) {
  EXPECT_EQ(anthropic_error_after([](Json& b) { b.erase("messages"); }).message,
            "messages: Field required");
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["messages"] = "hi"; }).message,
            "messages: Input should be a valid list");
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["messages"] = Json::array(); }).param,
            "messages");
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["messages"][0] = 1; }).param, "messages.0");
  Error e = anthropic_error_after([](Json& b) { b["messages"][1]["role"] = "system"; });
  EXPECT_EQ(e.message, "messages.1.role: Input should be 'user' or 'assistant'");
  EXPECT_EQ(e.param, "messages.1.role");
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["messages"][0].erase("content"); }).message,
            "messages.0.content: Field required");
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["messages"][0]["content"] = 5; }).param,
            "messages.0.content");
}

TEST(AnthropicRequestToOpenAI, BlockErrors) {
  EXPECT_EQ(
      anthropic_error_after([](Json& b) { b["messages"][0]["content"][0].erase("type"); }).message,
      "messages.0.content.0.type: Field required");
  EXPECT_EQ(
      anthropic_error_after([](Json& b) { b["messages"][0]["content"][0]["text"] = 3; }).message,
      "messages.0.content.0.text: Input should be a valid string");
  EXPECT_EQ(anthropic_error_after([](Json& b) {
              b["messages"][0]["content"][1]["source"]["type"] = "file";
            }).param,
            "messages.0.content.1.source.type");
  EXPECT_EQ(anthropic_error_after([](Json& b) {
              b["messages"][0]["content"][1]["source"].erase("data");
            }).param,
            "messages.0.content.1.source.data");
  EXPECT_EQ(
      anthropic_error_after([](Json& b) { b["messages"][1]["content"][0]["input"] = "{}"; }).param,
      "messages.1.content.0.input");
  EXPECT_EQ(
      anthropic_error_after([](Json& b) { b["messages"][1]["content"][0].erase("name"); }).param,
      "messages.1.content.0.name");
  EXPECT_EQ(anthropic_error_after([](Json& b) {
              b["messages"][2]["content"][0].erase("tool_use_id");
            }).param,
            "messages.2.content.0.tool_use_id");
  EXPECT_EQ(
      anthropic_error_after([](Json& b) { b["messages"][2]["content"][0]["content"] = 1; }).param,
      "messages.2.content.0.content");
  // Valid Anthropic, but with no OpenAI form: 422, not 400.
  Error e = anthropic_error_after([](Json& b) {
    b["messages"][0]["content"][0] =
        Json::parse(R"({"type":"document","source":{"type":"url","url":"u"}})");
  });
  EXPECT_EQ(e.code, ErrorCode::kUnprocessable);
  EXPECT_EQ(e.param, "messages.0.content.0.type");
}

TEST(AnthropicRequestToOpenAI, OptionalFieldErrors) {
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["system"] = 1; }).param, "system");
  EXPECT_EQ(anthropic_error_after([](Json& b) {
              b["system"] = Json::parse(R"([{"type":"image"}])");
            }).param,
            "system.0.type");
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["temperature"] = "warm"; }).message,
            "temperature: Input should be a valid number");
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["temperature"] = 1.5; }).message,
            "temperature: range: 0..1");
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["top_k"] = -1; }).message,
            "top_k: Input should be greater than or equal to 0");
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["stream"] = 1; }).param, "stream");
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["model"] = 1; }).param, "model");
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["stop_sequences"] = Json::array({1}); }).param,
            "stop_sequences.0");
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["tools"][0].erase("input_schema"); }).message,
            "tools.0.input_schema: Field required");
  EXPECT_EQ(anthropic_error_after([](Json& b) { b["tools"] = Json::object(); }).param, "tools");
  EXPECT_EQ(anthropic_error_after([](Json& b) {
              b["tool_choice"] = Json::parse(R"({"type":"some"})");
            }).param,
            "tool_choice.type");
  EXPECT_EQ(anthropic_error_after([](Json& b) {
              b["tool_choice"] = Json::parse(R"({"type":"tool"})");
            }).param,
            "tool_choice.name");
}

// ---- OpenAI request -> Anthropic request

TEST(OpenAIRequestToAnthropic, JoinsSystemMergesTurnsAndDropsOpenAIOnlyFields) {
  Json body = Json::parse(R"({"model": "gpt-4o", "messages": [
    {"role": "system", "content": "A"},
    {"role": "developer", "content": [{"type": "text", "text": "B"}]},
    {"role": "user", "content": "one"},
    {"role": "user", "content": [{"type": "text", "text": "two"},
      {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
      {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]},
    {"role": "assistant", "content": ""},
    {"role": "user", "content": "three"},
    {"role": "system", "content": "C"},
    {"role": "assistant", "content": "ok", "tool_calls": [
      {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "not json"}},
      {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "[1,2]"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "r1"},
    {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "r2"}]},
    {"role": "user", "content": "next"}],
    "stop": "END", "n": 2, "presence_penalty": 0.5, "frequency_penalty": 0.1, "logprobs": true,
    "response_format": {"type": "text"}, "seed": 1, "stream_options": {"include_usage": true},
    "stream": true, "temperature": 1.7, "user": "u"})");
  EXPECT_EQ(openai_request_to_anthropic(body, 4096), Json::parse(R"({
    "model": "gpt-4o", "max_tokens": 4096, "system": "A\n\nB\n\nC",
    "messages": [
      {"role": "user", "content": [
        {"type": "text", "text": "one"}, {"type": "text", "text": "two"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        {"type": "text", "text": "three"}]},
      {"role": "assistant", "content": [
        {"type": "text", "text": "ok"},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {}},
        {"type": "tool_use", "id": "call_2", "name": "g", "input": {}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "r1"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "r2"},
        {"type": "text", "text": "next"}]}],
    "stop_sequences": ["END"], "stream": true, "temperature": 1.0, "metadata": {"user_id": "u"}})"));
}

TEST(OpenAIRequestToAnthropic, ToolResultsGoFirstInMergedUserTurn) {
  Json body = Json::parse(R"({"messages": [
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"x\":[1]}"}}]},
    {"role": "user", "content": "by the way"},
    {"role": "tool", "tool_call_id": "c", "content": ""}]})");
  Json out = openai_request_to_anthropic(body, 10);
  EXPECT_EQ(out["messages"], Json::parse(R"([
    {"role": "assistant", "content": [{"type": "tool_use", "id": "c", "name": "f", "input": {"x": [1]}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c"}, {"type": "text", "text": "by the way"}]}])"));
}

TEST(OpenAIRequestToAnthropic, MaxTokensPrecedenceAndDefault) {
  Json body = Json::parse(R"({"messages": [{"role": "user", "content": "x"}]})");
  EXPECT_EQ(openai_request_to_anthropic(body, 321)["max_tokens"], 321);
  body["max_tokens"] = 10;
  EXPECT_EQ(openai_request_to_anthropic(body, 321)["max_tokens"], 10);
  body["max_completion_tokens"] = 20;
  EXPECT_EQ(openai_request_to_anthropic(body, 321)["max_tokens"], 20);
}

TEST(OpenAIRequestToAnthropic, ToolsAndToolChoice) {
  Json body = Json::parse(R"({"messages": [{"role": "user", "content": "x"}],
    "tools": [{"type": "function", "function": {"name": "f"}},
              {"type": "function", "function": {"name": "g", "description": "G",
                "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}],
    "tool_choice": "required", "parallel_tool_calls": false})");
  Json out = openai_request_to_anthropic(body, 10);
  EXPECT_EQ(out["tools"], Json::parse(R"([
    {"name": "f", "input_schema": {"type": "object", "properties": {}}},
    {"name": "g", "description": "G", "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}])"));
  EXPECT_EQ(out["tool_choice"],
            Json::parse(R"({"type": "any", "disable_parallel_tool_use": true})"));
  body["tool_choice"] = "none";
  EXPECT_EQ(openai_request_to_anthropic(body, 10)["tool_choice"],
            Json::parse(R"({"type": "none"})"));
  body.erase("tool_choice");
  EXPECT_EQ(openai_request_to_anthropic(body, 10)["tool_choice"],
            Json::parse(R"({"type": "auto", "disable_parallel_tool_use": true})"));
  body.erase("tools");
  body["tool_choice"] = "auto";
  EXPECT_FALSE(openai_request_to_anthropic(body, 10).contains("tool_choice"));
}

TEST(OpenAIRequestToAnthropic, SurvivesGarbage) {
  for (const char* text : {"null", "[]", "\"x\"", R"({"messages": "x"})",
                           R"({"messages": [1, null, {"role": 3}, {"role": "user", "content": 5},
                               {"role": "assistant", "tool_calls": [1, {"function": 2}]},
                               {"role": "tool", "content": {"a": 1}}], "stop": [1, ""], "tools": [1]})"}) {
    Json out;
    ASSERT_NO_THROW(out = openai_request_to_anthropic(Json::parse(text), 7)) << text;
    EXPECT_EQ(out["max_tokens"], 7);
    EXPECT_TRUE(out["messages"].is_array());
    EXPECT_FALSE(out.contains("stop_sequences"));
  }
}

TEST(RequestRoundTrip, AnthropicToOpenAIToAnthropicIsIdentity) {
  const Json original = Json::parse(R"({
    "model": "claude-x", "max_tokens": 512, "system": "Be brief.",
    "messages": [
      {"role": "user", "content": "Weather in Paris and Rome?"},
      {"role": "assistant", "content": [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome", "units": ["C"]}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "25C"},
        {"type": "text", "text": "Thanks!"}]},
      {"role": "assistant", "content": "You're welcome."},
      {"role": "user", "content": [
        {"type": "text", "text": "Look:"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}
    ],
    "tools": [{"name": "get_weather", "description": "Weather",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
    "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
    "temperature": 0.5, "top_p": 0.9, "stop_sequences": ["END"], "stream": true,
    "metadata": {"user_id": "u1"}
  })");
  auto openai = anthropic_request_to_openai(original);
  ASSERT_TRUE(openai.has_value()) << openai.error().message;
  ASSERT_TRUE(validate_chat_request(*openai).has_value())
      << validate_chat_request(*openai).error().message;
  EXPECT_EQ(openai_request_to_anthropic(*openai, 1), original);
}

TEST(RequestRoundTrip, OpenAIToAnthropicToOpenAIIsIdentity) {
  const Json original = Json::parse(R"({
    "model": "gpt-4o", "max_tokens": 100,
    "messages": [
      {"role": "system", "content": "S"},
      {"role": "user", "content": "Hi"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
      {"role": "assistant", "content": "Done."},
      {"role": "user", "content": [{"type": "text", "text": "See"},
        {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lG"}}]}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "tool_choice": "auto", "stop": ["x"], "temperature": 0.3, "top_p": 0.5
  })");
  auto back = anthropic_request_to_openai(openai_request_to_anthropic(original, 1));
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(*back, original);
}

// ---- Responses

const char* kAnthropicToolMessage = R"({
  "id": "msg_01XFD", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
  "content": [{"type": "text", "text": "Let me check."},
              {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}],
  "stop_reason": "tool_use", "stop_sequence": null,
  "usage": {"input_tokens": 100, "output_tokens": 30, "cache_read_input_tokens": 20, "cache_creation_input_tokens": 5}})";

TEST(AnthropicResponseToOpenAI, TranslatesContentToolsStopAndUsage) {
  Json completion = anthropic_response_to_openai(Json::parse(kAnthropicToolMessage));
  EXPECT_GT(completion["created"].get<int64_t>(), 1600000000);
  completion.erase("created");
  EXPECT_EQ(completion, Json::parse(R"({
    "id": "chatcmpl-01XFD", "object": "chat.completion", "model": "claude-sonnet-4-5",
    "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls",
      "message": {"role": "assistant", "content": "Let me check.", "tool_calls": [
        {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
    "usage": {"prompt_tokens": 125, "completion_tokens": 30, "total_tokens": 155,
              "prompt_tokens_details": {"cached_tokens": 20}}})"));
}

TEST(AnthropicResponseToOpenAI, ToolOnlyHasNullContentAndGarbageDoesNotThrow) {
  Json message = Json::parse(kAnthropicToolMessage);
  message["content"].erase(0);
  EXPECT_TRUE(anthropic_response_to_openai(message)["choices"][0]["message"]["content"].is_null());
  for (const char* text : {"null", "[]", R"({"content": "x", "usage": 1, "id": 5})"}) {
    Json out;
    ASSERT_NO_THROW(out = anthropic_response_to_openai(Json::parse(text)));
    EXPECT_EQ(out["choices"][0]["message"]["content"], "");
    EXPECT_EQ(out["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(out["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  }
}

TEST(OpenAIResponseToAnthropic, TranslatesContentToolsStopAndUsage) {
  Json completion = Json::parse(R"({
    "id": "chatcmpl-abc", "object": "chat.completion", "created": 1, "model": "gpt-4o",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "Hm.",
      "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":[1,2]}"}},
                     {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{oops"}}]}}],
    "usage": {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57,
              "prompt_tokens_details": {"cached_tokens": 10}}})");
  EXPECT_EQ(openai_response_to_anthropic(completion), Json::parse(R"({
    "id": "msg_abc", "type": "message", "role": "assistant", "model": "gpt-4o",
    "content": [{"type": "text", "text": "Hm."},
                {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": [1, 2]}},
                {"type": "tool_use", "id": "call_2", "name": "g", "input": {}}],
    "stop_reason": "tool_use", "stop_sequence": null,
    "usage": {"input_tokens": 40, "output_tokens": 7, "cache_read_input_tokens": 10}})"));
}

TEST(OpenAIResponseToAnthropic, EmptyAnswerHasOneEmptyTextBlock) {
  Json out = openai_response_to_anthropic(
      make_completion("chatcmpl-1", "m", 0, "", "length", Usage{3, 0}));
  EXPECT_EQ(out["content"], Json::parse(R"([{"type": "text", "text": ""}])"));
  EXPECT_EQ(out["stop_reason"], "max_tokens");
  EXPECT_EQ(out["usage"], Json::parse(R"({"input_tokens": 3, "output_tokens": 0})"));
  ASSERT_NO_THROW(out = openai_response_to_anthropic(Json::parse("[1]")));
  EXPECT_EQ(out["stop_reason"], "end_turn");
  EXPECT_EQ(out["id"].get<std::string>().rfind("msg_", 0), 0u);
}

TEST(ResponseRoundTrip, AnthropicToOpenAIToAnthropic) {
  Json message = Json::parse(kAnthropicToolMessage);
  message["usage"] = {{"input_tokens", 100}, {"output_tokens", 30}};
  EXPECT_EQ(openai_response_to_anthropic(anthropic_response_to_openai(message)), message);
}

TEST(StopReasons, MapBothWays) {
  EXPECT_EQ(openai_finish_reason("end_turn"), "stop");
  EXPECT_EQ(openai_finish_reason("stop_sequence"), "stop");
  EXPECT_EQ(openai_finish_reason("max_tokens"), "length");
  EXPECT_EQ(openai_finish_reason("tool_use"), "tool_calls");
  EXPECT_EQ(openai_finish_reason("refusal"), "content_filter");
  EXPECT_EQ(openai_finish_reason(""), "stop");
  EXPECT_EQ(anthropic_stop_reason("stop"), "end_turn");
  EXPECT_EQ(anthropic_stop_reason("length"), "max_tokens");
  EXPECT_EQ(anthropic_stop_reason("tool_calls"), "tool_use");
  EXPECT_EQ(anthropic_stop_reason("function_call"), "tool_use");
  EXPECT_EQ(anthropic_stop_reason("content_filter"), "end_turn");
}

// ---- Streams

// Replays events the way the Anthropic SDK's MessageStream accumulates them, checking the
// protocol's order on the way; returns the final message.
Json accumulate(const std::vector<SseEvent>& events) {
  Json message;
  int open = -1;
  std::string partial_json;
  EXPECT_FALSE(events.empty());
  for (size_t i = 0; i < events.size(); ++i) {
    const Json data = Json::parse(events[i].data);
    const std::string type = data.at("type");
    EXPECT_EQ(type, events[i].event);
    EXPECT_EQ(i == 0, type == "message_start") << i;
    EXPECT_EQ(i + 1 == events.size(), type == "message_stop") << i;
    if (type == "message_start") {
      message = data.at("message");
      EXPECT_EQ(message.at("content"), Json::array());
      EXPECT_TRUE(message.at("stop_reason").is_null());
      EXPECT_EQ(message.at("id").get<std::string>().rfind("msg_", 0), 0u);
    } else if (type == "content_block_start") {
      EXPECT_EQ(open, -1) << "block opened inside another";
      EXPECT_EQ(data.at("index"), message["content"].size());
      message["content"].push_back(data.at("content_block"));
      open = data.at("index");
      partial_json.clear();
    } else if (type == "content_block_delta") {
      EXPECT_EQ(data.at("index"), open);
      Json& block = message["content"][static_cast<size_t>(open)];
      const Json& delta = data.at("delta");
      if (delta.at("type") == "text_delta") {
        EXPECT_EQ(block.at("type"), "text");
        block["text"] = block["text"].get<std::string>() + delta.at("text").get<std::string>();
      } else {
        EXPECT_EQ(delta.at("type"), "input_json_delta");
        EXPECT_EQ(block.at("type"), "tool_use");
        partial_json += delta.at("partial_json").get<std::string>();
      }
    } else if (type == "content_block_stop") {
      EXPECT_EQ(data.at("index"), open);
      Json& block = message["content"][static_cast<size_t>(open)];
      if (block.at("type") == "tool_use")
        block["input"] = partial_json.empty() ? Json::object() : Json::parse(partial_json);
      open = -1;
    } else if (type == "message_delta") {
      EXPECT_EQ(open, -1) << "message_delta with an open block";
      message["stop_reason"] = data.at("delta").at("stop_reason");
      message["stop_sequence"] = data.at("delta").at("stop_sequence");
      for (const auto& [key, value] : data.at("usage").items()) message["usage"][key] = value;
    } else {
      EXPECT_TRUE(type == "ping" || type == "message_stop") << type;
    }
  }
  return message;
}

std::vector<SseEvent> encode(AnthropicStreamEncoder& encoder, const std::vector<Json>& chunks) {
  std::vector<SseEvent> events;
  for (const Json& chunk : chunks) {
    for (SseEvent& e : encoder.on_chunk(chunk)) events.push_back(std::move(e));
  }
  for (SseEvent& e : encoder.finish()) events.push_back(std::move(e));
  return events;
}

std::vector<std::string> types_of(const std::vector<SseEvent>& events) {
  std::vector<std::string> types;
  for (const SseEvent& e : events) types.push_back(e.event);
  return types;
}

TEST(AnthropicStreamEncoder, TextAnswerFullSequence) {
  Json completion =
      make_completion("chatcmpl-abc", "gpt-4o", 1, "Hello there", "stop", Usage{10, 5});
  AnthropicStreamEncoder encoder("claude-x");
  std::vector<SseEvent> events = encode(encoder, completion_to_chunks(completion, 4));
  EXPECT_EQ(
      types_of(events),
      (std::vector<std::string>{"message_start", "ping", "content_block_start",
                                "content_block_delta", "content_block_delta", "content_block_delta",
                                "content_block_stop", "message_delta", "message_stop"}));
  EXPECT_EQ(Json::parse(events[0].data), Json::parse(R"({"type": "message_start", "message": {
    "id": "msg_abc", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
    "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 0, "output_tokens": 0}}})"));
  EXPECT_EQ(Json::parse(events[1].data), Json::parse(R"({"type": "ping"})"));
  EXPECT_EQ(
      Json::parse(events[2].data),
      Json::parse(
          R"({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})"));
  EXPECT_EQ(
      Json::parse(events[3].data),
      Json::parse(
          R"({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hell"}})"));
  EXPECT_EQ(Json::parse(events[6].data),
            Json::parse(R"({"type": "content_block_stop", "index": 0})"));
  EXPECT_EQ(Json::parse(events[7].data), Json::parse(R"({"type": "message_delta",
    "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"input_tokens": 10, "output_tokens": 5}})"));
  EXPECT_EQ(Json::parse(events[8].data), Json::parse(R"({"type": "message_stop"})"));

  Json final_message = accumulate(events);
  Json expected = openai_response_to_anthropic(completion);
  expected["model"] = "claude-x";
  EXPECT_EQ(final_message, expected);
}

TEST(AnthropicStreamEncoder, ToolAnswerFullSequence) {
  Json completion = Json::parse(R"({
    "id": "chatcmpl-t", "object": "chat.completion", "created": 1, "model": "gpt-4o",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "On it.",
      "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Zürich\",\"days\":[1,2]}"}},
                     {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]}}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29}})");
  AnthropicStreamEncoder encoder("");
  std::vector<SseEvent> events = encode(encoder, completion_to_chunks(completion, 6));
  Json final_message = accumulate(events);
  EXPECT_EQ(final_message, openai_response_to_anthropic(completion));
  EXPECT_EQ(final_message["model"], "gpt-4o");  // taken from the chunks when none was given
  EXPECT_EQ(final_message["content"].size(), 3u);
  EXPECT_EQ(final_message["stop_reason"], "tool_use");
  // The tool_use block starts with its id and name and an empty input, as Anthropic streams it.
  bool saw_tool_start = false;
  for (const SseEvent& e : events) {
    Json data = Json::parse(e.data);
    if (e.event == "content_block_start" && data["content_block"]["type"] == "tool_use" &&
        data["index"] == 1) {
      EXPECT_EQ(data["content_block"],
                Json::parse(
                    R"({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}})"));
      saw_tool_start = true;
    }
  }
  EXPECT_TRUE(saw_tool_start);
}

TEST(AnthropicStreamEncoder, EmptyAnswerStillHasOneTextBlock) {
  AnthropicStreamEncoder encoder("m");
  std::vector<Json> chunks = {
      make_chunk("chatcmpl-e", "m", 1, {{"role", "assistant"}, {"content", ""}}, ""),
      make_chunk("chatcmpl-e", "m", 1, {{"content", ""}}, ""),
      make_chunk("chatcmpl-e", "m", 1, Json::object(), "length")};
  std::vector<SseEvent> events = encode(encoder, chunks);
  EXPECT_EQ(types_of(events),
            (std::vector<std::string>{"message_start", "ping", "content_block_start",
                                      "content_block_stop", "message_delta", "message_stop"}));
  Json final_message = accumulate(events);
  EXPECT_EQ(final_message["content"], Json::parse(R"([{"type": "text", "text": ""}])"));
  EXPECT_EQ(final_message["stop_reason"], "max_tokens");
}

TEST(AnthropicStreamEncoder, FinishWithoutChunksIsACompleteStream) {
  AnthropicStreamEncoder encoder("claude-y");
  std::vector<SseEvent> events = encoder.finish();
  Json final_message = accumulate(events);
  EXPECT_EQ(final_message["model"], "claude-y");
  EXPECT_EQ(final_message["stop_reason"], "end_turn");
  EXPECT_EQ(final_message["usage"]["output_tokens"], 0);
  EXPECT_TRUE(encoder.finish().empty());
  EXPECT_TRUE(encoder.on_chunk(make_chunk("c", "m", 1, {{"content", "late"}}, "")).empty());
}

TEST(AnthropicStreamEncoder, IgnoresGarbageChunks) {
  AnthropicStreamEncoder encoder("m");
  std::vector<Json> chunks = {
      Json("x"), Json::parse(R"({"choices": 5})"),
      Json::parse(R"({"choices": [{"delta": {"content": 3, "tool_calls": "x"}}]})"),
      Json::parse(
          R"({"choices": [{"delta": {"content": "ok"}, "finish_reason": 1}], "usage": []})")};
  std::vector<SseEvent> events;
  ASSERT_NO_THROW(events = encode(encoder, chunks));
  Json final_message = accumulate(events);
  EXPECT_EQ(final_message["content"], Json::parse(R"([{"type": "text", "text": "ok"}])"));
}

const char* kAnthropicTextStream[][2] = {
    {"message_start",
     R"({"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"claude-opus-4-1","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}})"},
    {"content_block_start",
     R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"},
    {"ping", R"({"type": "ping"})"},
    {"content_block_delta",
     R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}})"},
    {"content_block_delta",
     R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}})"},
    {"content_block_stop", R"({"type":"content_block_stop","index":0})"},
    {"content_block_start",
     R"({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}})"},
    {"content_block_delta",
     R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}})"},
    {"content_block_delta",
     R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}})"},
    {"content_block_delta",
     R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"San Francisco, CA\"}"}})"},
    {"content_block_stop", R"({"type":"content_block_stop","index":1})"},
    {"message_delta",
     R"({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}})"},
    {"message_stop", R"({"type":"message_stop"})"},
};

TEST(AnthropicStreamDecoder, DecodesRealStreamIntoChunks) {
  AnthropicStreamDecoder decoder;
  CompletionAssembler assembler;
  for (const auto& [event, data] : kAnthropicTextStream) {
    EXPECT_FALSE(decoder.done());
    auto chunks = decoder.on_event(SseEvent{event, data});
    ASSERT_TRUE(chunks.has_value()) << chunks.error().message;
    for (const Json& chunk : *chunks) {
      EXPECT_EQ(chunk["object"], "chat.completion.chunk");
      EXPECT_EQ(chunk["id"], "chatcmpl-1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY");
      assembler.add_chunk(chunk);
    }
  }
  EXPECT_TRUE(decoder.done());
  Json completion = assembler.completion();
  EXPECT_GT(completion["created"].get<int64_t>(), 1600000000);
  completion.erase("created");
  EXPECT_EQ(completion, Json::parse(R"({
    "id": "chatcmpl-1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "object": "chat.completion", "model": "claude-opus-4-1",
    "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls", "message": {
      "role": "assistant", "content": "Hello!", "tool_calls": [{"id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\": \"San Francisco, CA\"}"}}]}}],
    "usage": {"prompt_tokens": 25, "completion_tokens": 89, "total_tokens": 114}})"));
}

TEST(AnthropicStreamDecoder, ErrorEventBecomesError) {
  AnthropicStreamDecoder decoder;
  auto result = decoder.on_event(
      {"error",
       R"({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})"});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kUpstream);
  EXPECT_NE(result.error().message.find("overloaded_error"), std::string::npos);
  EXPECT_NE(result.error().message.find("Overloaded"), std::string::npos);
}

TEST(AnthropicStreamDecoder, MalformedAndUnknownEvents) {
  AnthropicStreamDecoder decoder;
  for (const char* bad : {"not json", "[1]", "", "{\"type\":"}) {
    auto result = decoder.on_event({"message_start", bad});
    ASSERT_FALSE(result.has_value()) << bad;
    EXPECT_EQ(result.error().code, ErrorCode::kUpstream);
  }
  for (
      const char* ignored :
      {R"({"type": "ping"})", R"({"type": "future_event", "x": 1})",
       R"({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "x"}})",
       R"({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{"}})"}) {
    auto result = decoder.on_event({"", ignored});
    ASSERT_TRUE(result.has_value()) << ignored;
    EXPECT_TRUE(result->empty()) << ignored;
  }
  EXPECT_FALSE(decoder.done());
}

TEST(StreamRoundTrip, CompletionThroughAnthropicWireBackToCompletion) {
  Json tool = Json::parse(R"({
    "id": "chatcmpl-rt", "object": "chat.completion", "created": 1, "model": "gpt-4o",
    "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls", "message": {"role": "assistant",
      "content": "Ünïcode 🌍 text.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "a", "arguments": "{\"q\":\"x y\",\"n\":[1,2,{\"k\":null}]}"}},
        {"id": "call_2", "type": "function", "function": {"name": "b", "arguments": "{}"}}]}}],
    "usage": {"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33}})");
  for (const Json& original :
       {tool, make_completion("chatcmpl-t2", "m", 1, "Just text", "length", Usage{1, 2}),
        make_completion("chatcmpl-t3", "m", 1, "", "stop", Usage{1, 0})}) {
    AnthropicStreamEncoder encoder(original["model"]);
    std::string wire;
    for (const SseEvent& e : encode(encoder, completion_to_chunks(original, 3)))
      wire += format_sse(e);

    SseParser parser;
    AnthropicStreamDecoder decoder;
    CompletionAssembler assembler;
    for (size_t i = 0; i < wire.size(); i += 5) {  // arbitrary network splits
      for (const SseEvent& e : parser.feed(std::string_view(wire).substr(i, 5))) {
        auto chunks = decoder.on_event(e);
        ASSERT_TRUE(chunks.has_value()) << chunks.error().message;
        for (const Json& chunk : *chunks) assembler.add_chunk(chunk);
      }
    }
    EXPECT_TRUE(parser.finish().empty());
    EXPECT_TRUE(decoder.done());
    Json back = assembler.completion();
    EXPECT_EQ(back["id"], original["id"]);
    EXPECT_EQ(back["choices"][0]["message"], original["choices"][0]["message"]);
    EXPECT_EQ(back["choices"][0]["finish_reason"], original["choices"][0]["finish_reason"]);
    EXPECT_EQ(back["usage"], original["usage"]);
  }
}

TEST(AnthropicCanExpress, RefusesWhatWouldBeLostNamingTheField) {
  auto param_of = [](const char* extra) {
    Json body = Json::parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
    body.update(Json::parse(extra));
    auto ok = check_anthropic_can_express(body);
    EXPECT_FALSE(ok) << extra;
    if (ok) return std::string();
    EXPECT_EQ(ok.error().code, ErrorCode::kUnprocessable);
    return ok.error().param;
  };
  EXPECT_EQ(param_of(R"({"n":2})"), "n");
  EXPECT_EQ(param_of(R"({"logprobs":true})"), "logprobs");
  EXPECT_EQ(param_of(R"({"top_logprobs":3})"), "top_logprobs");
  EXPECT_EQ(param_of(R"({"response_format":{"type":"yaml"}})"), "response_format");
  EXPECT_EQ(param_of(R"({"response_format":{"type":"json_object"},"tools":[{"type":"function","function":{"name":"f"}}]})"),
            "response_format");
  EXPECT_EQ(param_of(R"({"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"array"}}}})"),
            "response_format.json_schema.schema");
  EXPECT_EQ(param_of(R"({"response_format":{"type":"json_schema","json_schema":{"name":"x"}}})"),
            "response_format.json_schema.schema");
  EXPECT_EQ(param_of(R"({"logit_bias":{"50256":-100}})"), "logit_bias");
  EXPECT_EQ(param_of(R"({"modalities":["text","audio"]})"), "modalities");
  for (const char* fine : {R"({"n":1})", R"({"logprobs":false})", R"({"response_format":{"type":"text"}})",
                           R"({"response_format":{"type":"json_object"}})",
                           R"({"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}})",
                           R"({"logit_bias":{}})", R"({"seed":7,"presence_penalty":0.5})", R"({"n":null})"}) {
    Json body = Json::parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
    body.update(Json::parse(fine));
    EXPECT_TRUE(check_anthropic_can_express(body)) << fine;
  }
}

// ---- JSON mode emulated with a forced tool

TEST(AnthropicJsonMode, ASchemaBecomesTheForcedToolAndItsInputTheAnswer) {
  const Json body = Json::parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}],
      "response_format":{"type":"json_schema","json_schema":{"name":"reply","description":"The reply",
      "schema":{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]},"strict":true}}})");
  ASSERT_EQ(json_answer_tool(body), "reply");
  const Json request = openai_request_to_anthropic(body, 1024);
  EXPECT_EQ(request["tools"], Json::parse(R"([{"name":"reply","description":"The reply",
      "input_schema":{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}}])"));
  EXPECT_EQ(request["tool_choice"], Json::parse(R"({"type":"tool","name":"reply"})"));

  const Json message = Json::parse(R"({"id":"msg_1","model":"m","stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4},
      "content":[{"type":"text","text":"Here it is:"},{"type":"tool_use","id":"toolu_1","name":"reply","input":{"answer":"yes"}}]})");
  const Json completion = anthropic_response_to_openai(message, "reply");
  EXPECT_EQ(completion["choices"][0]["message"], Json::parse(R"({"role":"assistant","content":"{\"answer\":\"yes\"}"})"));
  EXPECT_EQ(completion["choices"][0]["finish_reason"], "stop");
  // Without the tool name (a request that asked for no JSON) the same block is a tool call.
  EXPECT_EQ(anthropic_response_to_openai(message)["choices"][0]["finish_reason"], "tool_calls");
  // A JSON answer max_tokens cut off says so, as the streamed one does (never "stop": it is cached).
  Json cut = message;
  cut["stop_reason"] = "max_tokens";
  EXPECT_EQ(anthropic_response_to_openai(cut, "reply")["choices"][0]["finish_reason"], "length");
}

TEST(AnthropicJsonMode, JsonObjectAndOddNamesUseTheDefaultTool) {
  const Json object = Json::parse(R"({"messages":[],"response_format":{"type":"json_object"}})");
  EXPECT_EQ(json_answer_tool(object), "json_answer");
  EXPECT_EQ(openai_request_to_anthropic(object, 1)["tools"][0]["input_schema"], Json::parse(R"({"type":"object"})"));
  EXPECT_EQ(json_answer_tool(Json::parse(R"({"response_format":{"type":"json_schema","json_schema":{"name":"has space","schema":{}}}})")),
            "json_answer");
  EXPECT_EQ(json_answer_tool(Json::parse(R"({"response_format":{"type":"text"}})")), "");
  EXPECT_EQ(json_answer_tool(Json::parse(R"({"messages":[]})")), "");
}

TEST(AnthropicJsonMode, TheToolInputStreamsAsContent) {
  AnthropicStreamDecoder decoder("json_answer");
  CompletionAssembler assembler;
  const std::vector<SseEvent> events{
      {"message_start", R"({"type":"message_start","message":{"id":"msg_1","model":"m","usage":{"input_tokens":3}}})"},
      {"content_block_start", R"({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"json_answer","input":{}}})"},
      {"content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}})"},
      {"content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"1}"}})"},
      {"content_block_stop", R"({"type":"content_block_stop","index":0})"},
      {"message_delta", R"({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":5}})"},
      {"message_stop", R"({"type":"message_stop"})"}};
  for (const auto& event : events) {
    auto chunks = decoder.on_event(event);
    ASSERT_TRUE(chunks);
    for (const Json& chunk : *chunks) assembler.add_chunk(chunk);
  }
  const Json completion = assembler.completion();
  EXPECT_EQ(completion["choices"][0]["message"]["content"], R"({"a":1})");
  EXPECT_FALSE(completion["choices"][0]["message"].contains("tool_calls"));
  EXPECT_EQ(completion["choices"][0]["finish_reason"], "stop");
}

}  // namespace
}  // namespace isartor::api
