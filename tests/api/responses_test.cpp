#include "api/responses.h"

#include <gtest/gtest.h>

#include "api/openai.h"

namespace isartor::api {
namespace {

Result<Json> to_chat(const char* body) { return responses_request_to_chat(Json::parse(body)); }

// The refusal of `body`: (HTTP-level code, param).
std::pair<ErrorCode, std::string> refusal(const char* body) {
  auto r = to_chat(body);
  EXPECT_FALSE(r) << body;
  if (r) return {ErrorCode::kInternal, ""};
  return {r.error().code, r.error().param};
}

TEST(ResponsesRequest, InstructionsAndAStringInputBecomeSystemAndUserMessages) {
  auto chat = to_chat(R"({"model":"m","input":"Hi","instructions":"Be brief.","max_output_tokens":50,
                          "temperature":0.3,"top_p":0.9,"stream":true,"store":true,"metadata":{"a":"b"},
                          "parallel_tool_calls":false,"user":"u1","prompt_cache_key":"k","reasoning":{"effort":"low","summary":"auto"},
                          "text":{"format":{"type":"text"},"verbosity":"low"},"truncation":"disabled","include":["reasoning.encrypted_content"]})");
  ASSERT_TRUE(chat) << chat.error().message;
  EXPECT_EQ((*chat)["messages"], Json::parse(R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}])"));
  EXPECT_EQ((*chat)["max_completion_tokens"], 50);
  EXPECT_EQ((*chat)["stream"], true);
  EXPECT_EQ((*chat)["reasoning_effort"], "low");
  EXPECT_EQ((*chat)["verbosity"], "low");
  for (const char* copied : {"temperature", "top_p", "parallel_tool_calls", "user", "prompt_cache_key"}) {
    EXPECT_TRUE(chat->contains(copied)) << copied;
  }
  for (const char* gone : {"input", "instructions", "store", "metadata", "text", "reasoning", "truncation", "include",
                           "response_format"}) {
    EXPECT_FALSE(chat->contains(gone)) << gone;
  }
}

TEST(ResponsesRequest, ItemsBecomeChatTurns) {
  auto chat = to_chat(R"({"model":"m","input":[
      {"role":"user","content":[{"type":"input_text","text":"Weather?"},{"type":"input_image","image_url":"data:x","detail":"low"}]},
      {"type":"reasoning","id":"rs_1","summary":[]},
      {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking."}]},
      {"type":"function_call","call_id":"c1","name":"get","arguments":"{}"},
      {"type":"function_call","call_id":"c2","name":"get","arguments":"{\"x\":1}"},
      {"type":"function_call_output","call_id":"c1","output":"sunny"},
      {"type":"function_call_output","call_id":"c2","output":[{"type":"input_text","text":"rain"}]}]})");
  ASSERT_TRUE(chat) << chat.error().message;
  EXPECT_EQ((*chat)["messages"], Json::parse(R"([
      {"role":"user","content":[{"type":"text","text":"Weather?"},{"type":"image_url","image_url":{"url":"data:x","detail":"low"}}]},
      {"role":"assistant","content":"Checking.","tool_calls":[
        {"id":"c1","type":"function","function":{"name":"get","arguments":"{}"}},
        {"id":"c2","type":"function","function":{"name":"get","arguments":"{\"x\":1}"}}]},
      {"role":"tool","tool_call_id":"c1","content":"sunny"},
      {"role":"tool","tool_call_id":"c2","content":"rain"}])"));
}

TEST(ResponsesRequest, FunctionToolsChoicesAndFormatsTranslate) {
  auto chat = to_chat(R"({"input":"x","tools":[{"type":"function","name":"f","description":"d","parameters":{"type":"object"},"strict":true}],
                          "tool_choice":{"type":"function","name":"f"},
                          "text":{"format":{"type":"json_schema","name":"r","schema":{"type":"object"},"strict":true}}})");
  ASSERT_TRUE(chat) << chat.error().message;
  EXPECT_EQ((*chat)["tools"], Json::parse(R"([{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"},"strict":true}}])"));
  EXPECT_EQ((*chat)["tool_choice"], Json::parse(R"({"type":"function","function":{"name":"f"}})"));
  EXPECT_EQ((*chat)["response_format"], Json::parse(R"({"type":"json_schema","json_schema":{"name":"r","schema":{"type":"object"},"strict":true}})"));
  auto json_mode = to_chat(R"({"input":"x","text":{"format":{"type":"json_object"}},"tool_choice":"required"})");
  ASSERT_TRUE(json_mode);
  EXPECT_EQ((*json_mode)["response_format"], Json::parse(R"({"type":"json_object"})"));
  EXPECT_EQ((*json_mode)["tool_choice"], "required");
}

TEST(ResponsesRequest, NullMeansAbsentAndBackgroundFalseIsFine) {
  EXPECT_TRUE(to_chat(R"({"input":"x","previous_response_id":null,"background":false,"tools":null})"));
}

TEST(ResponsesRequest, RefusesNamingTheField) {
  using enum ErrorCode;
  const std::vector<std::tuple<const char*, ErrorCode, const char*>> cases{
      {R"({"model":"m"})", kInvalidRequest, "input"},
      {R"({"input":[]})", kInvalidRequest, "input"},
      {R"({"input":7})", kInvalidRequest, "input"},
      {R"({"input":"x","previous_response_id":"resp_1"})", kInvalidRequest, "previous_response_id"},
      {R"({"input":"x","conversation":"c"})", kInvalidRequest, "conversation"},
      {R"({"input":"x","unknown_field":1})", kInvalidRequest, "unknown_field"},
      {R"({"input":"x","background":true})", kUnprocessable, "background"},
      {R"({"input":"x","prompt":{"id":"p"}})", kUnprocessable, "prompt"},
      {R"({"input":"x","top_logprobs":2})", kUnprocessable, "top_logprobs"},
      {R"({"input":"x","truncation":"auto"})", kUnprocessable, "truncation"},
      {R"({"input":"x","include":["message.output_text.logprobs"]})", kUnprocessable, "include"},
      {R"({"input":"x","tools":[{"type":"file_search"}]})", kUnprocessable, "tools[0].type"},
      {R"({"input":"x","tools":[{"type":"function"}]})", kInvalidRequest, "tools[0].name"},
      {R"({"input":"x","tool_choice":{"type":"web_search_preview"}})", kUnprocessable, "tool_choice"},
      {R"({"input":"x","text":{"format":{"type":"yaml"}}})", kInvalidRequest, "text.format.type"},
      {R"({"input":"x","text":{"format":{"type":"json_schema","name":"r"}}})", kInvalidRequest, "text.format.schema"},
      {R"({"input":"x","temperature":"hot"})", kInvalidRequest, "temperature"},
      {R"({"input":"x","max_output_tokens":0})", kInvalidRequest, "max_output_tokens"},
      {R"({"input":[{"role":"tool","content":"x"}]})", kInvalidRequest, "input[0].role"},
      {R"({"input":[{"role":"user"}]})", kInvalidRequest, "input[0].content"},
      {R"({"input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]})", kUnprocessable, "input[0].content[0]"},
      {R"({"input":[{"role":"user","content":[{"type":"input_image","file_id":"f"}]}]})", kUnprocessable,
       "input[0].content[0].file_id"},
      {R"({"input":[{"role":"user","content":[{"type":"input_text"}]}]})", kInvalidRequest, "input[0].content[0].text"},
      {R"({"input":[{"type":"function_call","call_id":"c","name":"f"}]})", kInvalidRequest, "input[0].arguments"},
      {R"({"input":[{"type":"function_call_output","call_id":"c"}]})", kInvalidRequest, "input[0].output"},
      {R"({"input":[{"type":"web_search_call","id":"w"}]})", kUnprocessable, "input[0].type"},
      {R"({"input":[{"type":"item_reference","id":"msg_1"}]})", kInvalidRequest, "input[0].type"},
      {R"({"input":["x"]})", kInvalidRequest, "input[0]"},
  };
  for (const auto& [body, code, param] : cases) {
    const auto [got_code, got_param] = refusal(body);
    EXPECT_EQ(got_code, code) << body;
    EXPECT_EQ(got_param, param) << body;
  }
}

Json completion(const char* message, const char* finish_reason) {
  Json out = Json::parse(R"({"id":"chatcmpl-abc","object":"chat.completion","created":7,"model":"m",
                             "usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8,
                                      "prompt_tokens_details":{"cached_tokens":2}}})");
  out["choices"] = Json::array({{{"index", 0}, {"message", Json::parse(message)}, {"finish_reason", finish_reason}}});
  return out;
}

TEST(ChatToResponse, TextAndToolCallsBecomeOutputItems) {
  const Json echo = responses_echo(Json::parse(R"({"instructions":"Be brief.","temperature":0.5})"));
  const Json response = chat_to_response(
      completion(R"({"role":"assistant","content":"Let me look.","tool_calls":[
                       {"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]})",
                 "tool_calls"),
      echo);
  EXPECT_EQ(response["id"], "resp_abc");
  EXPECT_EQ(response["object"], "response");
  EXPECT_EQ(response["created_at"], 7);
  EXPECT_EQ(response["status"], "completed");
  EXPECT_EQ(response["instructions"], "Be brief.");
  EXPECT_EQ(response["temperature"], 0.5);
  EXPECT_EQ(response["top_p"], 1.0);
  EXPECT_EQ(response["tool_choice"], "auto");
  EXPECT_EQ(response["output"], Json::parse(R"([
      {"type":"message","id":"msg_abc","status":"completed","role":"assistant",
       "content":[{"type":"output_text","text":"Let me look.","annotations":[]}]},
      {"type":"function_call","id":"fc_abc_0","call_id":"call_1","name":"f","arguments":"{}","status":"completed"}])"));
  EXPECT_EQ(response["usage"], Json::parse(R"({"input_tokens":5,"input_tokens_details":{"cached_tokens":2},
      "output_tokens":3,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":8})"));
}

TEST(ChatToResponse, APureToolCallHasNoMessageAndACutAnswerIsIncomplete) {
  const Json calls = chat_to_response(
      completion(R"({"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]})",
                 "tool_calls"),
      responses_echo(Json::object()));
  ASSERT_EQ(calls["output"].size(), 1u);
  EXPECT_EQ(calls["output"][0]["type"], "function_call");

  const Json cut = chat_to_response(completion(R"({"role":"assistant","content":"Once upon"})", "length"), Json::object());
  EXPECT_EQ(cut["status"], "incomplete");
  EXPECT_EQ(cut["incomplete_details"], Json::parse(R"({"reason":"max_output_tokens"})"));
  const Json empty = chat_to_response(completion(R"({"role":"assistant","content":""})", "stop"), Json::object());
  ASSERT_EQ(empty["output"].size(), 1u);
  EXPECT_EQ(empty["output"][0]["content"][0]["text"], "");
}

std::vector<Json> data_of(const std::vector<SseEvent>& events) {
  std::vector<Json> out;
  for (const auto& e : events) {
    out.push_back(Json::parse(e.data));
    EXPECT_EQ(out.back()["type"], e.event);
  }
  return out;
}

std::vector<std::string> types_of(const std::vector<Json>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e["type"]);
  return out;
}

TEST(ResponsesStreamEncoder, EmitsTheEventSequenceAndAFinalResponseLikeTheWholeOne) {
  const Json chat = completion(R"({"role":"assistant","content":"Hello there, how are you doing today?","tool_calls":[
                                   {"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]})",
                               "tool_calls");
  const Json echo = responses_echo(Json::parse(R"({"instructions":"x"})"));
  ResponsesStreamEncoder encoder(echo, "m");
  std::vector<SseEvent> events;
  for (const Json& chunk : completion_to_chunks(chat, 8)) {
    for (auto& e : encoder.on_chunk(chunk)) events.push_back(std::move(e));
  }
  for (auto& e : encoder.finish()) events.push_back(std::move(e));
  const auto data = data_of(events);
  for (std::size_t i = 0; i < data.size(); ++i) EXPECT_EQ(data[i]["sequence_number"], i);
  const auto types = types_of(data);
  ASSERT_GE(types.size(), 14u);
  EXPECT_EQ(std::vector<std::string>(types.begin(), types.begin() + 4),
            (std::vector<std::string>{"response.created", "response.in_progress", "response.output_item.added",
                                      "response.content_part.added"}));
  EXPECT_EQ(std::count(types.begin(), types.end(), "response.output_text.delta"), 5);
  EXPECT_EQ(std::vector<std::string>(types.end() - 8, types.end()),
            (std::vector<std::string>{"response.output_text.done", "response.content_part.done",
                                      "response.output_item.done", "response.output_item.added",
                                      "response.function_call_arguments.delta",
                                      "response.function_call_arguments.done", "response.output_item.done",
                                      "response.completed"}));
  // The final response is the whole one, ids included, but for the time it was rendered.
  Json streamed = data.back()["response"];
  Json whole = chat_to_response(chat, echo);
  EXPECT_EQ(streamed["output"], whole["output"]);
  EXPECT_EQ(streamed["usage"], whole["usage"]);
  EXPECT_EQ(streamed["id"], whole["id"]);
  EXPECT_EQ(data[0]["response"]["status"], "in_progress");
  EXPECT_EQ(data[0]["response"]["output"], Json::array());
}

TEST(ResponsesStreamEncoder, ACutStreamEndsIncompleteAndAFailureEndsFailed) {
  ResponsesStreamEncoder cut(Json::object(), "m");
  cut.on_chunk(make_chunk("chatcmpl-x", "m", 1, Json{{"content", "Once"}}, ""));
  cut.on_chunk(make_chunk("chatcmpl-x", "m", 1, Json::object(), "length"));
  const auto end = data_of(cut.finish());
  EXPECT_EQ(end.back()["type"], "response.incomplete");
  EXPECT_EQ(end.back()["response"]["incomplete_details"]["reason"], "max_output_tokens");

  ResponsesStreamEncoder failing(Json::object(), "m");
  const auto started = failing.on_chunk(make_chunk("chatcmpl-x", "m", 1, Json{{"content", "Once"}}, ""));
  const auto failed = data_of(failing.fail(Error(ErrorCode::kUpstream, "upstream went away")));
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_EQ(failed[0]["type"], "error");
  EXPECT_EQ(failed[0]["message"], "upstream went away");
  EXPECT_EQ(failed[0]["sequence_number"], started.size());
  EXPECT_EQ(failed[1]["response"]["status"], "failed");
}

}  // namespace
}  // namespace isartor::api
