#include "api/openai.h"

#include <gtest/gtest.h>

#include <cctype>
#include <set>
#include <string>

namespace isartor::api {
namespace {

Json valid_request() {
  return Json::parse(R"({
    "model": "gpt-4o",
    "messages": [
      {"role": "developer", "content": "Be brief."},
      {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
      {"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}}
      ]},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}}
      ]},
      {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
      {"role": "assistant", "content": "A cat."},
      {"role": "user", "content": "Thanks"}
    ],
    "tools": [{"type": "function", "function": {"name": "lookup", "description": "Search",
               "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
    "tool_choice": {"type": "function", "function": {"name": "lookup"}},
    "stop": ["END", "STOP"],
    "stream": true,
    "stream_options": {"include_usage": true},
    "temperature": 0.7,
    "top_p": 1,
    "max_tokens": 100,
    "max_completion_tokens": 100,
    "n": 1,
    "seed": -5,
    "user": "u1",
    "presence_penalty": null
  })");
}

// Applies `edit` to a valid request and returns the validation error.
template <class Edit>
Error error_after(Edit edit) {
  Json body = valid_request();
  edit(body);
  auto result = validate_chat_request(body);
  EXPECT_FALSE(result.has_value()) << body.dump();
  return result.has_value() ? Error{} : result.error();
}

TEST(ValidateChatRequest, AcceptsFullRequest) {
  auto result = validate_chat_request(valid_request());
  EXPECT_TRUE(result.has_value()) << result.error().message;
}

TEST(ValidateChatRequest, AcceptsMinimalRequestAndStringStop) {
  EXPECT_TRUE(
      validate_chat_request(Json::parse(R"({"messages":[{"role":"user","content":"hi"}]})")));
  EXPECT_TRUE(validate_chat_request(Json::parse(
      R"({"messages":[{"role":"user","content":"hi"}],"stop":"x","tool_choice":"none"})")));
}

TEST(ValidateChatRequest, RejectsNonObjectBodies) {
  for (const char* text : {"[]", "\"hi\"", "null", "42", "true"}) {
    auto result = validate_chat_request(Json::parse(text));
    ASSERT_FALSE(result.has_value()) << text;
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidRequest);
  }
}

TEST(ValidateChatRequest, MissingMessages) {
  Error e = error_after([](Json& b) { b.erase("messages"); });
  EXPECT_EQ(e.code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(e.message, "'messages' is a required property");
  EXPECT_EQ(e.param, "messages");
  EXPECT_EQ(error_after([](Json& b) { b["messages"] = nullptr; }).message,
            "'messages' is a required property");
}

TEST(ValidateChatRequest, MessagesMustBeNonEmptyArray) {
  for (Json bad : {Json::array(), Json("hi"), Json::object(), Json(3)}) {
    Error e = error_after([&](Json& b) { b["messages"] = bad; });
    EXPECT_EQ(e.message, "'messages' must be a non-empty array");
    EXPECT_EQ(e.param, "messages");
  }
}

TEST(ValidateChatRequest, MessageMustBeObject) {
  Error e = error_after([](Json& b) { b["messages"][1] = "hello"; });
  EXPECT_EQ(e.message, "messages[1] must be an object");
  EXPECT_EQ(e.param, "messages[1]");
}

TEST(ValidateChatRequest, RoleMustBeAKnownString) {
  Error e = error_after([](Json& b) { b["messages"][2]["role"] = 5; });
  EXPECT_EQ(e.message, "messages[2].role must be a string");
  EXPECT_EQ(e.param, "messages[2].role");
  EXPECT_EQ(error_after([](Json& b) { b["messages"][2].erase("role"); }).param, "messages[2].role");
  e = error_after([](Json& b) { b["messages"][0]["role"] = "robot"; });
  EXPECT_EQ(e.param, "messages[0].role");
  EXPECT_NE(e.message.find("'robot'"), std::string::npos);
}

TEST(ValidateChatRequest, ContentRules) {
  Error e = error_after([](Json& b) { b["messages"][6].erase("content"); });
  EXPECT_EQ(e.message, "'messages[6].content' is a required property");
  EXPECT_EQ(e.param, "messages[6].content");
  // Null content is only for an assistant turn that calls tools.
  EXPECT_EQ(error_after([](Json& b) { b["messages"][5]["content"] = nullptr; }).param,
            "messages[5].content");
  EXPECT_EQ(error_after([](Json& b) { b["messages"][3]["tool_calls"] = Json::array(); }).param,
            "messages[3].content");
  e = error_after([](Json& b) { b["messages"][6]["content"] = 12; });
  EXPECT_EQ(e.message, "messages[6].content must be a string, an array or null");
}

TEST(ValidateChatRequest, ContentParts) {
  EXPECT_EQ(error_after([](Json& b) { b["messages"][2]["content"][0] = "text"; }).param,
            "messages[2].content[0]");
  EXPECT_EQ(error_after([](Json& b) { b["messages"][2]["content"][0].erase("type"); }).param,
            "messages[2].content[0].type");
  EXPECT_EQ(error_after([](Json& b) { b["messages"][2]["content"][0]["text"] = 1; }).param,
            "messages[2].content[0].text");
  EXPECT_EQ(error_after([](Json& b) {
              b["messages"][2]["content"][1]["image_url"] = Json::object();
            }).param,
            "messages[2].content[1].image_url.url");
}

TEST(ValidateChatRequest, ToolCallsAndToolMessages) {
  Error e = error_after(
      [](Json& b) { b["messages"][3]["tool_calls"][0]["function"]["arguments"] = Json::object(); });
  EXPECT_EQ(e.param, "messages[3].tool_calls[0].function.arguments");
  EXPECT_EQ(e.message, "messages[3].tool_calls[0].function.arguments must be a string");
  EXPECT_EQ(error_after([](Json& b) { b["messages"][3]["tool_calls"] = "x"; }).param,
            "messages[3].tool_calls");
  EXPECT_EQ(error_after([](Json& b) { b["messages"][3]["tool_calls"][0].erase("id"); }).param,
            "messages[3].tool_calls[0].id");
  EXPECT_EQ(error_after([](Json& b) {
              b["messages"][6]["tool_calls"] = b["messages"][3]["tool_calls"];
            }).param,
            "messages[6].tool_calls");
  e = error_after([](Json& b) { b["messages"][4].erase("tool_call_id"); });
  EXPECT_EQ(e.param, "messages[4].tool_call_id");
  EXPECT_EQ(e.message, "'messages[4].tool_call_id' is a required property");
}

TEST(ValidateChatRequest, ScalarTypesAndRanges) {
  struct Case {
    const char* field;
    Json value;
    const char* message;
  };
  const Case cases[] = {
      {"model", 3, "'model' must be a string"},
      {"stream", "yes", "'stream' must be a boolean"},
      {"temperature", "hot", "'temperature' must be a number"},
      {"temperature", 2.5, "'temperature' must be between 0 and 2"},
      {"temperature", -0.1, "'temperature' must be between 0 and 2"},
      {"top_p", 1.5, "'top_p' must be between 0 and 1"},
      {"max_tokens", 1.5, "'max_tokens' must be an integer"},
      {"max_tokens", 0, "'max_tokens' must be at least 1"},
      {"max_completion_tokens", "10", "'max_completion_tokens' must be an integer"},
      {"n", 0, "'n' must be between 1 and 128"},
      {"tools", Json::object(), "'tools' must be an array"},
      {"stream_options", true, "'stream_options' must be an object"},
  };
  for (const Case& c : cases) {
    Error e = error_after([&](Json& b) { b[c.field] = c.value; });
    EXPECT_EQ(e.message, c.message) << c.field;
    EXPECT_EQ(e.param, c.field);
    EXPECT_EQ(e.code, ErrorCode::kInvalidRequest);
  }
}

TEST(ValidateChatRequest, ToolsToolChoiceAndStop) {
  EXPECT_EQ(error_after([](Json& b) { b["tools"][0] = 1; }).param, "tools[0]");
  EXPECT_EQ(error_after([](Json& b) { b["tools"][0]["function"].erase("name"); }).param,
            "tools[0].function.name");
  EXPECT_EQ(error_after([](Json& b) { b["tools"][0]["function"]["parameters"] = "x"; }).param,
            "tools[0].function.parameters");
  EXPECT_EQ(error_after([](Json& b) { b["tool_choice"] = "sometimes"; }).param, "tool_choice");
  EXPECT_EQ(error_after([](Json& b) { b["tool_choice"] = 1; }).param, "tool_choice");
  EXPECT_EQ(error_after([](Json& b) { b["tool_choice"]["function"].erase("name"); }).param,
            "tool_choice.function.name");
  EXPECT_EQ(error_after([](Json& b) { b["stop"] = 1; }).message,
            "'stop' must be a string or an array of strings");
  EXPECT_EQ(error_after([](Json& b) { b["stop"] = Json::array({"a", 1}); }).param, "stop");
}

TEST(MakeCompletion, HasOpenAIShape) {
  Json c = make_completion("chatcmpl-1", "gpt-4o", 1700000000, "Hello", "stop", Usage{5, 2});
  EXPECT_EQ(c, Json::parse(R"({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"},
                 "logprobs": null, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})"));
}

TEST(MakeChunk, FinishReasonNullWhenEmpty) {
  Json c = make_chunk("id", "m", 7, {{"content", "Hi"}}, "");
  EXPECT_EQ(c, Json::parse(R"({"id":"id","object":"chat.completion.chunk","created":7,"model":"m",
    "choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}]})"));
  EXPECT_EQ(make_chunk("id", "m", 7, Json::object(), "length")["choices"][0]["finish_reason"],
            "length");
}

TEST(NewCompletionId, PrefixedRandomAlphanumerics) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string id = new_completion_id();
    ASSERT_EQ(id.size(), 9u + 24u);
    EXPECT_EQ(id.substr(0, 9), "chatcmpl-");
    for (char c : id.substr(9)) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(CompletionText, ReadsContentOrEmpty) {
  EXPECT_EQ(completion_text(make_completion("i", "m", 0, "text", "stop", {})), "text");
  EXPECT_EQ(completion_text(Json::parse(R"({"choices":[{"message":{"content":null}}]})")), "");
  EXPECT_EQ(completion_text(Json::parse(R"({"choices":[]})")), "");
  EXPECT_EQ(completion_text(Json::parse(R"({"choices":"x"})")), "");
  EXPECT_EQ(completion_text(Json::array()), "");
}

TEST(CompletionAssembler, MergesContentUsageAndKeepsFirstMetadata) {
  CompletionAssembler a;
  a.add_chunk(make_chunk("chatcmpl-a", "gpt", 11, {{"role", "assistant"}, {"content", ""}}, ""));
  a.add_chunk(make_chunk("chatcmpl-a", "gpt", 11, {{"content", "Hel"}}, ""));
  a.add_chunk(make_chunk("chatcmpl-b", "other", 12, {{"content", "lo"}}, ""));
  EXPECT_FALSE(a.finished());
  a.add_chunk(make_chunk("chatcmpl-a", "gpt", 11, Json::object(), "stop"));
  EXPECT_TRUE(a.finished());
  // OpenAI's include_usage chunk: empty choices, usage set.
  a.add_chunk(
      Json::parse(R"({"id":"chatcmpl-a","object":"chat.completion.chunk","created":11,"model":"gpt",
    "choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})"));
  Json expected = make_completion("chatcmpl-a", "gpt", 11, "Hello", "stop", Usage{3, 2});
  EXPECT_EQ(a.completion(), expected);
}

TEST(CompletionAssembler, MergesInterleavedToolCallsByIndex) {
  CompletionAssembler a;
  auto tool_delta = [](const char* json) { return Json{{"tool_calls", Json::parse(json)}}; };
  a.add_chunk(make_chunk("c", "m", 1, {{"role", "assistant"}, {"content", nullptr}}, ""));
  a.add_chunk(make_chunk("c", "m", 1, tool_delta(R"([{"index":0,"id":"call_a","type":"function",
    "function":{"name":"get_","arguments":""}}])"),
                         ""));
  a.add_chunk(make_chunk(
      "c", "m", 1, tool_delta(R"([{"index":0,"function":{"name":"weather","arguments":"{\"ci"}},
    {"index":1,"id":"call_b","type":"function","function":{"name":"time","arguments":"{}"}}])"),
      ""));
  a.add_chunk(make_chunk(
      "c", "m", 1, tool_delta(R"([{"index":0,"function":{"arguments":"ty\":\"Oslo\"}"}}])"), ""));
  a.add_chunk(make_chunk("c", "m", 1, Json::object(), "tool_calls"));
  Json message = a.completion()["choices"][0]["message"];
  EXPECT_TRUE(message["content"].is_null());
  EXPECT_EQ(message["tool_calls"], Json::parse(R"([
    {"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}},
    {"id":"call_b","type":"function","function":{"name":"time","arguments":"{}"}}])"));
  EXPECT_EQ(a.completion()["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_FALSE(a.completion().contains("usage"));
}

TEST(CompletionAssembler, IgnoresGarbageWithoutThrowing) {
  CompletionAssembler a;
  for (const char* text :
       {"[]", "null", "\"x\"", R"({"choices":"x"})", R"({"choices":[1,null,{"delta":5}]})",
        R"({"choices":[{"delta":{"content":5,"role":7,"tool_calls":[1,"x",null]}}]})",
        R"({"choices":[{"index":1,"delta":{"content":"other choice"}}]})",
        R"({"usage":"many","choices":[{"finish_reason":3}]})"}) {
    EXPECT_NO_THROW(a.add_chunk(Json::parse(text))) << text;
  }
  EXPECT_FALSE(a.finished());
  Json c = a.completion();
  EXPECT_EQ(c["choices"][0]["message"]["content"], "");
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
}

Json tool_completion() {
  return Json::parse(R"({
    "id": "chatcmpl-xyz", "object": "chat.completion", "created": 1717000000, "model": "gpt-4o-mini",
    "system_fingerprint": "fp_1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Let me check: ünïcödé 🌍.",
      "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Zürich\",\"days\":3}"}},
        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
      "logprobs": null, "finish_reason": "tool_calls"}],
    "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70}})");
}

TEST(CompletionToChunks, RoleFirstThenPiecesThenFinishWithUsage) {
  Json completion = make_completion("chatcmpl-1", "m", 42, "Hello world!", "stop", Usage{4, 3});
  std::vector<Json> chunks = completion_to_chunks(completion, 5);
  ASSERT_EQ(chunks.size(), 1u + 3u + 1u);
  EXPECT_EQ(chunks[0]["choices"][0]["delta"], Json::parse(R"({"role":"assistant","content":""})"));
  EXPECT_EQ(chunks[1]["choices"][0]["delta"]["content"], "Hello");
  EXPECT_EQ(chunks[2]["choices"][0]["delta"]["content"], " worl");
  EXPECT_EQ(chunks[3]["choices"][0]["delta"]["content"], "d!");
  EXPECT_EQ(chunks[4]["choices"][0]["delta"], Json::object());
  EXPECT_EQ(chunks[4]["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(chunks[4]["usage"], completion["usage"]);
  for (const Json& chunk : chunks) {
    EXPECT_EQ(chunk["id"], "chatcmpl-1");
    EXPECT_EQ(chunk["model"], "m");
    EXPECT_EQ(chunk["created"], 42);
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
  }
  for (size_t i = 0; i + 1 < chunks.size(); ++i)
    EXPECT_TRUE(chunks[i]["choices"][0]["finish_reason"].is_null());
}

TEST(CompletionToChunks, NeverSplitsUtf8Sequences) {
  const std::string text = "aé世🌍b€";
  for (size_t piece : {1u, 2u, 3u, 4u}) {
    std::string joined;
    for (const Json& chunk :
         completion_to_chunks(make_completion("i", "m", 0, text, "stop", {}), piece)) {
      const Json& delta = chunk["choices"][0]["delta"];
      if (!delta.contains("content") || !delta["content"].is_string()) continue;
      const Json& content = delta["content"];
      // Strict serialisation throws on a broken UTF-8 sequence.
      EXPECT_NO_THROW((void)content.dump()) << "piece " << piece;
      joined += content.get<std::string>();
    }
    EXPECT_EQ(joined, text);
  }
  // Piece size 1 puts each character in its own chunk: 6 characters, plus role and finish.
  EXPECT_EQ(completion_to_chunks(make_completion("i", "m", 0, text, "stop", {}), 1).size(), 8u);
}

TEST(CompletionToChunks, LongTextsGetLongerPiecesNotMorePieces) {
  std::string text;
  for (int i = 0; i < 100000; ++i) text += i % 7 == 0 ? "\xc3\xa9" : "abcdefghij";  // about 1 MB
  const auto chunks = completion_to_chunks(make_completion("i", "m", 0, text, "stop", {}), 16);
  ASSERT_LE(chunks.size(), kMaxReplayPieces + 2);  // + role and finish
  ASSERT_GE(chunks.size(), kMaxReplayPieces);
  std::string joined;
  for (size_t i = 1; i + 1 < chunks.size(); ++i) joined += chunks[i]["choices"][0]["delta"]["content"].get<std::string>();
  EXPECT_EQ(joined, text);
  // A short text keeps its 16-byte pieces.
  EXPECT_EQ(completion_to_chunks(make_completion("i", "m", 0, std::string(64, 'x'), "stop", {}), 16).size(), 6u);
}

TEST(CompletionToChunks, ToolCallsStreamLikeOpenAI) {
  std::vector<Json> chunks = completion_to_chunks(tool_completion(), 8);
  bool saw_header = false;
  for (const Json& chunk : chunks) {
    const Json& delta = chunk["choices"][0]["delta"];
    if (!delta.contains("tool_calls")) continue;
    const Json& call = delta["tool_calls"][0];
    if (call.contains("id")) {
      saw_header = true;
      EXPECT_EQ(call["type"], "function");
      EXPECT_EQ(call["function"]["arguments"], "");
    } else {
      EXPECT_FALSE(call["function"].contains("name"));
    }
  }
  EXPECT_TRUE(saw_header);
  EXPECT_EQ(chunks.back()["choices"][0]["finish_reason"], "tool_calls");
}

Json replay(const Json& completion, size_t piece) {
  CompletionAssembler a;
  for (const Json& chunk : completion_to_chunks(completion, piece)) a.add_chunk(chunk);
  EXPECT_TRUE(a.finished());
  return a.completion();
}

TEST(RoundTrip, CompletionToChunksToAssemblerIsIdentity) {
  const Json completions[] = {
      make_completion("chatcmpl-1", "m", 9, "Hello, wörld! 🌍 This is a longer answer.", "stop",
                      Usage{12, 9}),
      make_completion("chatcmpl-2", "m", 9, "", "length", Usage{1, 0}),
      tool_completion(),
  };
  for (const Json& completion : completions) {
    for (size_t piece : {1u, 3u, 16u, 0u, 1000u}) {
      EXPECT_EQ(replay(completion, piece), completion)
          << "piece " << piece << " " << completion.dump();
    }
  }
}

TEST(RoundTrip, ToolOnlyCompletionKeepsNullContent) {
  Json completion = tool_completion();
  completion["choices"][0]["message"]["content"] = nullptr;
  EXPECT_EQ(replay(completion, 4), completion);
}

TEST(CompletionToChunks, SurvivesMalformedCompletion) {
  for (const char* text : {"null", "[]", R"({"choices":[]})", R"({"choices":[{"message":"x"}]})"}) {
    std::vector<Json> chunks;
    ASSERT_NO_THROW(chunks = completion_to_chunks(Json::parse(text)));
    ASSERT_EQ(chunks.size(), 2u) << text;
    EXPECT_EQ(chunks.back()["choices"][0]["finish_reason"], "stop");
  }
}

TEST(UsageInText, ReadsTheUsageOfCompactTextAndIgnoresQuotedLookalikes) {
  Json completion = make_completion("c", "m", 0, R"(say "prompt_tokens":99 and "completion_tokens":98)", "stop", {12, 34});
  completion["choices"][0]["message"]["tool_calls"] =
      Json::parse(R"([{"id":"t","type":"function","function":{"name":"f","arguments":"{\"prompt_tokens\":7}"}}])");
  const Usage usage = usage_in_text(completion.dump());
  EXPECT_EQ(usage.prompt_tokens, 12);
  EXPECT_EQ(usage.completion_tokens, 34);
  const Usage none = usage_in_text(R"({"id":"x","choices":[]})");
  EXPECT_EQ(none.prompt_tokens, 0);
  EXPECT_EQ(none.completion_tokens, 0);
  EXPECT_EQ(usage_in_text(R"({"usage":{"prompt_tokens":"many"}})").prompt_tokens, 0);
  EXPECT_EQ(usage_in_text(R"({"usage":null,"x":{"prompt_tokens":5}})").prompt_tokens, 0);
  // Members of other objects, before or after usage, are not usage's (a provider's own extras).
  const Usage groq = usage_in_text(
      R"({"a":{"usage":{"prompt_tokens":1}},"usage":{"completion_tokens":3,"completion_tokens_details":{"prompt_tokens":9},"prompt_tokens":2},"usage_breakdown":{"models":[{"usage":{"prompt_tokens":7}}]},"x_groq":{"usage":{"prompt_tokens":8}}})");
  EXPECT_EQ(groq.prompt_tokens, 2);
  EXPECT_EQ(groq.completion_tokens, 3);
}

}  // namespace
}  // namespace isartor::api
