#include "pipeline/semantic_cache_layer.h"

#include <gtest/gtest.h>


#include "api/openai.h"
#include "support/run_coroutine.h"
#include "fakes/fake_embedder.h"

namespace isartor::pipeline {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

using testing::run_coroutine;

ChatRequest request(const std::string& text, const std::string& system = "", api::Json extra = api::Json::object()) {
  ChatRequest r;
  r.body = {{"model", "m"}, {"messages", api::Json::array()}};
  if (!system.empty()) r.body["messages"].push_back({{"role", "system"}, {"content", system}});
  r.body["messages"].push_back({{"role", "user"}, {"content", text}});
  for (auto& [k, v] : extra.items()) r.body[k] = v;
  return r;
}

api::Json completion(const std::string& text) { return api::make_completion("id", "m", 0, text, "stop", {1, 1}); }

class SemanticCacheLayerTest : public ::testing::Test {
 protected:
  void make(SemanticCacheOptions options = {}) {
    options.threshold = 0.9;
    layer_ = std::make_unique<SemanticCacheLayer>(embedder_, options, "fake", [this] { return now_; });
  }

  // Looks the request up without storing anything.
  std::optional<Answer> lookup(ChatRequest& r) {
    auto result = run_coroutine(layer_->answer(r));
    EXPECT_TRUE(result.has_value());
    return std::move(*result);
  }

  // Looks the request up and, on a miss, stores `answer` for it (as the pipeline would).
  std::optional<Answer> ask(ChatRequest r, const std::string& answer = "A") {
    auto result = lookup(r);
    if (!result) layer_->store(r, completion(answer));
    return result;
  }

  std::shared_ptr<fakes::FakeEmbedder> embedder_ = std::make_shared<fakes::FakeEmbedder>();
  std::chrono::steady_clock::time_point now_{};
  std::unique_ptr<SemanticCacheLayer> layer_;
};

TEST_F(SemanticCacheLayerTest, SameWordsInAnotherOrderHit) {
  make();
  EXPECT_FALSE(ask(request("capital of france what is"), "Paris"));
  auto hit = ask(request("what is capital of france"));
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->layer, LayerId::kL1b);
  ASSERT_TRUE(hit->similarity);
  EXPECT_GE(*hit->similarity, 0.9);
  EXPECT_EQ(api::completion_text(*hit->completion), "Paris");
}

TEST_F(SemanticCacheLayerTest, DissimilarTextMisses) {
  make();
  ask(request("what is the capital of france"));
  EXPECT_FALSE(ask(request("write a poem about the sea")));
}

TEST_F(SemanticCacheLayerTest, OtherPartitionMisses) {
  make();
  ask(request("what is the capital of france", "be brief"));
  EXPECT_FALSE(ask(request("what is the capital of france", "answer in french")));
  EXPECT_FALSE(ask(request("what is the capital of france", "be brief", {{"temperature", 0.2}})));
  EXPECT_TRUE(ask(request("capital of france what is the", "be brief")));
}

TEST_F(SemanticCacheLayerTest, GuardRejectsDifferentNumbers) {
  make();
  ask(request("what is 15 percent of 80"));
  EXPECT_FALSE(ask(request("what is 15 percent of 90 80")));
}

TEST_F(SemanticCacheLayerTest, ToolsAndMultiTurnAreNotEligible) {
  make();
  auto with_tools = request("weather in paris", "", {{"tools", {{{"type", "function"}}}}});
  EXPECT_FALSE(semantic_key(with_tools, true));
  ChatRequest multi = request("and in rome");
  multi.body["messages"].insert(multi.body["messages"].begin(),
                                {{{"role", "user"}, {"content", "hi"}}, {{"role", "assistant"}, {"content", "hello"}}});
  EXPECT_FALSE(semantic_key(multi, true));
  EXPECT_TRUE(semantic_key(multi, false));
  EXPECT_TRUE(semantic_key(request("plain"), true));
}

TEST_F(SemanticCacheLayerTest, EntriesExpireAfterTtl) {
  make({.ttl = 10s});
  ask(request("what is the capital of france"));
  now_ += 9s;
  EXPECT_TRUE(ask(request("capital of france what is the")));
  now_ += 2s;
  EXPECT_FALSE(ask(request("capital of france what is the")));
}

TEST_F(SemanticCacheLayerTest, RequestPolicyTtlPartitionAndNoCache) {
  make({.ttl = 100s});
  ChatRequest short_lived = request("what is the capital of france");
  short_lived.cache.ttl = 5s;
  ask(short_lived);
  now_ += 4s;
  ChatRequest paraphrase = request("capital of france what is the");
  EXPECT_TRUE(lookup(paraphrase));
  now_ += 2s;
  EXPECT_FALSE(ask(request("capital of france what is the")));  // its own 5 s, not the layer's 100 s

  ChatRequest scoped = request("alpha bravo charlie");
  scoped.cache.partition = "team-a";
  ask(scoped);
  EXPECT_FALSE(ask(request("charlie bravo alpha")));
  ChatRequest same_team = request("charlie bravo alpha");
  same_team.cache.partition = "team-a";
  EXPECT_TRUE(lookup(same_team));

  ChatRequest refresh = request("charlie bravo alpha");
  refresh.cache.partition = "team-a";
  refresh.cache.lookup = false;
  EXPECT_FALSE(lookup(refresh));
  ASSERT_TRUE(refresh.semantic);  // embedded all the same, for the store that follows
  EXPECT_FALSE(refresh.semantic->embedding.empty());
}

TEST_F(SemanticCacheLayerTest, LeastRecentlyUsedIsEvictedAtCapacity) {
  make({.capacity = 2});
  ask(request("alpha bravo charlie"));
  ask(request("delta echo foxtrot"));
  EXPECT_TRUE(ask(request("charlie bravo alpha")));  // touches the first entry
  ask(request("golf hotel india"));                  // evicts "delta echo foxtrot"
  EXPECT_EQ(layer_->size(), 2u);
  auto evicted = request("foxtrot echo delta");
  EXPECT_FALSE(lookup(evicted));
  EXPECT_TRUE(ask(request("alpha charlie bravo")));
  EXPECT_TRUE(ask(request("india hotel golf")));
}

TEST_F(SemanticCacheLayerTest, EmbedderFailurePassesOn) {
  make();
  embedder_->fail = true;
  auto r = request("what is the capital of france");
  auto result = run_coroutine(layer_->answer(r));
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(*result);
  EXPECT_FALSE(r.semantic);
}

}  // namespace
}  // namespace isartor::pipeline
