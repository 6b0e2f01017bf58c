#include "pipeline/local_model_layer.h"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "api/openai.h"
#include "fakes/fake_generator.h"
#include "support/run_coroutine.h"

namespace isartor::pipeline {
namespace {

using inference::FinishReason;
using inference::Label;
using testing::run_coroutine;

ChatRequest request(const std::string& text, const std::string& system = "", api::Json extra = api::Json::object()) {
  ChatRequest r;
  r.body = {{"model", "gpt-4o-mini"}, {"messages", api::Json::array()}};
  if (!system.empty()) r.body["messages"].push_back({{"role", "system"}, {"content", system}});
  r.body["messages"].push_back({{"role", "user"}, {"content", text}});
  for (auto& [k, v] : extra.items()) r.body[k] = v;
  return r;
}

// The bytes of a streamed answer L2 judges before it streams the rest (kOpeningBytes in
// local_model_layer.cpp).
constexpr std::size_t kOpening = 32;

// Wraps a FakeGenerator so that its generation stops after the first `hold_after` bytes of text
// and waits there until it is cancelled: a test then knows the generation cannot have run to its
// end on its own, whatever the scheduler does, so "it was cancelled" is a fact rather than a race
// between the coroutine and the fake's token delay. `wait_done()` returns the Generation the
// fake reported. A hold gives up after 30 s (a broken test fails instead of hanging).
class HeldGenerator final : public inference::Generator {
 public:
  HeldGenerator(std::shared_ptr<fakes::FakeGenerator> inner, std::size_t hold_after)
      : inner_(std::move(inner)), hold_after_(hold_after) {}

  std::string_view name() const override { return inner_->name(); }

  inference::Cancellation classify_async(std::vector<inference::ChatMessage> messages,
                                         inference::ClassifyOptions options,
                                         inference::ClassifyCallback done) override {
    return inner_->classify_async(std::move(messages), options, std::move(done));
  }

  inference::Cancellation generate_async(std::vector<inference::ChatMessage> messages,
                                         inference::GenerateOptions options, inference::TokenCallback on_token,
                                         inference::GenerateCallback done) override {
    auto on_piece = [this, on_token = std::move(on_token)](std::string_view piece) {
      if (on_token) on_token(piece);
      std::unique_lock lock(mu_);
      sent_ += piece.size();
      if (sent_ < hold_after_ || held_) return;
      held_ = true;
      // The Cancellation is known once generate_async below has returned.
      cv_.wait_for(lock, std::chrono::seconds(30), [this] { return cancel_.has_value(); });
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (cancel_ && !cancel_->requested() && std::chrono::steady_clock::now() < give_up) {
        cv_.wait_for(lock, std::chrono::milliseconds(1));  // Cancellation has no wake-up: poll it
      }
      released_by_cancel_ = cancel_ && cancel_->requested();
    };
    auto on_done = [this, done = std::move(done)](Result<inference::Generation> result) {
      {
        std::lock_guard lock(mu_);
        result_ = result;
        cv_.notify_all();
      }
      done(std::move(result));
    };
    auto cancel = inner_->generate_async(std::move(messages), std::move(options), std::move(on_piece),
                                         std::move(on_done));
    std::lock_guard lock(mu_);
    cancel_ = cancel;
    cv_.notify_all();
    return cancel;
  }

  // The fake's result once it has called `done` (nullopt if it did not within 30 s).
  std::optional<Result<inference::Generation>> wait_done() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(30), [this] { return result_.has_value(); });
    return result_;
  }
  bool held() const {
    std::lock_guard lock(mu_);
    return held_;
  }
  bool released_by_cancel() const {
    std::lock_guard lock(mu_);
    return released_by_cancel_;
  }

 private:
  std::shared_ptr<fakes::FakeGenerator> inner_;
  const std::size_t hold_after_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<inference::Cancellation> cancel_;
  std::size_t sent_ = 0;
  bool held_ = false;
  bool released_by_cancel_ = false;
  std::optional<Result<inference::Generation>> result_;
};

LocalModelOptions test_options() {
  LocalModelOptions options;
  options.max_prompt_chars = 100;
  options.generate.max_tokens = 16;
  options.generate.temperature = 0.5f;
  options.generate.repetition_penalty = 1.3f;
  return options;
}

class LocalModelLayerTest : public ::testing::Test {
 protected:
  LocalModelLayerTest() : layer_(std::make_unique<LocalModelLayer>(generator_, test_options())) {}

  std::optional<Answer> ask(ChatRequest r) {
    auto result = run_coroutine(layer_->answer(r));
    EXPECT_TRUE(result.has_value()) << "L2 must never fail a request";
    return result ? std::move(*result) : std::nullopt;
  }

  // Asserts the request passes on without the model being consulted at all.
  void expect_skipped(ChatRequest r) {
    EXPECT_FALSE(ask(std::move(r)));
    EXPECT_EQ(generator_->classify_calls(), 0);
    EXPECT_EQ(generator_->generate_calls(), 0);
  }

  std::shared_ptr<fakes::FakeGenerator> generator_ = std::make_shared<fakes::FakeGenerator>();
  std::unique_ptr<LocalModelLayer> layer_;
  // A layer over `generator_` held after the opening (see HeldGenerator).
  std::shared_ptr<HeldGenerator> held_ = std::make_shared<HeldGenerator>(generator_, kOpening);
  std::unique_ptr<LocalModelLayer> held_layer_ = std::make_unique<LocalModelLayer>(held_, test_options());
};

TEST_F(LocalModelLayerTest, SimpleRequestIsAnsweredLocally) {
  auto answer = ask(request("What is the capital of France?", "Be brief."));
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->layer, LayerId::kL2);
  EXPECT_TRUE(answer->deflected());
  ASSERT_TRUE(answer->completion);
  EXPECT_EQ(api::completion_text(*answer->completion), "Paris is the capital of France.");
  EXPECT_EQ((*answer->completion)["object"], "chat.completion");
  EXPECT_EQ((*answer->completion)["model"], "fake.gguf");
  EXPECT_EQ((*answer->completion)["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ((*answer->completion)["usage"]["prompt_tokens"], 7);
  EXPECT_EQ((*answer->completion)["usage"]["completion_tokens"], 1);
  EXPECT_EQ(generator_->classify_calls(), 1);
  EXPECT_EQ(generator_->generate_calls(), 1);
  auto messages = generator_->last_messages();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].role, "system");
  EXPECT_EQ(messages[0].content, "Be brief.");
  EXPECT_EQ(messages[1].role, "user");
  EXPECT_EQ(messages[1].content, "What is the capital of France?");
  auto options = generator_->last_options();
  EXPECT_EQ(options.max_tokens, 16);
  EXPECT_FLOAT_EQ(options.temperature, 0.5f);
  EXPECT_FLOAT_EQ(options.repetition_penalty, 1.3f);
}

TEST_F(LocalModelLayerTest, ShortStreamingAnswerIsReturnedWhole) {
  auto r = request("hello");
  r.stream = true;
  auto answer = ask(std::move(r));
  ASSERT_TRUE(answer);
  EXPECT_TRUE(answer->completion);
  EXPECT_FALSE(answer->stream);
}

TEST_F(LocalModelLayerTest, ComplexRequestPassesWithoutGenerating) {
  generator_->label = Label::kComplex;
  EXPECT_FALSE(ask(request("Prove the Riemann hypothesis.")));
  EXPECT_EQ(generator_->classify_calls(), 1);
  EXPECT_EQ(generator_->generate_calls(), 0);
}

TEST_F(LocalModelLayerTest, ToolsSkipTheModel) {
  expect_skipped(request("weather?", "", {{"tools", api::Json::array({{{"type", "function"}}})}}));
}

TEST_F(LocalModelLayerTest, EmptyOrNullToolsDoNotSkip) {
  EXPECT_TRUE(ask(request("hi", "", {{"tools", api::Json::array()}})));
  EXPECT_TRUE(ask(request("hi", "", {{"tools", nullptr}})));
}

TEST_F(LocalModelLayerTest, MultiTurnSkipsTheModel) {
  auto r = request("and Germany?");
  r.body["messages"] = api::Json::array({{{"role", "user"}, {"content", "capital of France?"}},
                                         {{"role", "assistant"}, {"content", "Paris"}},
                                         {{"role", "user"}, {"content", "and Germany?"}}});
  expect_skipped(std::move(r));
}

TEST(LocalModelMessages, MultiTurnWhenAllowed) {
  ChatRequest r;
  r.body = api::Json::parse(R"({"messages": [{"role": "system", "content": "terse"},
      {"role": "user", "content": "capital of France?"}, {"role": "assistant", "content": "Paris"},
      {"role": "user", "content": "and Germany?"}]})");
  EXPECT_FALSE(local_model_messages(r, 1000));
  auto messages = local_model_messages(r, 1000, false);
  ASSERT_TRUE(messages);
  ASSERT_EQ(messages->size(), 4u);
  EXPECT_EQ((*messages)[2].role, "assistant");
  EXPECT_EQ((*messages)[3].content, "and Germany?");
  // Still refused: a conversation ending with the assistant, two user turns in a row, tools.
  for (const char* raw : {R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})",
                          R"({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})",
                          R"({"messages": [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]})",
                          R"({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]})"}) {
    r.body = api::Json::parse(raw);
    EXPECT_FALSE(local_model_messages(r, 1000, false)) << raw;
  }
}

TEST_F(LocalModelLayerTest, TwoUserMessagesSkipTheModel) {
  auto r = request("one");
  r.body["messages"].push_back({{"role", "user"}, {"content", "two"}});
  expect_skipped(std::move(r));
}

TEST_F(LocalModelLayerTest, NonTextContentSkipsTheModel) {
  auto r = request("x");
  r.body["messages"][0]["content"] = api::Json::array(
      {{{"type", "text"}, {"text", "what is this?"}}, {{"type", "image_url"}, {"image_url", {{"url", "x"}}}}});
  expect_skipped(std::move(r));
}

TEST_F(LocalModelLayerTest, TextPartsAreJoined) {
  auto r = request("x");
  r.body["messages"][0]["content"] =
      api::Json::array({{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}});
  ASSERT_TRUE(ask(std::move(r)));
  EXPECT_EQ(generator_->last_messages().at(0).content, "a\nb");
}

TEST_F(LocalModelLayerTest, DeveloperMessageBecomesSystem) {
  auto r = request("hi");
  const api::Json developer = {{"role", "developer"}, {"content", "terse"}};
  r.body["messages"].insert(r.body["messages"].begin(), developer);
  ASSERT_TRUE(ask(std::move(r)));
  EXPECT_EQ(generator_->last_messages().at(0).role, "system");
}

TEST_F(LocalModelLayerTest, LongPromptSkipsTheModel) {
  expect_skipped(request(std::string(101, 'a')));
}

TEST_F(LocalModelLayerTest, PromptAtTheLimitIsOffered) {
  // 60 + 40 = 100 characters of text, system message included.
  EXPECT_TRUE(ask(request(std::string(40, 'a'), std::string(60, 's'))));
  EXPECT_FALSE(ask(request(std::string(41, 'a'), std::string(60, 's'))));
}

TEST_F(LocalModelLayerTest, MalformedBodiesSkipTheModel) {
  for (const char* raw : {R"({"messages": "hi"})", R"({"messages": []})", R"({"messages": [{"role": "user"}]})",
                          R"({"messages": [{"role": 3, "content": "x"}]})",
                          R"({"messages": [{"role": "user", "content": ""}]})",
                          R"({"messages": [{"role": "user", "content": [{"type": 1, "text": "x"}]}]})",
                          R"({"messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "y"}]})",
                          R"([1, 2])"}) {
    ChatRequest r;
    r.body = api::Json::parse(raw);
    EXPECT_FALSE(ask(std::move(r))) << raw;
  }
  EXPECT_EQ(generator_->classify_calls(), 0);
}

TEST_F(LocalModelLayerTest, GuardRejectsEmptyAnswers) {
  for (const char* text : {"", "   \n\t "}) {
    generator_->text = text;
    EXPECT_FALSE(ask(request("hi"))) << '"' << text << '"';
  }
  EXPECT_EQ(generator_->generate_calls(), 2);
}

TEST_F(LocalModelLayerTest, GuardRejectsTruncatedAndUnfinishedAnswers) {
  for (auto finish : {FinishReason::kLength, FinishReason::kCancelled, FinishReason::kTimeout}) {
    generator_->finish = finish;
    EXPECT_FALSE(ask(request("hi"))) << inference::finish_reason_name(finish);
  }
}

TEST_F(LocalModelLayerTest, GuardRejectsRefusals) {
  for (const char* text : {"I don't know.", "i DON'T KNOW that", "I\xE2\x80\x99m sorry, but", "  \"As an AI model, I",
                           "I cannot help with that", "I can't say", "**I'm sorry**", "I am unable to"}) {
    generator_->text = text;
    EXPECT_FALSE(ask(request("hi"))) << text;
  }
}

TEST_F(LocalModelLayerTest, GuardKeepsOrdinaryAnswersMentioningRefusalWords) {
  for (const char* text : {"Hello! How can I help?", "Paris. I cannot stress enough how pretty it is.",
                           "Ice cannot be warmer than 0 C at sea level."}) {
    generator_->text = text;
    auto answer = ask(request("hi"));
    ASSERT_TRUE(answer) << text;
    EXPECT_EQ(api::completion_text(*answer->completion), text);
  }
}

TEST_F(LocalModelLayerTest, OverloadedGeneratorPasses) {
  generator_->classify_error = Error(ErrorCode::kOverloaded, "queue full");
  EXPECT_FALSE(ask(request("hi")));
  EXPECT_EQ(generator_->generate_calls(), 0);
  generator_->classify_error.reset();
  generator_->generate_error = Error(ErrorCode::kOverloaded, "queue full");
  EXPECT_FALSE(ask(request("hi")));
  EXPECT_EQ(generator_->generate_calls(), 1);
}

TEST_F(LocalModelLayerTest, ModelErrorsPass) {
  generator_->classify_error = Error(ErrorCode::kPayloadTooLarge, "prompt longer than the context");
  EXPECT_FALSE(ask(request("hi")));
  generator_->classify_error.reset();
  generator_->generate_error = Error(ErrorCode::kInternal, "llama_decode failed");
  EXPECT_FALSE(ask(request("hi")));
}

TEST_F(LocalModelLayerTest, StatusNamesTheModel) {
  auto status = layer_->status();
  EXPECT_TRUE(status.enabled);
  EXPECT_TRUE(status.ready);
  EXPECT_EQ(status.detail, "fake.gguf");
  EXPECT_EQ(layer_->id(), LayerId::kL2);
}

// Everything a streamed answer yields: the chunks, and how it ended.
struct Drained {
  std::vector<api::Json> chunks;
  std::string text;
  std::string finish_reason;
  std::optional<Error> error;
};

Drained drain(providers::ChunkStream& stream) {
  Drained out;
  for (;;) {
    auto chunk = run_coroutine(stream.next());
    if (!chunk) {
      out.error = chunk.error();
      return out;
    }
    if (!*chunk) return out;
    out.text += api::chunk_text(**chunk);
    if (auto reason = api::finish_reason_of(**chunk); !reason.empty()) out.finish_reason = reason;
    out.chunks.push_back(std::move(**chunk));
  }
}

const std::string kLongAnswer = "The Eiffel Tower is 330 metres tall and stands in Paris, France.";

TEST_F(LocalModelLayerTest, LongStreamingAnswerIsStreamedAfterItsOpening) {
  generator_->text = kLongAnswer;
  generator_->piece_bytes = 8;
  auto r = request("How tall is the Eiffel Tower?");
  r.stream = true;
  auto answer = ask(std::move(r));
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->layer, LayerId::kL2);
  EXPECT_FALSE(answer->completion);
  ASSERT_TRUE(answer->stream);
  Drained d = drain(*answer->stream);
  ASSERT_FALSE(d.error);
  EXPECT_EQ(d.text, kLongAnswer);
  EXPECT_EQ(d.finish_reason, "stop");
  EXPECT_TRUE(answer->stream->cacheable());
  // The opening (the first 32 bytes, in whole pieces) comes first, with the role; then one chunk per piece.
  ASSERT_GE(d.chunks.size(), 3u);
  EXPECT_EQ(d.chunks[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(api::chunk_text(d.chunks[0]), kLongAnswer.substr(0, 32));
  EXPECT_EQ(api::chunk_text(d.chunks[1]), kLongAnswer.substr(32, 8));
  EXPECT_EQ(d.chunks[0]["model"], "fake.gguf");
  EXPECT_EQ(d.chunks[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(api::usage_of(d.chunks.back()).completion_tokens, 8);
}

TEST_F(LocalModelLayerTest, StreamedRefusalPassesOnAndStopsTheModel) {
  const std::string refusal = "I'm sorry, but I cannot help with that request at all, it is beyond me.";
  generator_->text = refusal;
  generator_->piece_bytes = 4;
  auto r = request("hi");
  r.stream = true;
  // The model is held after the opening, so only the layer's cancellation can end the generation.
  auto result = run_coroutine(held_layer_->answer(r));
  ASSERT_TRUE(result);
  EXPECT_FALSE(*result);
  // The generation was cancelled once the opening was judged, not run to its end.
  auto generation = held_->wait_done();
  ASSERT_TRUE(generation) << "the generation never ended";
  ASSERT_TRUE(*generation);
  EXPECT_TRUE(held_->held());
  EXPECT_TRUE(held_->released_by_cancel());
  EXPECT_EQ((*generation)->finish, FinishReason::kCancelled);
  EXPECT_EQ((*generation)->text, refusal.substr(0, kOpening));
  EXPECT_EQ(generator_->cancelled(), 1);
}

TEST_F(LocalModelLayerTest, StreamCutByTheTokenCapEndsWithLengthAndIsNotCacheable) {
  generator_->text = kLongAnswer;
  generator_->piece_bytes = 8;
  generator_->finish = FinishReason::kLength;
  auto r = request("hi");
  r.stream = true;
  auto answer = ask(std::move(r));
  ASSERT_TRUE(answer && answer->stream);
  Drained d = drain(*answer->stream);
  EXPECT_EQ(d.text, kLongAnswer);
  EXPECT_EQ(d.finish_reason, "length");
  EXPECT_FALSE(answer->stream->cacheable());
}

TEST_F(LocalModelLayerTest, DroppingTheStreamCancelsTheGeneration) {
  generator_->text = std::string(400, 'a');
  generator_->piece_bytes = 8;
  auto r = request("hi");
  r.stream = true;
  auto result = run_coroutine(held_layer_->answer(r));
  ASSERT_TRUE(result && *result && (*result)->stream);
  EXPECT_FALSE(held_->released_by_cancel());  // still held: the stream owns the generation
  (*result)->stream.reset();                  // the client went away
  auto generation = held_->wait_done();
  ASSERT_TRUE(generation) << "the generation never ended";
  ASSERT_TRUE(*generation);
  EXPECT_TRUE(held_->released_by_cancel());
  EXPECT_EQ((*generation)->finish, FinishReason::kCancelled);
  EXPECT_EQ((*generation)->text.size(), kOpening);
  EXPECT_EQ(generator_->cancelled(), 1);
}

TEST_F(LocalModelLayerTest, GenerationFailingMidStreamEndsTheStreamWithAnError) {
  generator_->text = kLongAnswer;
  generator_->piece_bytes = 8;
  generator_->error_after_text = Error(ErrorCode::kInternal, "llama_decode failed");
  auto r = request("hi");
  r.stream = true;
  auto answer = ask(std::move(r));
  ASSERT_TRUE(answer && answer->stream);
  Drained d = drain(*answer->stream);
  EXPECT_EQ(d.text, kLongAnswer);  // what the client already has stays
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->code, ErrorCode::kUpstream);
  EXPECT_NE(d.error->message.find("llama_decode failed"), std::string::npos);
}

TEST_F(LocalModelLayerTest, FailureBeforeTheOpeningPassesOn) {
  generator_->text = "short";
  generator_->error_after_text = Error(ErrorCode::kInternal, "llama_decode failed");
  auto r = request("hi");
  r.stream = true;
  EXPECT_FALSE(ask(std::move(r)));
}

TEST_F(LocalModelLayerTest, TimeoutCoversClassificationAndAnswer) {
  LocalModelOptions options;
  options.timeout = std::chrono::milliseconds(50);
  LocalModelLayer layer(generator_, options);
  // A classification that would take a minute: only the 50 ms budget can end it within the
  // generous bound below (the bound leaves a loaded machine 30 s of slack, not 1.5 s).
  generator_->classify_delay = std::chrono::seconds(60);
  auto r = request("hi");
  auto started = std::chrono::steady_clock::now();
  auto result = run_coroutine(layer.answer(r));
  ASSERT_TRUE(result);
  EXPECT_FALSE(*result);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  EXPECT_EQ(generator_->cancelled(), 1);  // the fake stopped at its deadline, not at its delay's end
  EXPECT_GT(generator_->last_classify_timeout().count(), 0);
  EXPECT_LE(generator_->last_classify_timeout().count(), 50);
  // The answer gets what is left of the budget.
  generator_->classify_delay = std::chrono::milliseconds(0);
  generator_->text = kLongAnswer;
  generator_->piece_bytes = 1;
  generator_->token_delay = std::chrono::milliseconds(20);
  auto second = request("hi");
  result = run_coroutine(layer.answer(second));
  ASSERT_TRUE(result);
  EXPECT_FALSE(*result);  // timed out mid-answer: not served
  EXPECT_LE(generator_->last_options().timeout.count(), 50);
}

TEST_F(LocalModelLayerTest, OverloadWithoutFallbackIsA503) {
  LocalModelOptions options;
  bool cloud_ready = false;
  options.fallback_ready = [&cloud_ready] { return cloud_ready; };
  LocalModelLayer layer(generator_, options);
  generator_->classify_error = Error(ErrorCode::kOverloaded, "queue full");
  auto r = request("hi");
  auto result = run_coroutine(layer.answer(r));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kOverloaded);
  cloud_ready = true;
  result = run_coroutine(layer.answer(r));
  ASSERT_TRUE(result);
  EXPECT_FALSE(*result);
  // Other model errors pass on even with nothing behind.
  cloud_ready = false;
  generator_->classify_error = Error(ErrorCode::kInternal, "decode failed");
  result = run_coroutine(layer.answer(r));
  ASSERT_TRUE(result);
  EXPECT_FALSE(*result);
}

TEST_F(LocalModelLayerTest, CancellingTheRequestCancelsTheClassification) {
  generator_->classify_delay = std::chrono::seconds(60);  // only the cancellation can end it in time
  boost::asio::io_context ioc;
  boost::asio::cancellation_signal signal;
  auto r = request("hi");
  auto future = boost::asio::co_spawn(ioc, layer_->answer(r),
                                      boost::asio::bind_cancellation_slot(signal.slot(), boost::asio::use_future));
  boost::asio::steady_timer timer(ioc, std::chrono::milliseconds(20));
  timer.async_wait([&signal](auto) { signal.emit(boost::asio::cancellation_type::terminal); });
  auto started = std::chrono::steady_clock::now();
  ioc.run();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  EXPECT_EQ(generator_->cancelled(), 1);
  // The coroutine ends as Asio ends cancelled ones: with operation_aborted, or having passed on.
  try {
    auto result = future.get();
    EXPECT_TRUE(result && !*result);
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), boost::asio::error::operation_aborted);
  }
}

TEST(LocalModelLayerLoading, PassesOnUntilTheModelArrives) {
  LocalModelLayer layer(LocalModelOptions{}, "downloading x.gguf (3%)");
  auto status = layer.status();
  EXPECT_TRUE(status.enabled);
  EXPECT_FALSE(status.ready);
  EXPECT_EQ(status.detail, "downloading x.gguf (3%)");
  auto r = request("hi");
  auto result = run_coroutine(layer.answer(r));
  ASSERT_TRUE(result);
  EXPECT_FALSE(*result);
  layer.set_pending("loading x.gguf");
  EXPECT_EQ(layer.status().detail, "loading x.gguf");
  auto generator = std::make_shared<fakes::FakeGenerator>();
  layer.set_generator(generator);
  EXPECT_TRUE(layer.status().ready);
  EXPECT_EQ(layer.status().detail, "fake.gguf");
  result = run_coroutine(layer.answer(r));
  ASSERT_TRUE(result && *result);
  EXPECT_EQ((*result)->layer, LayerId::kL2);
}

TEST(RejectReason, OpeningAlone) {
  EXPECT_EQ(opening_reject_reason("   "), "empty answer");
  EXPECT_EQ(opening_reject_reason("As an AI language model, I"), "refusal-style answer");
  EXPECT_FALSE(opening_reject_reason("The Eiffel Tower is 330 m"));
}

TEST(RejectReason, AcceptsAFinishedAnswer) {
  inference::Generation g;
  g.text = "Yes.";
  EXPECT_FALSE(reject_reason(g));
  g.finish = FinishReason::kLength;
  EXPECT_EQ(reject_reason(g), "truncated at the token limit");
}

}  // namespace
}  // namespace isartor::pipeline
