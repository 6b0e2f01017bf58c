#include "api/completions.h"

#include <gtest/gtest.h>

namespace isartor::api {
namespace {

std::string param_of(const char* body) {
  auto r = completions_request_to_chat(Json::parse(body));
  EXPECT_FALSE(r) << body;
  return r ? std::string() : r.error().param;
}

TEST(CompletionsRequest, ThePromptBecomesOneUserMessage) {
  auto chat = completions_request_to_chat(
      Json::parse(R"({"model":"m","prompt":"Say hi","temperature":0.2,"stop":["\n"],"stream":true,"n":1})"));
  ASSERT_TRUE(chat);
  EXPECT_EQ((*chat)["messages"], Json::parse(R"([{"role":"user","content":"Say hi"}])"));
  EXPECT_EQ((*chat)["max_tokens"], kLegacyDefaultMaxTokens);
  EXPECT_EQ((*chat)["temperature"], 0.2);
  EXPECT_EQ((*chat)["stop"], Json::parse(R"(["\n"])"));
  EXPECT_EQ((*chat)["stream"], true);
  for (const char* gone : {"prompt", "n"}) EXPECT_FALSE(chat->contains(gone)) << gone;

  auto array = completions_request_to_chat(Json::parse(R"({"model":"m","prompt":["one"],"max_tokens":99})"));
  ASSERT_TRUE(array);
  EXPECT_EQ((*array)["messages"][0]["content"], "one");
  EXPECT_EQ((*array)["max_tokens"], 99);
}

TEST(CompletionsRequest, RefusesWhatAChatModelCannotDoNamingTheField) {
  EXPECT_EQ(param_of(R"({"model":"m"})"), "prompt");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":["a","b"]})"), "prompt");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":[1,2,3]})"), "prompt");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","echo":true})"), "echo");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","suffix":"y"})"), "suffix");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","logprobs":2})"), "logprobs");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","best_of":3})"), "best_of");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","n":2})"), "n");
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","n":"1"})"), "n");
  // echo: false is the default, not a request for echo.
  EXPECT_TRUE(completions_request_to_chat(Json::parse(R"({"model":"m","prompt":"x","echo":false})")));
  // Found by fuzz/completions_fuzz.cpp: an echo of another type threw nlohmann's type_error (a 500).
  EXPECT_EQ(param_of(R"({"model":"m","prompt":"x","echo":"yes"})"), "echo");
}

TEST(CompletionsRequest, NullFieldsAreAbsent) {
  auto chat = completions_request_to_chat(
      Json::parse(R"({"model":"m","prompt":"x","echo":null,"suffix":null,"logprobs":null,"best_of":null,"n":null})"));
  ASSERT_TRUE(chat);
  for (const char* key : {"echo", "suffix", "logprobs", "best_of", "n"}) EXPECT_FALSE(chat->contains(key)) << key;
}

TEST(TextCompletion, TheChatAnswerIsRenderedAsATextCompletion) {
  const Json chat = Json::parse(R"({"id":"chatcmpl-abc","object":"chat.completion","created":7,"model":"m",
    "choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"length"}],
    "usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}})");
  const Json text = chat_to_text_completion(chat);
  EXPECT_EQ(text["id"], "cmpl-abc");
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["created"], 7);
  EXPECT_EQ(text["model"], "m");
  EXPECT_EQ(text["choices"], Json::parse(R"([{"text":"Hello","index":0,"logprobs":null,"finish_reason":"length"}])"));
  EXPECT_EQ(text["usage"], chat["usage"]);

  // A tool call or refusal has no text: the choice is empty, not missing.
  const Json no_text = chat_to_text_completion(Json::parse(
      R"({"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":null},"finish_reason":"stop"}]})"));
  EXPECT_EQ(no_text["choices"][0]["text"], "");
}

// Found by fuzz/openai_chat_fuzz.cpp: a non-object (or null members) threw nlohmann's type_error.
TEST(TextCompletion, AnythingButACompletionGivesAnEmptyOne) {
  for (const char* text : {"2", R"("s")", "[1]", "null", R"({"id":null,"created":null,"model":null,"choices":[{"index":null}]})"}) {
    const Json completion = chat_to_text_completion(Json::parse(text));
    EXPECT_EQ(completion["object"], "text_completion") << text;
    EXPECT_EQ(completion["created"], 0) << text;
    EXPECT_EQ(completion["model"], "") << text;
    EXPECT_EQ(chat_chunk_to_text_completion(Json::parse(text))["object"], "text_completion") << text;
  }
}

TEST(TextCompletion, StreamChunksCarryTheDeltaAsText) {
  const Json chunk = chat_chunk_to_text_completion(Json::parse(R"({"id":"chatcmpl-1","object":"chat.completion.chunk",
    "created":1,"model":"m","choices":[{"index":0,"delta":{"content":"He"},"finish_reason":null}]})"));
  EXPECT_EQ(chunk["object"], "text_completion");
  EXPECT_EQ(chunk["choices"][0]["text"], "He");
  EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());

  const Json role_only = chat_chunk_to_text_completion(
      Json::parse(R"({"id":"c","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]})"));
  EXPECT_EQ(role_only["choices"][0]["text"], "");

  const Json usage = chat_chunk_to_text_completion(
      Json::parse(R"({"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})"));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 3);
}

}  // namespace
}  // namespace isartor::api
