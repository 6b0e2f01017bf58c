#include "api/native.h"

#include <gtest/gtest.h>

namespace isartor::api {
namespace {

TEST(NativeRequestToChat, ThePromptBecomesOneUserMessage) {
  auto chat = native_request_to_chat(Json::parse(R"({"prompt": "hi", "model": "m"})"));
  ASSERT_TRUE(chat);
  EXPECT_EQ(*chat, Json::parse(R"({"messages": [{"role": "user", "content": "hi"}], "model": "m"})"));
  auto no_model = native_request_to_chat(Json::parse(R"({"prompt": "hi"})"));
  ASSERT_TRUE(no_model);
  EXPECT_FALSE(no_model->contains("model"));
}

TEST(NativeRequestToChat, AMissingOrIllTypedFieldIsNamed) {
  for (const char* body : {R"({})", R"({"prompt": null})", R"({"prompt": 1})", R"({"prompt": "x", "model": 2})"}) {
    auto chat = native_request_to_chat(Json::parse(body));
    ASSERT_FALSE(chat) << body;
    EXPECT_EQ(chat.error().code, ErrorCode::kInvalidRequest) << body;
    EXPECT_EQ(chat.error().param, Json::parse(body).contains("model") ? "model" : "prompt") << body;
  }
}

TEST(ChatToNative, TheTextLayerAndModel) {
  const Json completion =
      Json::parse(R"({"model": "up", "choices": [{"message": {"role": "assistant", "content": "hello"}}]})");
  EXPECT_EQ(chat_to_native(completion, "l1a", "cfg"),
            Json::parse(R"({"layer": "l1a", "message": "hello", "model": "up"})"));
  EXPECT_EQ(chat_to_native(Json::object(), "l3", "cfg"),
            Json::parse(R"({"layer": "l3", "message": "", "model": "cfg"})"));
}

}  // namespace
}  // namespace isartor::api
