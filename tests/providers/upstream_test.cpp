#include "providers/upstream.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "fakes/canned_http_server.h"
#include "providers/openai_provider.h"
#include "support/run_coroutine.h"

namespace isartor::providers {
namespace {

using testing::CannedHttpServer;
using testing::run_coroutine;

constexpr const char* kKey = "sk-test-canned-0123456789";

std::string response(const std::string& status_line, const std::string& headers, const std::string& body) {
  return "HTTP/1.1 " + status_line + "\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n" + headers + "\r\n" + body;
}

// The call lives and dies inside the coroutine: its timer belongs to run_coroutine's io_context.
boost::asio::awaitable<Result<std::string>> open_and_read(HttpClient& http, UpstreamSettings settings) {
  auto call = co_await open_upstream(http, settings, R"({"model":"m"})", false);
  if (!call) co_return std::unexpected(call.error());
  co_return co_await (*call)->read_all();
}

Result<std::string> open(const CannedHttpServer& server, HttpClient& http) {
  UpstreamSettings settings;
  settings.provider = "openai";
  settings.url = server.url();
  settings.api_key = kKey;
  settings.headers = {std::string("Authorization: Bearer ") + kKey};
  settings.timeout = std::chrono::seconds(5);
  return run_coroutine(open_and_read(http, std::move(settings)));
}

std::string header(const Error& error, const std::string& name) {
  auto it = std::find_if(error.headers.begin(), error.headers.end(), [&](const auto& h) { return h.first == name; });
  return it == error.headers.end() ? std::string("<absent>") : it->second;
}

TEST(OpenUpstream, RateLimitKeepsStatusTypeCodeAndPacingHeaders) {
  CannedHttpServer server(response(
      "429 Too Many Requests",
      "Retry-After: 7\r\nx-ratelimit-remaining-requests: 0\r\nX-RateLimit-Reset-Tokens: 2ms\r\n"
      "anthropic-ratelimit-tokens-remaining: 10\r\nx-request-id: req_1\r\nSet-Cookie: a=b\r\n",
      R"({"error":{"message":"Rate limit reached for key sk-test-canned-0123456789","type":"requests",)"
      R"("param":null,"code":"rate_limit_exceeded"}})"));
  HttpClient http;
  auto call = open(server, http);
  ASSERT_FALSE(call);
  const Error& e = call.error();
  EXPECT_EQ(e.code, ErrorCode::kRateLimited);
  EXPECT_EQ(http_status(e), 429);
  EXPECT_EQ(e.upstream_status, 429);
  EXPECT_EQ(e.upstream_type, "requests");
  EXPECT_EQ(e.upstream_code, "rate_limit_exceeded");
  EXPECT_EQ(e.message, "Rate limit reached for key [REDACTED]");
  EXPECT_EQ(header(e, "retry-after"), "7");
  EXPECT_EQ(header(e, "x-ratelimit-remaining-requests"), "0");
  EXPECT_EQ(header(e, "x-ratelimit-reset-tokens"), "2ms");  // names lower-cased
  EXPECT_EQ(header(e, "anthropic-ratelimit-tokens-remaining"), "10");
  EXPECT_EQ(header(e, "set-cookie"), "<absent>");  // only what paces a client is passed on
  EXPECT_EQ(header(e, "x-request-id"), "<absent>");
}

TEST(OpenUpstream, ClientErrorKeepsItsStatusAndParam) {
  CannedHttpServer server(response(
      "400 Bad Request", "",
      R"({"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error",)"
      R"("param":"messages","code":"context_length_exceeded"}})"));
  HttpClient http;
  auto call = open(server, http);
  ASSERT_FALSE(call);
  EXPECT_EQ(call.error().code, ErrorCode::kUpstreamRejected);
  EXPECT_EQ(http_status(call.error()), 400);
  EXPECT_EQ(call.error().param, "messages");
  EXPECT_EQ(call.error().message, "This model's maximum context length is 8192 tokens.");
  EXPECT_TRUE(call.error().headers.empty());
}

TEST(OpenUpstream, RefusedProviderKeySaysItIsTheGatewaysKey) {
  CannedHttpServer server(response(
      "401 Unauthorized", "",
      R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}})"));
  HttpClient http;
  auto call = open(server, http);
  ASSERT_FALSE(call);
  EXPECT_EQ(http_status(call.error()), 401);
  EXPECT_EQ(call.error().upstream_type, "authentication_error");
  EXPECT_EQ(call.error().message, "upstream provider openai refused the gateway's API key (HTTP 401): invalid x-api-key");
}

TEST(OpenUpstream, ServerErrorsAndTimeoutsStayTheGatewaysOwn) {
  struct Case {
    const char* status_line;
    ErrorCode code;
    int status;
  };
  for (const Case& c : {Case{"500 Internal Server Error", ErrorCode::kUpstream, 502},
                        Case{"529 Overloaded", ErrorCode::kUpstream, 502},
                        Case{"504 Gateway Timeout", ErrorCode::kUpstreamTimeout, 504},
                        Case{"302 Found", ErrorCode::kUpstream, 502}}) {
    CannedHttpServer server(response(c.status_line, "Retry-After: 3\r\n", "<html>oops</html>"));
    HttpClient http;
    auto call = open(server, http);
    ASSERT_FALSE(call) << c.status_line;
    EXPECT_EQ(call.error().code, c.code) << c.status_line;
    EXPECT_EQ(http_status(call.error()), c.status) << c.status_line;
    EXPECT_NE(call.error().message.find("returned HTTP"), std::string::npos) << call.error().message;
    EXPECT_EQ(header(call.error(), "retry-after"), "3") << c.status_line;
  }
}

TEST(OpenUpstream, SendsTheKeyAndTheBody) {
  CannedHttpServer server(response("200 OK", "", R"({"ok":true})"));
  HttpClient http;
  auto body = open(server, http);
  ASSERT_TRUE(body) << body.error().message;
  EXPECT_EQ(*body, R"({"ok":true})");
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_NE(requests[0].find(std::string("Authorization: Bearer ") + kKey), std::string::npos);
  EXPECT_TRUE(requests[0].ends_with(R"({"model":"m"})"));
}

}  // namespace
}  // namespace isartor::providers

namespace isartor::providers {
namespace {

TEST(ClientHeaders, AProviderTakesOnlyTheFieldsOfItsOwnApiAndTheyReplaceItsOwn) {
  UpstreamSettings openai;
  openai.url = "https://api.openai.com/v1/chat/completions";
  openai.headers = {"Authorization: Bearer k", "OpenAI-Project: ours"};
  openai.client_header_prefix = "openai-";
  const ClientHeaders client{"openai-organization: org-1", "openai-project: theirs", "anthropic-beta: b"};
  const UpstreamSettings sent = with_client_headers(openai, client);
  EXPECT_EQ(sent.url, openai.url);
  EXPECT_EQ(sent.headers, (std::vector<std::string>{"Authorization: Bearer k", "openai-organization: org-1",
                                                    "openai-project: theirs"}));
  UpstreamSettings xai = openai;
  xai.client_header_prefix.clear();
  EXPECT_EQ(with_client_headers(xai, client).headers, openai.headers);
}

}  // namespace
}  // namespace isartor::providers
