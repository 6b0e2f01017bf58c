#pragma once
// A scripted Generator for tests: classify_async answers `label` (or `classify_error`),
// generate_async answers `text` with `finish` (or `generate_error`), each on a fresh worker thread
// like the real one. Records what it was asked. Thread-safe.
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

#include "inference/generator.h"

namespace isartor::fakes {

class FakeGenerator final : public inference::Generator {
 public:
  // The script; set before use.
  inference::Label label = inference::Label::kSimple;
  std::optional<Error> classify_error;
  std::string text = "Paris is the capital of France.";
  inference::FinishReason finish = inference::FinishReason::kStop;
  std::optional<Error> generate_error;

  std::string_view name() const override { return "fake.gguf"; }

  void classify_async(std::vector<inference::ChatMessage> messages, inference::ClassifyCallback done) override {
    record(messages, classify_calls_);
    std::thread([this, done = std::move(done)] {
      if (classify_error) return done(std::unexpected(*classify_error));
      done(label);
    }).detach();
  }

  inference::Cancellation generate_async(std::vector<inference::ChatMessage> messages,
                                         inference::GenerateOptions options, inference::TokenCallback on_token,
                                         inference::GenerateCallback done) override {
    record(messages, generate_calls_);
    {
      std::lock_guard lock(mu_);
      last_options_ = options;
    }
    std::thread([this, on_token = std::move(on_token), done = std::move(done)] {
      if (generate_error) return done(std::unexpected(*generate_error));
      if (on_token && !text.empty()) on_token(text);
      inference::Generation g;
      g.text = text;
      g.prompt_tokens = 7;
      g.completion_tokens = 5;
      g.finish = finish;
      done(std::move(g));
    }).detach();
    return {};
  }

  int classify_calls() const { return classify_calls_.load(); }
  int generate_calls() const { return generate_calls_.load(); }
  std::vector<inference::ChatMessage> last_messages() const {
    std::lock_guard lock(mu_);
    return last_messages_;
  }
  inference::GenerateOptions last_options() const {
    std::lock_guard lock(mu_);
    return last_options_;
  }

 private:
  void record(const std::vector<inference::ChatMessage>& messages, std::atomic<int>& counter) {
    std::lock_guard lock(mu_);
    last_messages_ = messages;
    ++counter;
  }

  mutable std::mutex mu_;
  std::vector<inference::ChatMessage> last_messages_;
  inference::GenerateOptions last_options_;
  std::atomic<int> classify_calls_{0};
  std::atomic<int> generate_calls_{0};
};

}  // namespace isartor::fakes
