#include "api/errors.h"

#include <gtest/gtest.h>

#include <string>

#include "api/sse.h"

namespace isartor::api {
namespace {

struct Mapping {
  ErrorCode code;
  int status;
  const char* openai_type;
  Json openai_code;
  const char* anthropic_type;
};

const Mapping kMappings[] = {
    {ErrorCode::kInvalidRequest, 400, "invalid_request_error", nullptr, "invalid_request_error"},
    {ErrorCode::kUnprocessable, 422, "invalid_request_error", nullptr, "invalid_request_error"},
    {ErrorCode::kUnauthorized, 401, "authentication_error", "invalid_api_key",
     "authentication_error"},
    {ErrorCode::kNotFound, 404, "not_found_error", nullptr, "not_found_error"},
    {ErrorCode::kMethodNotAllowed, 405, "invalid_request_error", "method_not_allowed",
     "invalid_request_error"},
    {ErrorCode::kPayloadTooLarge, 413, "invalid_request_error", "request_too_large",
     "request_too_large"},
    {ErrorCode::kRateLimited, 429, "rate_limit_error", "rate_limit_exceeded", "rate_limit_error"},
    {ErrorCode::kUpstreamRejected, 400, "invalid_request_error", nullptr, "invalid_request_error"},
    {ErrorCode::kUpstream, 502, "api_error", "upstream_error", "api_error"},
    {ErrorCode::kUpstreamTimeout, 504, "api_error", "timeout", "api_error"},
    {ErrorCode::kUnavailable, 503, "service_unavailable", nullptr, "overloaded_error"},
    {ErrorCode::kOverloaded, 503, "service_unavailable", "overloaded", "overloaded_error"},
    {ErrorCode::kInternal, 500, "server_error", nullptr, "api_error"},
};

TEST(RenderError, OpenAIShapeForEveryCode) {
  for (const Mapping& m : kMappings) {
    ErrorResponse r = render_error(WireFormat::kOpenAI, Error(m.code, "boom"));
    EXPECT_EQ(r.status, m.status);
    EXPECT_EQ(Json::parse(r.body), (Json{{"error",
                                          {{"message", "boom"},
                                           {"type", m.openai_type},
                                           {"param", nullptr},
                                           {"code", m.openai_code}}}}))
        << r.body;
  }
}

TEST(RenderError, AnthropicShapeForEveryCode) {
  for (const Mapping& m : kMappings) {
    ErrorResponse r = render_error(WireFormat::kAnthropic, Error(m.code, "boom", "max_tokens"));
    EXPECT_EQ(r.status, m.status);
    EXPECT_EQ(
        Json::parse(r.body),
        (Json{{"type", "error"}, {"error", {{"type", m.anthropic_type}, {"message", "boom"}}}}))
        << r.body;
  }
}

TEST(RenderError, OpenAIParamAndNativeShape) {
  Error e(ErrorCode::kInvalidRequest, "'messages' is a required property", "messages");
  EXPECT_EQ(Json::parse(render_error(WireFormat::kOpenAI, e).body)["error"]["param"], "messages");
  Json native = Json::parse(render_error(WireFormat::kNative, e).body);
  EXPECT_EQ(native, Json::parse(R"({"error": {"message": "'messages' is a required property",
                                               "type": "invalid_request_error", "code": null}})"));
}

Error provider_refusal(int status, std::string type, std::string code) {
  Error e(status == 429 ? ErrorCode::kRateLimited : ErrorCode::kUpstreamRejected, "too long", "messages");
  e.upstream_status = status;
  e.upstream_type = std::move(type);
  e.upstream_code = std::move(code);
  return e;
}

TEST(RenderError, ProviderRefusalKeepsItsStatusTypeCodeAndParam) {
  const Error e = provider_refusal(400, "invalid_request_error", "context_length_exceeded");
  ErrorResponse r = render_error(WireFormat::kOpenAI, e);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Json::parse(r.body), (Json{{"error",
                                        {{"message", "too long"},
                                         {"type", "invalid_request_error"},
                                         {"param", "messages"},
                                         {"code", "context_length_exceeded"}}}}));
  EXPECT_EQ(render_error(WireFormat::kOpenAI, provider_refusal(404, "", "")).status, 404);
  EXPECT_EQ(Json::parse(render_error(WireFormat::kOpenAI, provider_refusal(403, "", "")).body)["error"]["type"],
            "permission_error");
  // OpenAI's 429 types ("requests", "tokens") pass to OpenAI clients as they are.
  EXPECT_EQ(Json::parse(render_error(WireFormat::kOpenAI, provider_refusal(429, "tokens", "rate_limit_exceeded")).body)
                ["error"]["type"],
            "tokens");
}

TEST(RenderError, AnthropicClientsSeeTheTypeTheStatusNames) {
  struct Case {
    int status;
    const char* upstream_type;
    const char* expected;
  };
  const Case cases[] = {
      {429, "requests", "rate_limit_error"},            // OpenAI's type is not Anthropic's
      {429, "rate_limit_error", "rate_limit_error"},
      {403, "permission_error", "permission_error"},
      {401, "invalid_request_error", "authentication_error"},  // OpenAI's name for a 401
      {409, "api_error", "invalid_request_error"},             // a 4xx is never a server error
      {404, "", "not_found_error"},
      {413, "", "request_too_large"},
      {409, "", "invalid_request_error"},
  };
  for (const Case& c : cases) {
    ErrorResponse r = render_error(WireFormat::kAnthropic, provider_refusal(c.status, c.upstream_type, ""));
    EXPECT_EQ(r.status, c.status);
    EXPECT_EQ(Json::parse(r.body)["error"]["type"], c.expected) << c.status << " " << c.upstream_type;
  }
}

TEST(RenderError, RejectionWithoutAClientErrorStatusIsA400) {
  Error e(ErrorCode::kUpstreamRejected, "odd");
  e.upstream_status = 302;
  EXPECT_EQ(render_error(WireFormat::kOpenAI, e).status, 400);
}

TEST(RenderError, RedactsKeysInMessage) {
  Error e(ErrorCode::kUpstream, "Incorrect API key provided: sk-proj-abcdefghijklmnop1234.");
  for (WireFormat format : {WireFormat::kOpenAI, WireFormat::kAnthropic, WireFormat::kNative}) {
    std::string body = render_error(format, e).body;
    EXPECT_EQ(body.find("abcdefghijklmnop"), std::string::npos) << body;
    EXPECT_NE(body.find("Incorrect API key provided: [REDACTED]."), std::string::npos) << body;
    EXPECT_EQ(render_stream_error(format, e).find("abcdefghijklmnop"), std::string::npos);
  }
}

TEST(RenderError, InvalidUtf8InMessageDoesNotThrow) {
  Error e(ErrorCode::kUpstream, std::string("bad \xff\xfe bytes"));
  ErrorResponse r;
  ASSERT_NO_THROW(r = render_error(WireFormat::kOpenAI, e));
  EXPECT_TRUE(Json::accept(r.body));
}

TEST(RenderStreamError, OpenAIIsADataLineAnthropicAnErrorEvent) {
  Error e(ErrorCode::kUpstreamTimeout, "upstream timed out");
  std::string openai = render_stream_error(WireFormat::kOpenAI, e);
  EXPECT_EQ(openai, "data: " + render_error(WireFormat::kOpenAI, e).body + "\n\n");

  std::string anthropic = render_stream_error(WireFormat::kAnthropic, e);
  SseParser parser;
  std::vector<SseEvent> events = parser.feed(anthropic);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, "error");
  EXPECT_EQ(
      Json::parse(events[0].data),
      Json::parse(
          R"({"type": "error", "error": {"type": "api_error", "message": "upstream timed out"}})"));
}

TEST(Redact, ApiKeyPatterns) {
  struct Case {
    const char* in;
    const char* out;
  };
  const Case cases[] = {
      {"key sk-abcdefgh1234 rejected", "key [REDACTED] rejected"},
      {"sk-proj-Ab_12-cdEFghIJ", "[REDACTED]"},
      {"x=sk-ant-api03-AbCdEfGh_IjKl-MnOp;", "x=[REDACTED];"},
      {"xai-ABCDEFGHIJKLMNOP and more", "[REDACTED] and more"},
      {"Authorization: Bearer eyJhbGciOi.eyJzdWIi.SflKxw-_+/= next",
       "Authorization: Bearer [REDACTED] next"},
      {"authorization: bearer abc", "authorization: bearer [REDACTED]"},
      {"x-api-key: abc123", "x-api-key: [REDACTED]"},
      {"{\"api-key\": \"azure-secret\"}", "{\"api-key\": \"[REDACTED]\"}"},
      {"url?api_key=s3cr3t&x=1", "url?api_key=[REDACTED]&x=1"},
      {"two: sk-11111111 sk-22222222", "two: [REDACTED] [REDACTED]"},
  };
  for (const Case& c : cases) EXPECT_EQ(redact(c.in), c.out) << c.in;
}

TEST(Redact, LeavesOrdinaryTextAlone) {
  for (const char* text : {"task-12345678 finished", "sk-short", "risk-assessment-document-v2",
                           "invalid api_key provided", "Bearer", "missing x-api-key header",
                           "the xai-team", "disk-0123456789"}) {
    EXPECT_EQ(redact(text), text);
  }
}

TEST(Redact, LiteralSecrets) {
  EXPECT_EQ(redact("token hunter2 and hunter2!", {"hunter2"}), "token [REDACTED] and [REDACTED]!");
  EXPECT_EQ(redact("aaaa", {"aa"}), "[REDACTED][REDACTED]");
  EXPECT_EQ(redact("nothing here", {"", "absent"}), "nothing here");
  // A secret that also contains a pattern is removed whole, not in part.
  EXPECT_EQ(redact("k=mykey-sk-abcdefghij-tail", {"mykey-sk-abcdefghij-tail"}), "k=[REDACTED]");
}

}  // namespace
}  // namespace isartor::api
