// The in-process L2 generator end to end on a tiny random-weight Gemma-2 model written by
// scripts/make_tiny_gguf.py: real loading, chat template, tokenization, continuous batching,
// sampling and streaming. Its answers are nonsense, so the tests assert mechanics only.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "inference/llama_generator.h"

namespace isartor::inference {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

fs::path make_temp_dir() {
  std::string pattern = (fs::temp_directory_path() / "isartor-generator-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return {};
  return pattern;
}

// Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF), as JSON encoders need.
bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80                 ? 1
                     : c >= 0xC2 && c <= 0xDF ? 2
                     : c >= 0xE0 && c <= 0xEF ? 3
                     : c >= 0xF0 && c <= 0xF4 ? 4
                                              : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = cp << 6 | (b & 0x3F);
    }
    constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

std::vector<ChatMessage> ask(std::string text) {
  return {{"user", std::move(text)}};
}

// What one generate_async call delivered.
struct Outcome {
  std::vector<std::string> pieces;
  Result<Generation> result = fail(ErrorCode::kInternal, "not finished");
  std::thread::id done_thread;

  std::string streamed() const {
    std::string all;
    for (const auto& p : pieces) all += p;
    return all;
  }
};

// Collects a generate_async call's callbacks; wait() returns once `done` ran.
class Collector {
 public:
  Cancellation start(Generator& generator, std::vector<ChatMessage> messages, GenerateOptions options,
                     std::function<void(int)> on_piece = {}) {
    return generator.generate_async(
        std::move(messages), std::move(options),
        [this, on_piece](std::string_view piece) {
          int n;
          {
            std::lock_guard lock(mutex_);
            outcome_.pieces.emplace_back(piece);
            n = static_cast<int>(outcome_.pieces.size());
          }
          if (on_piece) on_piece(n);
        },
        [this](Result<Generation> result) {
          std::lock_guard lock(mutex_);
          outcome_.result = std::move(result);
          outcome_.done_thread = std::this_thread::get_id();
          finished_ = true;
          cv_.notify_all();
        });
  }

  Outcome wait() {
    std::unique_lock lock(mutex_);
    EXPECT_TRUE(cv_.wait_for(lock, 20s, [&] { return finished_; })) << "generation did not finish";
    return outcome_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  Outcome outcome_;
  bool finished_ = false;
};

Outcome run(Generator& generator, std::vector<ChatMessage> messages, GenerateOptions options) {
  Collector collector;
  collector.start(generator, std::move(messages), std::move(options));
  return collector.wait();
}

// A latch a callback waits on, so a test can hold the single worker at a known point.
class Gate {
 public:
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, 20s, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Holds a generator's slot: a generation whose first piece waits until release(), so a test can
// queue requests behind it.
class SlotHolder {
 public:
  explicit SlotHolder(Generator& generator, std::string prompt = "Hold the slot.") {
    GenerateOptions options;
    options.max_tokens = 4;
    collector_.start(generator, ask(std::move(prompt)), options, [this](int n) {
      if (n == 1) {
        busy_.open();
        release_.wait();
      }
    });
    busy_.wait();
  }
  ~SlotHolder() {
    release_.open();
    (void)collector_.wait();
  }
  void release() { release_.open(); }
  Outcome wait() { return collector_.wait(); }

 private:
  Gate busy_, release_;
  Collector collector_;
};

class GeneratorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = make_temp_dir();
    ASSERT_FALSE(dir_.empty());
    model_ = dir_ / "tiny-gemma2.gguf";
    const std::string command = "python3 '" + (fs::path(ISARTOR_SOURCE_DIR) / "scripts/make_tiny_gguf.py").string() +
                                "' '" + model_.string() + "'";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static std::unique_ptr<LlamaGenerator> load(LlamaGeneratorOptions options = small()) {
    auto loaded = LlamaGenerator::load(model_, options);
    EXPECT_TRUE(loaded) << loaded.error().message;
    return loaded ? std::move(*loaded) : nullptr;
  }

  static LlamaGeneratorOptions small() {
    LlamaGeneratorOptions options;
    options.context_tokens = 512;
    options.max_sequences = 8;
    options.threads = 2;
    return options;
  }

  static GenerateOptions tokens(int max_tokens) {
    GenerateOptions options;
    options.max_tokens = max_tokens;
    return options;
  }

  static inline fs::path dir_;
  static inline fs::path model_;
};

TEST_F(GeneratorTest, LoadsTheTinyModel) {
  auto generator = load();
  ASSERT_TRUE(generator);
  EXPECT_EQ(generator->name(), "tiny-gemma2.gguf");
  EXPECT_EQ(generator->stats().decodes, 0u);
}

TEST_F(GeneratorTest, MissingFileIsNotFound) {
  auto loaded = LlamaGenerator::load(dir_ / "nope.gguf", small());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::kNotFound);
}

TEST_F(GeneratorTest, GarbageFileIsUnprocessable) {
  const fs::path garbage = dir_ / "garbage.gguf";
  std::ofstream(garbage) << "GGUF but not really a model";
  auto loaded = LlamaGenerator::load(garbage, small());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::kUnprocessable);
}

TEST_F(GeneratorTest, BadOptionsNameTheField) {
  LlamaGeneratorOptions options = small();
  options.max_sequences = 0;
  auto loaded = LlamaGenerator::load(model_, options);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(loaded.error().param, "max_sequences");

  options = small();
  options.batch_tokens = 4;  // fewer than the 8 slots' one token each
  loaded = LlamaGenerator::load(model_, options);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().param, "batch_tokens");
}

TEST_F(GeneratorTest, UnknownChatTemplateIsUnprocessable) {
  LlamaGeneratorOptions options = small();
  options.chat_template = "{{ no template llama.cpp knows }}";
  auto loaded = LlamaGenerator::load(model_, options);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::kUnprocessable);
}

TEST_F(GeneratorTest, GemmaTemplateMergesSystemIntoFirstUserTurn) {
  auto generator = load();
  ASSERT_TRUE(generator);
  auto prompt = generator->render_prompt({{"system", "Be brief."}, {"user", "Hi there"}});
  ASSERT_TRUE(prompt) << prompt.error().message;
  EXPECT_EQ(*prompt, "<start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n<start_of_turn>model\n");

  prompt = generator->render_prompt({{"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}});
  ASSERT_TRUE(prompt);
  EXPECT_EQ(*prompt,
            "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
            "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
}

TEST_F(GeneratorTest, ClassificationPromptWrapsTheRequest) {
  auto single = classification_messages(ask("What is 2+2?"));
  ASSERT_EQ(single.size(), 2u);
  EXPECT_EQ(single[0].role, "system");
  EXPECT_EQ(single[0].content, kClassifyInstruction);
  EXPECT_EQ(single[1].role, "user");
  EXPECT_EQ(single[1].content, "Request:\nWhat is 2+2?");

  auto multi = classification_messages({{"system", "Be terse."}, {"user", "Hi"}});
  EXPECT_EQ(multi[1].content, "Request:\nsystem: Be terse.\n\nuser: Hi");
}

TEST_F(GeneratorTest, ParseLabelIsForgiving) {
  EXPECT_EQ(parse_label("SIMPLE"), Label::kSimple);
  EXPECT_EQ(parse_label("simple."), Label::kSimple);
  EXPECT_EQ(parse_label("  **Simple**\n"), Label::kSimple);
  EXPECT_EQ(parse_label("Answer: simple, I think"), Label::kSimple);
  EXPECT_EQ(parse_label("COMPLEX"), Label::kComplex);
  EXPECT_EQ(parse_label("complex!"), Label::kComplex);
  EXPECT_EQ(parse_label("Complex. Not simple."), Label::kComplex);  // the first label wins
  EXPECT_EQ(parse_label(""), Label::kComplex);
  EXPECT_EQ(parse_label("I cannot decide"), Label::kComplex);
  EXPECT_EQ(parse_label("simpleton"), Label::kComplex);  // a word, not the label
  EXPECT_EQ(parse_label("\xff\xfe garbage \x01"), Label::kComplex);
  EXPECT_EQ(label_name(Label::kSimple), "SIMPLE");
  EXPECT_EQ(label_name(Label::kComplex), "COMPLEX");
}

TEST_F(GeneratorTest, ClassifyIsDeterministicAndBatchable) {
  auto generator = load();
  ASSERT_TRUE(generator);
  const std::vector<std::string> requests = {"Hello!", "What is the capital of France?",
                                             "Prove that there are infinitely many primes.",
                                             "Write a Rust function that parses JSON."};
  std::vector<Label> first;
  for (const auto& r : requests) {
    auto label = generator->classify(ask(r));
    ASSERT_TRUE(label) << label.error().message;
    first.push_back(*label);
  }
  std::vector<std::future<Result<Label>>> concurrent;
  for (const auto& r : requests) {
    concurrent.push_back(std::async(std::launch::async, [&, r] { return generator->classify(ask(r)); }));
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    auto label = concurrent[i].get();
    ASSERT_TRUE(label);
    EXPECT_EQ(*label, first[i]) << requests[i];
  }
  EXPECT_EQ(generator->stats().classifications, 2 * requests.size());
  EXPECT_EQ(generator->stats().generated_tokens, 0u);  // one decode, no text
}

TEST_F(GeneratorTest, ClassificationsReuseTheInstructionPrefix) {
  auto generator = load();
  ASSERT_TRUE(generator);
  auto full = generator->render_prompt(classification_messages(ask("Hello!")));
  ASSERT_TRUE(full);
  ASSERT_TRUE(generator->classify(ask("Hello!")));
  const auto stats = generator->stats();
  // The instruction came from the shared prefix; only the request's few tokens were decoded.
  EXPECT_GT(stats.reused_prompt_tokens, 50u);
  EXPECT_LT(stats.prompt_tokens, 20u);
  EXPECT_GT(stats.reused_prompt_tokens + stats.prompt_tokens, full->size() / 8);
}

TEST_F(GeneratorTest, GrammarClassificationWritesOnlyALabel) {
  LlamaGeneratorOptions options = small();
  options.classify_mode = ClassifyMode::kGrammar;
  options.max_classify_tokens = 8;
  auto generator = load(options);
  ASSERT_TRUE(generator);
  const std::vector<std::string> requests = {"Hello!", "Prove that there are infinitely many primes.",
                                             "Write a Rust function that parses JSON."};
  for (const auto& r : requests) {
    auto first = generator->classify(ask(r));
    ASSERT_TRUE(first) << first.error().message;
    auto again = generator->classify(ask(r));
    ASSERT_TRUE(again);
    EXPECT_EQ(*first, *again) << r;  // greedy under the grammar: deterministic
  }
  const auto stats = generator->stats();
  EXPECT_EQ(stats.classifications, 2 * requests.size());
  // The random model writes its label token by token under the grammar, within the cap.
  EXPECT_GT(stats.generated_tokens, 0u);
  EXPECT_LE(stats.generated_tokens, 2 * requests.size() * 8);
}

TEST_F(GeneratorTest, ClassificationHonoursTimeoutAndCancellation) {
  LlamaGeneratorOptions options = small();
  options.max_sequences = 1;
  auto generator = load(options);
  ASSERT_TRUE(generator);
  SlotHolder blocker(*generator);
  std::promise<Result<Label>> timed, cancelled;
  ClassifyOptions short_budget;
  short_budget.timeout = 1ms;
  generator->classify_async(ask("late"), short_budget, [&](Result<Label> r) { timed.set_value(std::move(r)); });
  Cancellation cancel =
      generator->classify_async(ask("dropped"), {}, [&](Result<Label> r) { cancelled.set_value(std::move(r)); });
  cancel.cancel();
  std::this_thread::sleep_for(20ms);
  blocker.release();
  auto timed_out = timed.get_future().get();
  ASSERT_FALSE(timed_out);
  EXPECT_EQ(timed_out.error().code, ErrorCode::kUpstreamTimeout);
  auto dropped = cancelled.get_future().get();
  ASSERT_FALSE(dropped);
  EXPECT_EQ(dropped.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(blocker.wait().result);
}

TEST_F(GeneratorTest, StoppedLoadFailsCleanly) {
  std::stop_source stop;
  stop.request_stop();
  LlamaGeneratorOptions options = small();
  options.stop_loading = stop.get_token();
  auto loaded = LlamaGenerator::load(model_, options);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::kUnavailable);
}

TEST_F(GeneratorTest, GenerateHonoursMaxTokensAndStreams) {
  auto generator = load();
  ASSERT_TRUE(generator);
  const Outcome out = run(*generator, ask("Tell me a story."), tokens(24));
  ASSERT_TRUE(out.result) << out.result.error().message;
  EXPECT_EQ(out.result->completion_tokens, 24);
  EXPECT_EQ(out.result->finish, FinishReason::kLength);
  EXPECT_GT(out.result->prompt_tokens, 5);
  EXPECT_GE(out.pieces.size(), 5u);  // streamed, not one lump at the end
  EXPECT_EQ(out.streamed(), out.result->text);
  for (const auto& piece : out.pieces) EXPECT_TRUE(valid_utf8(piece)) << piece;
  EXPECT_NE(out.done_thread, std::this_thread::get_id());
  EXPECT_EQ(generator->stats().generated_tokens, 24u);

  // Without a token callback (the blocking call's default) the same answer arrives in one piece.
  auto quiet = generator->generate(ask("Tell me a story."), tokens(24));
  ASSERT_TRUE(quiet) << quiet.error().message;
  EXPECT_EQ(quiet->text, out.result->text);

  const Outcome one = run(*generator, ask("Tell me a story."), tokens(1));
  ASSERT_TRUE(one.result);
  EXPECT_EQ(one.result->completion_tokens, 1);
  EXPECT_TRUE(out.result->text.starts_with(one.result->text));
}

TEST_F(GeneratorTest, GreedyOutputIsDeterministicAcrossRunsAndLoads) {
  auto generator = load();
  ASSERT_TRUE(generator);
  const Outcome a = run(*generator, ask("Why is the sky blue?"), tokens(20));
  const Outcome b = run(*generator, ask("Why is the sky blue?"), tokens(20));
  auto other = load();
  ASSERT_TRUE(other);
  const Outcome c = run(*other, ask("Why is the sky blue?"), tokens(20));
  ASSERT_TRUE(a.result && b.result && c.result);
  EXPECT_FALSE(a.result->text.empty());
  EXPECT_EQ(a.result->text, b.result->text);
  EXPECT_EQ(a.result->text, c.result->text);
  const Outcome d = run(*generator, ask("Something else entirely"), tokens(20));
  ASSERT_TRUE(d.result);
  EXPECT_NE(a.result->text, d.result->text);
}

TEST_F(GeneratorTest, SampledOutputFollowsTheSeed) {
  auto generator = load();
  ASSERT_TRUE(generator);
  GenerateOptions options = tokens(20);
  options.temperature = 2.0f;
  options.seed = 1;
  const Outcome a = run(*generator, ask("Surprise me."), options);
  const Outcome b = run(*generator, ask("Surprise me."), options);
  options.seed = 2;
  const Outcome c = run(*generator, ask("Surprise me."), options);
  ASSERT_TRUE(a.result && b.result && c.result);
  EXPECT_EQ(a.result->text, b.result->text);
  EXPECT_NE(a.result->text, c.result->text);

  options.temperature = -1.0f;
  const Outcome bad = run(*generator, ask("Surprise me."), options);
  ASSERT_FALSE(bad.result);
  EXPECT_EQ(bad.result.error().param, "temperature");
}

TEST_F(GeneratorTest, StopStringEndsTheAnswerBeforeIt) {
  auto generator = load();
  ASSERT_TRUE(generator);
  const Outcome full = run(*generator, ask("List some words."), tokens(40));
  ASSERT_TRUE(full.result);
  const std::string& text = full.result->text;
  ASSERT_GT(text.size(), 20u);
  // A stop string from the middle of the unstopped answer, spanning token boundaries.
  const std::string stop = text.substr(text.size() / 2, 4);
  const size_t at = text.find(stop);

  GenerateOptions options = tokens(40);
  options.stop = {"never-appears-here", stop};
  const Outcome cut = run(*generator, ask("List some words."), options);
  ASSERT_TRUE(cut.result);
  EXPECT_EQ(cut.result->finish, FinishReason::kStop);
  EXPECT_EQ(cut.result->text, text.substr(0, at));
  EXPECT_EQ(cut.streamed(), cut.result->text);  // the stop string was never streamed
  EXPECT_LT(cut.result->completion_tokens, 40);
}

TEST_F(GeneratorTest, CancellationStopsEarly) {
  auto generator = load();
  ASSERT_TRUE(generator);
  Gate first_piece, cancelled;
  Collector collector;
  // The worker waits in the first piece's callback until the caller has cancelled.
  Cancellation handle = collector.start(*generator, ask("Go on forever."), tokens(400), [&](int n) {
    if (n == 1) {
      first_piece.open();
      cancelled.wait();
    }
  });
  first_piece.wait();
  handle.cancel();
  EXPECT_TRUE(handle.requested());
  cancelled.open();
  const Outcome out = collector.wait();
  ASSERT_TRUE(out.result);
  EXPECT_EQ(out.result->finish, FinishReason::kCancelled);
  EXPECT_LE(out.result->completion_tokens, 3);
  EXPECT_EQ(out.streamed(), out.result->text);
}

TEST_F(GeneratorTest, TimeoutCountsQueueingTime) {
  LlamaGeneratorOptions options = small();
  options.max_sequences = 1;
  auto generator = load(options);
  ASSERT_TRUE(generator);
  SlotHolder blocker(*generator);
  GenerateOptions timed = tokens(10);
  timed.timeout = 1ms;
  Collector late;
  late.start(*generator, ask("Too late."), timed);
  std::this_thread::sleep_for(20ms);
  blocker.release();
  const Outcome out = late.wait();
  ASSERT_TRUE(out.result);
  EXPECT_EQ(out.result->finish, FinishReason::kTimeout);
  EXPECT_EQ(out.result->completion_tokens, 0);
  EXPECT_TRUE(blocker.wait().result);
}

TEST_F(GeneratorTest, ConcurrentRequestsAreBatchedAndMatchSequentialOutput) {
  auto generator = load();
  ASSERT_TRUE(generator);
  std::vector<std::string> prompts;
  for (int i = 0; i < 8; ++i) prompts.push_back("Question number " + std::to_string(i) + ": what now?");
  std::vector<std::string> alone;
  for (const auto& p : prompts) {
    const Outcome out = run(*generator, ask(p), tokens(16));
    ASSERT_TRUE(out.result);
    alone.push_back(out.result->text);
  }
  EXPECT_EQ(generator->stats().max_sequences_in_decode, 1);

  std::vector<std::unique_ptr<Collector>> collectors;
  for (const auto& p : prompts) {
    collectors.push_back(std::make_unique<Collector>());
    collectors.back()->start(*generator, ask(p), tokens(16));
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Outcome out = collectors[i]->wait();
    ASSERT_TRUE(out.result) << out.result.error().message;
    EXPECT_EQ(out.result->completion_tokens, 16);
    EXPECT_EQ(out.result->text, alone[i]) << prompts[i];
    for (const auto& piece : out.pieces) EXPECT_TRUE(valid_utf8(piece)) << piece;
  }
  const LlamaGeneratorStats stats = generator->stats();
  EXPECT_GE(stats.max_sequences_in_decode, 2);
  EXPECT_EQ(stats.generations, 16u);
  EXPECT_EQ(stats.generated_tokens, 16u * 16u);
}

TEST_F(GeneratorTest, FullQueueIsOverloaded) {
  LlamaGeneratorOptions options = small();
  options.max_sequences = 1;
  options.max_queued = 1;
  auto generator = load(options);
  ASSERT_TRUE(generator);
  SlotHolder a(*generator, "First");              // holds the only slot
  Collector b, c;
  b.start(*generator, ask("Second"), tokens(4));  // waits in the queue
  c.start(*generator, ask("Third"), tokens(4));   // no room
  a.release();
  const Outcome refused = c.wait();
  ASSERT_FALSE(refused.result);
  EXPECT_EQ(refused.result.error().code, ErrorCode::kOverloaded);
  EXPECT_NE(refused.done_thread, std::this_thread::get_id());
  EXPECT_TRUE(a.wait().result);
  EXPECT_TRUE(b.wait().result);
}

TEST_F(GeneratorTest, BadRequestsFailWithoutCrashing) {
  LlamaGeneratorOptions options = small();
  options.context_tokens = 64;
  auto generator = load(options);
  ASSERT_TRUE(generator);
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "word ";
  const Outcome too_long = run(*generator, ask(long_text), tokens(4));
  ASSERT_FALSE(too_long.result);
  EXPECT_EQ(too_long.result.error().code, ErrorCode::kPayloadTooLarge);
  auto label = generator->classify(ask(long_text));
  ASSERT_FALSE(label);
  EXPECT_EQ(label.error().code, ErrorCode::kPayloadTooLarge);

  const Outcome zero = run(*generator, ask("Hi"), tokens(0));
  ASSERT_FALSE(zero.result);
  EXPECT_EQ(zero.result.error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(zero.result.error().param, "max_tokens");
  EXPECT_NE(zero.done_thread, std::this_thread::get_id());

  // An answer that fills the context ends at its edge instead of overrunning it: every token but
  // the last sampled one went into the 64-token cache.
  const Outcome edge = run(*generator, ask("word word word word word word word word"), tokens(500));
  ASSERT_TRUE(edge.result);
  EXPECT_EQ(edge.result->finish, FinishReason::kLength);
  EXPECT_EQ(edge.result->prompt_tokens + edge.result->completion_tokens, 64 + 1);

  // The generator still works after all that.
  EXPECT_TRUE(run(*generator, ask("Hi"), tokens(2)).result);
}

TEST_F(GeneratorTest, DestructionAnswersEveryRequest) {
  LlamaGeneratorOptions options = small();
  options.max_sequences = 1;
  auto generator = load(options);
  ASSERT_TRUE(generator);
  std::vector<std::unique_ptr<Collector>> collectors;
  for (int i = 0; i < 4; ++i) {
    collectors.push_back(std::make_unique<Collector>());
    collectors.back()->start(*generator, ask("Request " + std::to_string(i)), tokens(200));
  }
  generator.reset();
  int unavailable = 0;
  for (auto& c : collectors) {
    const Outcome out = c->wait();
    if (!out.result) {
      EXPECT_EQ(out.result.error().code, ErrorCode::kUnavailable);
      ++unavailable;
    }
  }
  EXPECT_GE(unavailable, 1);
}

}  // namespace
}  // namespace isartor::inference
