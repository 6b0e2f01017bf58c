#pragma once
// A scripted Generator for tests: classify_async answers `label` (or `classify_error`) after
// `classify_delay`, generate_async streams `text` in pieces of `piece_bytes`, `token_delay` apart,
// and ends with `finish` (or fails: `generate_error` at once, `error_after_text` after the text); each call runs on a
// fresh worker thread like the real one and honours its Cancellation and timeout between steps. Records what it was
// asked. Thread-safe. The destructor waits for the calls still running (they read the script), so a test that
// ends with a call in flight waits for its remaining delays or its cancellation.
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "inference/generator.h"

namespace isartor::fakes {

class FakeGenerator final : public inference::Generator {
 public:
  using Clock = std::chrono::steady_clock;

  // The script; set before use.
  inference::Label label = inference::Label::kSimple;
  std::optional<Error> classify_error;
  std::chrono::milliseconds classify_delay{0};
  std::string text = "Paris is the capital of France.";
  std::size_t piece_bytes = 1 << 20;  // whole text in one piece by default
  std::chrono::milliseconds token_delay{0};
  inference::FinishReason finish = inference::FinishReason::kStop;
  std::optional<Error> generate_error;    // instead of any text
  std::optional<Error> error_after_text;  // after streaming the text

  FakeGenerator() = default;
  FakeGenerator(const FakeGenerator&) = delete;
  FakeGenerator& operator=(const FakeGenerator&) = delete;
  ~FakeGenerator() override {
    // Joined outside the lock: a finishing call's callback may start another one.
    for (;;) {
      std::vector<std::thread> running;
      {
        std::lock_guard lock(workers_mu_);
        running.swap(workers_);
      }
      if (running.empty()) return;
      for (std::thread& worker : running) worker.join();
    }
  }

  std::string_view name() const override { return "fake.gguf"; }

  inference::Cancellation classify_async(std::vector<inference::ChatMessage> messages,
                                         inference::ClassifyOptions options,
                                         inference::ClassifyCallback done) override {
    record(messages, classify_calls_);
    last_classify_timeout_ = options.timeout;
    inference::Cancellation cancel;
    const auto deadline = deadline_of(options.timeout);
    start([this, cancel, deadline, done = std::move(done)] {
      if (auto stopped = wait(classify_delay, cancel, deadline)) {
        ++cancelled_;
        return done(std::unexpected(
            Error(*stopped == inference::FinishReason::kTimeout ? ErrorCode::kUpstreamTimeout : ErrorCode::kUnavailable,
                  "stopped")));
      }
      if (classify_error) return done(std::unexpected(*classify_error));
      done(label);
    });
    return cancel;
  }

  inference::Cancellation generate_async(std::vector<inference::ChatMessage> messages,
                                         inference::GenerateOptions options, inference::TokenCallback on_token,
                                         inference::GenerateCallback done) override {
    record(messages, generate_calls_);
    {
      std::lock_guard lock(mu_);
      last_options_ = options;
    }
    inference::Cancellation cancel;
    const auto deadline = deadline_of(options.timeout);
    start([this, cancel, deadline, on_token = std::move(on_token), done = std::move(done)] {
      if (generate_error) return done(std::unexpected(*generate_error));
      inference::Generation g;
      g.prompt_tokens = 7;
      g.finish = finish;
      for (std::size_t at = 0; at < text.size(); at += piece_bytes) {
        if (auto stopped = wait(token_delay, cancel, deadline)) {
          ++cancelled_;
          g.finish = *stopped;
          break;
        }
        const std::string piece = text.substr(at, piece_bytes);
        g.text += piece;
        ++g.completion_tokens;
        if (on_token) on_token(piece);
      }
      if (error_after_text) return done(std::unexpected(*error_after_text));
      done(std::move(g));
    });
    return cancel;
  }

  int classify_calls() const { return classify_calls_.load(); }
  int generate_calls() const { return generate_calls_.load(); }
  // Calls that ended early because of their Cancellation or timeout.
  int cancelled() const { return cancelled_.load(); }
  std::chrono::milliseconds last_classify_timeout() const { return last_classify_timeout_.load(); }
  std::vector<inference::ChatMessage> last_messages() const {
    std::lock_guard lock(mu_);
    return last_messages_;
  }
  inference::GenerateOptions last_options() const {
    std::lock_guard lock(mu_);
    return last_options_;
  }

 private:
  static Clock::time_point deadline_of(std::chrono::milliseconds timeout) {
    return timeout.count() > 0 ? Clock::now() + timeout : Clock::time_point::max();
  }

  // Sleeps `delay` in small steps; why it stopped early, if it did.
  static std::optional<inference::FinishReason> wait(std::chrono::milliseconds delay,
                                                     const inference::Cancellation& cancel,
                                                     Clock::time_point deadline) {
    const auto until = Clock::now() + delay;
    for (;;) {
      if (cancel.requested()) return inference::FinishReason::kCancelled;
      if (Clock::now() >= deadline) return inference::FinishReason::kTimeout;
      if (Clock::now() >= until) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  // Runs `work` on a thread of its own, joined by the destructor.
  template <class Work>
  void start(Work work) {
    std::lock_guard lock(workers_mu_);
    workers_.emplace_back(std::move(work));
  }

  void record(const std::vector<inference::ChatMessage>& messages, std::atomic<int>& counter) {
    std::lock_guard lock(mu_);
    last_messages_ = messages;
    ++counter;
  }

  mutable std::mutex mu_;
  std::mutex workers_mu_;
  std::vector<std::thread> workers_;
  std::vector<inference::ChatMessage> last_messages_;
  inference::GenerateOptions last_options_;
  std::atomic<int> classify_calls_{0};
  std::atomic<int> generate_calls_{0};
  std::atomic<int> cancelled_{0};
  std::atomic<std::chrono::milliseconds> last_classify_timeout_{std::chrono::milliseconds(0)};
};

}  // namespace isartor::fakes
