#include "pipeline/pipeline.h"

#include <gtest/gtest.h>


#include "cache/cache_key.h"
#include "cache/memory_backend.h"
#include "support/run_coroutine.h"
#include "fakes/fake_provider_client.h"
#include "pipeline/cloud_layer.h"
#include "pipeline/exact_cache_layer.h"

namespace isartor::pipeline {
namespace {

namespace asio = boost::asio;

using testing::run_coroutine;

// Writes down what the pipeline reports, as "l1a passed" / "l3 usage 3+2".
class RecordingObserver final : public Observer {
 public:
  void on_layer(LayerId layer, LayerOutcome outcome, std::chrono::nanoseconds took, const Error* error) override {
    EXPECT_GE(took.count(), 0);
    EXPECT_EQ(error != nullptr, outcome == LayerOutcome::kFailed);
    events.push_back(std::string(to_string(layer)) + " " + std::string(to_string(outcome)));
  }
  void on_usage(LayerId layer, const api::Usage& usage) override {
    events.push_back(std::string(to_string(layer)) + " usage " + std::to_string(usage.prompt_tokens) + "+" +
                     std::to_string(usage.completion_tokens));
  }
  std::vector<std::string> take() { return std::exchange(events, {}); }
  std::vector<std::string> events;
};

class PipelineTest : public ::testing::Test {
 protected:
  PipelineTest() {
    auto provider = std::make_unique<fakes::FakeProviderClient>();
    provider_ = provider.get();
    std::vector<std::unique_ptr<Layer>> layers;
    auto backend = std::make_unique<cache::MemoryBackend>(100, std::chrono::seconds(60));
    backend_ = backend.get();
    layers.push_back(std::make_unique<ExactCacheLayer>(std::move(backend), renderings_));
    layers.push_back(std::make_unique<CloudLayer>(fakes::chain_of(std::move(provider))));
    pipeline_ = std::make_unique<Pipeline>(std::move(layers), observer_);
  }

  static ChatRequest request(const std::string& text, bool stream = false) {
    ChatRequest r;
    r.body = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", text}}}}};
    r.stream = stream;
    return r;
  }

  // Drains a streamed answer; returns the concatenated content, or the error message.
  static std::string drain(providers::ChunkStream& stream) {
    return run_coroutine([&]() -> asio::awaitable<std::string> {
      std::string text;
      for (;;) {
        auto chunk = co_await stream.next();
        if (!chunk) co_return "error: " + chunk.error().message;
        if (!*chunk) co_return text;
        const auto& delta = (**chunk)["choices"][0]["delta"];
        if (delta.contains("content") && delta["content"].is_string()) text += delta["content"].get<std::string>();
      }
    }());
  }

  Answer handle(ChatRequest r) {
    auto answer = run_coroutine(pipeline_->handle(std::move(r)));
    EXPECT_TRUE(answer.has_value());
    return std::move(*answer);
  }

  fakes::FakeProviderClient* provider_;
  cache::MemoryBackend* backend_;
  std::shared_ptr<cache::MemoryBackend> renderings_ = std::make_shared<cache::MemoryBackend>(100, std::chrono::seconds(60));
  std::shared_ptr<RecordingObserver> observer_ = std::make_shared<RecordingObserver>();
  std::unique_ptr<Pipeline> pipeline_;
};

using Events = std::vector<std::string>;

TEST_F(PipelineTest, TheObserverHearsEveryLayerTriedAndEveryAnswersUsage) {
  handle(request("seen"));
  EXPECT_EQ(observer_->take(), (Events{"l1a passed", "l3 answered", "l3 usage 3+2"}));
  handle(request("seen"));  // the cached text's usage, read without parsing it
  EXPECT_EQ(observer_->take(), (Events{"l1a answered", "l1a usage 3+2"}));
  ChatRequest no_cache = request("seen");
  no_cache.cache.lookup = false;
  handle(std::move(no_cache));
  EXPECT_EQ(observer_->take(), (Events{"l1a bypassed", "l3 answered", "l3 usage 3+2"}));

  auto streamed = handle(request("seen stream", true));
  EXPECT_EQ(observer_->take(), (Events{"l1a passed", "l3 answered"}));
  drain(*streamed.stream);  // usage once the stream ended
  EXPECT_EQ(observer_->take(), (Events{"l3 usage 3+2"}));

  provider_->cut_stream = true;
  auto cut = handle(request("seen cut", true));
  drain(*cut.stream);
  EXPECT_EQ(observer_->take(), (Events{"l1a passed", "l3 answered"}));
  // A cut stream's usage never came: estimated when it goes, as UTF-8 bytes / 4 of the messages
  // (`[{"content":"seen cut","role":"user"}]`, 38 bytes) and of what was streamed (4 bytes).
  cut.stream.reset();
  EXPECT_EQ(observer_->take(), (Events{"l3 usage 10+1"}));
  provider_->cut_stream = false;

  provider_->fail_with = Error(ErrorCode::kUpstream, "boom");
  (void)run_coroutine(pipeline_->handle(request("seen fail")));
  EXPECT_EQ(observer_->take(), (Events{"l1a passed", "l3 failed"}));
}

TEST_F(PipelineTest, SecondIdenticalRequestIsAnsweredByExactCache) {
  auto first = handle(request("hello"));
  EXPECT_EQ(first.layer, LayerId::kL3);
  EXPECT_FALSE(first.deflected());
  auto second = handle(request("hello"));
  EXPECT_EQ(second.layer, LayerId::kL1a);
  EXPECT_TRUE(second.deflected());
  // A hit carries the stored text, parsed only on demand.
  EXPECT_FALSE(second.completion);
  ASSERT_FALSE(second.completion_json.empty());
  ASSERT_TRUE(second.parse_completion());
  EXPECT_EQ(api::completion_text(*second.completion), "Echo: hello");
  EXPECT_EQ(second.completion->dump(), second.completion_json);
  EXPECT_EQ(provider_->calls.load(), 1);
}

TEST_F(PipelineTest, CachePolicyDecidesLookupStoreAndPartition) {
  auto with = [](const std::string& text, bool lookup, bool store, std::string partition = {}) {
    ChatRequest r = request(text);
    r.cache.lookup = lookup;
    r.cache.store = store;
    r.cache.partition = std::move(partition);
    return r;
  };
  EXPECT_EQ(handle(with("no-store", true, false)).layer, LayerId::kL3);
  EXPECT_EQ(handle(request("no-store")).layer, LayerId::kL3);  // nothing was kept
  EXPECT_EQ(handle(request("no-store")).layer, LayerId::kL1a);

  EXPECT_EQ(handle(with("no-store", false, true)).layer, LayerId::kL3);  // no-cache: asked again...
  EXPECT_EQ(provider_->calls.load(), 3);
  EXPECT_EQ(handle(request("no-store")).layer, LayerId::kL1a);  // ...and the fresh answer stored

  EXPECT_EQ(handle(with("team", true, true, "a")).layer, LayerId::kL3);
  EXPECT_EQ(handle(with("team", true, true, "a")).layer, LayerId::kL1a);
  EXPECT_EQ(handle(with("team", true, true, "b")).layer, LayerId::kL3);
  EXPECT_EQ(handle(request("team")).layer, LayerId::kL3);
}

TEST(AnswerTest, ParseCompletionRejectsTextThatIsNotAnObject) {
  Answer answer;
  EXPECT_FALSE(answer.parse_completion());  // nothing at all
  answer.completion_json = "[1, 2]";
  EXPECT_FALSE(answer.parse_completion());
  answer.completion_json = R"({"id": "x")";
  EXPECT_FALSE(answer.parse_completion());
  answer.completion_json = R"({"id": "x"})";
  ASSERT_TRUE(answer.parse_completion());
  EXPECT_EQ((*answer.completion)["id"], "x");
}

TEST_F(PipelineTest, TruncatedCacheEntryIsAMissAndIsDropped) {
  ChatRequest r = request("truncated");
  const std::string key = cache::exact_cache_key(r.format, r.body);
  backend_->put(key, R"({"id":"chatcmpl-1","choices":[{"mess)");
  auto answer = handle(std::move(r));
  EXPECT_EQ(answer.layer, LayerId::kL3);
  EXPECT_EQ(provider_->calls.load(), 1);
  // The answer from L3 replaced the broken entry.
  auto stored = backend_->get(key);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->back(), '}');
}

TEST_F(PipelineTest, DifferentRequestIsAMiss) {
  handle(request("a"));
  EXPECT_EQ(handle(request("b")).layer, LayerId::kL3);
  EXPECT_EQ(provider_->calls.load(), 2);
}

TEST_F(PipelineTest, CompletedStreamIsStoredAndReplayable) {
  auto first = handle(request("streamed", true));
  ASSERT_TRUE(first.stream);
  EXPECT_EQ(drain(*first.stream), "Echo: streamed");
  auto second = handle(request("streamed", false));
  EXPECT_EQ(second.layer, LayerId::kL1a);
  ASSERT_TRUE(second.parse_completion());
  EXPECT_EQ(api::completion_text(*second.completion), "Echo: streamed");
}

TEST_F(PipelineTest, InterruptedStreamIsNotStored) {
  provider_->cut_stream = true;
  auto first = handle(request("cut", true));
  EXPECT_TRUE(drain(*first.stream).starts_with("error: "));
  provider_->cut_stream = false;
  EXPECT_EQ(handle(request("cut")).layer, LayerId::kL3);
  EXPECT_EQ(provider_->calls.load(), 2);
}

TEST_F(PipelineTest, AbandonedStreamIsNotStored) {
  {
    auto first = handle(request("abandoned", true));
    ASSERT_TRUE(first.stream);
    run_coroutine([&]() -> asio::awaitable<int> {
      co_await first.stream->next();  // the client reads one chunk and goes away
      co_return 0;
    }());
  }
  EXPECT_EQ(handle(request("abandoned")).layer, LayerId::kL3);
}

TEST_F(PipelineTest, UpstreamErrorIsReturnedAndNotCached) {
  provider_->fail_with = Error(ErrorCode::kUpstream, "boom");
  auto failed = run_coroutine(pipeline_->handle(request("x")));
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, ErrorCode::kUpstream);
  provider_->fail_with.reset();
  EXPECT_EQ(handle(request("x")).layer, LayerId::kL3);
}

// The renderings L1a keeps beside an entry: the first hit of a form renders, the next ones get
// the bytes; a new answer under the key, a forget and a no-store request leave none behind.
TEST_F(PipelineTest, AHitsRenderingIsKeptBoundToItsEntry) {
  auto anthropic = [](const std::string& text) {
    ChatRequest r = request(text);
    r.format = api::WireFormat::kAnthropic;
    r.rendering = rendering_of(r.format, false, false);
    return r;
  };
  handle(anthropic("q"));  // L3, stored
  Answer first = handle(anthropic("q"));
  ASSERT_EQ(first.layer, LayerId::kL1a);
  EXPECT_TRUE(first.rendered.empty());
  ASSERT_TRUE(first.keep_rendered);
  first.keep_rendered("rendered once");
  Answer second = handle(anthropic("q"));
  EXPECT_EQ(second.rendered, "rendered once");
  EXPECT_FALSE(second.keep_rendered);
  EXPECT_FALSE(second.completion_json.empty());  // still there, for the tokens-saved count

  // A new answer under the same key drops the renderings.
  ChatRequest fresh = anthropic("q");
  fresh.cache.lookup = false;
  handle(std::move(fresh));
  Answer after_store = handle(anthropic("q"));
  EXPECT_TRUE(after_store.rendered.empty());
  ASSERT_TRUE(after_store.keep_rendered);
  after_store.keep_rendered("of the new answer");
  EXPECT_EQ(handle(anthropic("q")).rendered, "of the new answer");

  // One rendered from another answer (a store that raced with the hit) is not served.
  const ChatRequest probe = anthropic("q");
  backend_->put(cache::partitioned_key(probe.cache.partition, cache::exact_cache_key(probe.format, probe.body)),
                R"({"choices":[],"id":"other"})");
  EXPECT_TRUE(handle(anthropic("q")).rendered.empty());

  // forget() takes the renderings with the entry.
  Answer again = handle(anthropic("q"));
  ASSERT_TRUE(again.keep_rendered);
  again.keep_rendered("kept");
  EXPECT_EQ(renderings_->size(), 1u);
  EXPECT_TRUE(pipeline_->layers().front()->forget(anthropic("q")));
  EXPECT_EQ(backend_->size(), 0u);
  EXPECT_EQ(renderings_->size(), 0u);

  // No rendering is kept for a no-store request, nor for the stored text itself.
  handle(anthropic("r"));
  ChatRequest no_store = anthropic("r");
  no_store.cache.store = false;
  Answer hit = handle(std::move(no_store));
  EXPECT_EQ(hit.layer, LayerId::kL1a);
  EXPECT_FALSE(hit.keep_rendered);
  EXPECT_EQ(rendering_of(api::WireFormat::kOpenAI, false, true), "");
  EXPECT_EQ(rendering_of(api::WireFormat::kResponses, true, false), "");
  EXPECT_NE(rendering_of(api::WireFormat::kOpenAI, true, true), rendering_of(api::WireFormat::kOpenAI, true, false));
}

}  // namespace
}  // namespace isartor::pipeline
