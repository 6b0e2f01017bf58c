// The routes besides chat, in process: /v1/embeddings (local model, provider, exact cache) and
// the count_tokens estimate.
#include <gtest/gtest.h>

#include "app/count_tokens_route.h"
#include "app/embeddings_route.h"
#include "cache/memory_backend.h"
#include "fakes/fake_embedder.h"
#include "fakes/fake_provider_client.h"
#include "support/run_coroutine.h"

namespace isartor::app {
namespace {

using testing::run_coroutine;

class EmbeddingsRouteTest : public ::testing::Test {
 protected:
  fakes::FakeEmbedder embedder_{16};
  std::unique_ptr<fakes::FakeProviderClient> owned_ = std::make_unique<fakes::FakeProviderClient>();
  fakes::FakeProviderClient& provider_ = *owned_;
  std::shared_ptr<providers::UpstreamChain> upstream_ = fakes::chain_of(std::move(owned_));
  cache::MemoryBackend cache_{100, std::chrono::seconds(0)};
  EmbeddingsRoute route_{&embedder_, "sentence-transformers/all-MiniLM-L6-v2", upstream_.get(), &cache_, {}};

  Result<RouteAnswer> ask(api::Json body, pipeline::CachePolicy policy = {}) {
    return run_coroutine(answer_embeddings(route_, std::move(body), policy));
  }
  static std::string header(const RouteAnswer& answer, std::string_view name) {
    for (const auto& [n, v] : answer.headers) {
      if (n == name) return v;
    }
    return "";
  }
};

TEST(NamesLocalModel, FullNameOrLastComponentIgnoringCase) {
  EXPECT_TRUE(names_local_model("sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"));
  EXPECT_TRUE(names_local_model("all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2"));
  EXPECT_TRUE(names_local_model("all-MiniLM-L6-v2", "/models/all-MiniLM-L6-v2.gguf"));
  EXPECT_FALSE(names_local_model("text-embedding-3-small", "sentence-transformers/all-MiniLM-L6-v2"));
  EXPECT_FALSE(names_local_model("", "sentence-transformers/all-MiniLM-L6-v2"));
  EXPECT_FALSE(names_local_model("transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"));
}

TEST_F(EmbeddingsRouteTest, TheLocalModelAnswersAndTheAnswerIsCached) {
  api::Json body{{"model", "all-MiniLM-L6-v2"}, {"input", {"red apple", "green pear tree"}}};
  auto first = ask(body);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(header(*first, "X-Isartor-Cache"), "miss");
  EXPECT_EQ(header(*first, "X-Isartor-Deflected"), "true");
  auto json = api::Json::parse(first->body);
  ASSERT_EQ(json["data"].size(), 2u);
  EXPECT_EQ(json["data"][1]["embedding"].size(), 16u);
  EXPECT_EQ(json["data"][0]["embedding"], api::Json(embedder_.embed_one("red apple")));
  EXPECT_EQ(json["usage"]["prompt_tokens"], 5);  // the fake counts words
  EXPECT_EQ(provider_.calls.load(), 0);
  auto second = ask(body);
  ASSERT_TRUE(second);
  EXPECT_EQ(header(*second, "X-Isartor-Cache"), "hit");
  EXPECT_EQ(second->body, first->body);
}

TEST_F(EmbeddingsRouteTest, OtherModelsGoToTheProviderAndPoliciesApply) {
  api::Json body{{"model", "text-embedding-3-small"}, {"input", "hi"}};
  pipeline::CachePolicy no_store;
  no_store.store = false;
  ASSERT_TRUE(ask(body, no_store));
  auto answer = ask(body);
  ASSERT_TRUE(answer);
  EXPECT_EQ(provider_.calls.load(), 2);  // nothing was kept the first time
  EXPECT_EQ(header(*answer, "X-Isartor-Deflected"), "false");
  pipeline::CachePolicy other;
  other.partition = "team-b";
  ASSERT_TRUE(ask(body, other));
  EXPECT_EQ(provider_.calls.load(), 3);  // another partition shares nothing
  ASSERT_TRUE(ask(body));
  EXPECT_EQ(provider_.calls.load(), 3);
}

TEST_F(EmbeddingsRouteTest, AProviderAnswerWithoutDataIsAnUpstreamError) {
  provider_.native_answer = api::Json{{"object", "list"}};
  auto answer = ask({{"model", "text-embedding-3-small"}, {"input", "hi"}});
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code, ErrorCode::kUpstream);
  EXPECT_EQ(cache_.size(), 0u);
}

TEST(CountTokensRoute, AskTheProviderWhenItCountsWithTheClientsBetaHeader) {
  auto owned = std::make_unique<fakes::FakeProviderClient>();
  fakes::FakeProviderClient& provider = *owned;
  auto upstream = fakes::chain_of(std::move(owned));
  CountTokensRoute route{upstream.get(), true, nullptr, "", "claude-default"};
  api::Json body{{"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  auto answer = run_coroutine(answer_count_tokens(route, body, {"anthropic-beta: b1"}));
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->body, R"({"input_tokens":42})");
  ASSERT_EQ(provider.native_requests.size(), 1u);
  EXPECT_EQ(provider.native_requests[0].endpoint, providers::NativeEndpoint::kCountTokens);
  EXPECT_EQ(provider.native_requests[0].body["model"], "claude-default");
  EXPECT_EQ(provider.native_requests[0].headers, std::vector<std::string>{"anthropic-beta: b1"});
  route.provider_counts = false;
  auto estimate = run_coroutine(answer_count_tokens(route, body, {}));
  ASSERT_TRUE(estimate);
  EXPECT_EQ(provider.native_requests.size(), 1u);
  EXPECT_EQ(estimate->headers, (http::Headers{{"X-Isartor-Token-Count", "estimate"},
                                              {"X-Isartor-Tokenizer", "utf-8 bytes / 4"}}));
}

TEST_F(EmbeddingsRouteTest, RefusalsAreValues) {
  auto ids = ask({{"model", "all-MiniLM-L6-v2"}, {"input", {1, 2, 3}}});
  ASSERT_FALSE(ids);
  EXPECT_EQ(ids.error().param, "input");
  auto dims = ask({{"model", "all-MiniLM-L6-v2"}, {"input", "x"}, {"dimensions", 8}});
  ASSERT_FALSE(dims);
  EXPECT_EQ(dims.error().param, "dimensions");
  route_.embedder = nullptr;
  auto unloaded = ask({{"model", "all-MiniLM-L6-v2"}, {"input", "x"}});
  ASSERT_FALSE(unloaded);
  EXPECT_EQ(unloaded.error().code, ErrorCode::kUnavailable);
  provider_.fail_with = Error(ErrorCode::kRateLimited, "slow down");
  auto limited = ask({{"model", "text-embedding-3-small"}, {"input", "x"}});
  ASSERT_FALSE(limited);
  EXPECT_EQ(limited.error().code, ErrorCode::kRateLimited);
  EXPECT_EQ(cache_.size(), 0u);
}

TEST(CountTokensEstimate, CountsSystemMessagesToolsAndToolCalls) {
  fakes::FakeEmbedder words;
  auto count = [&](const api::Json& body) { return estimate_input_tokens(body, &words).value_or(-1); };
  api::Json base{{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "one two three"}}}}};
  EXPECT_EQ(count(base), 3 + 3);
  api::Json more = base;
  more["system"] = "four five";
  EXPECT_EQ(count(more), 3 + 3 + 3 + 2);  // the system prompt is a message of its own
  more["tools"] = {{{"name", "get_weather"}, {"input_schema", {{"type", "object"}}}}};
  EXPECT_GT(count(more), 3 + 3 + 3 + 2);
  EXPECT_EQ(estimate_input_tokens(base, nullptr).value_or(-1), 3 + (13 + 3) / 4);  // bytes / 4 without a tokenizer
  auto bad = estimate_input_tokens({{"model", "m"}, {"messages", api::Json::array()}}, &words);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().param, "messages");
}

}  // namespace
}  // namespace isartor::app
