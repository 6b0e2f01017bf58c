#include "pipeline/pipeline.h"

#include "api/openai.h"
#include "core/log.h"

namespace isartor::pipeline {
namespace asio = boost::asio;

namespace {

// Passes chunks through and hands the assembled completion to `on_end` once, when the stream
// ends, however it ends (the client left, the upstream failed or stopped without a
// finish_reason); `cacheable` only when the upstream ended normally with a finish_reason and the
// stream lets its answer be kept. Lives as long as the client reads the stream.
class StoringStream final : public providers::ChunkStream {
 public:
  using OnEnd = std::function<void(const api::Json& completion, bool cacheable)>;
  StoringStream(std::unique_ptr<providers::ChunkStream> inner, OnEnd on_end)
      : inner_(std::move(inner)), on_end_(std::move(on_end)) {}
  ~StoringStream() override {
    try {
      end(false);
    } catch (...) {  // out of memory while accounting: the stream still ends
    }
  }
  StoringStream(const StoringStream&) = delete;
  StoringStream& operator=(const StoringStream&) = delete;

  std::string take_native() override { return inner_->take_native(); }

  asio::awaitable<Result<std::optional<api::Json>>> next() override {
    auto chunk = co_await inner_->next();
    if (chunk && *chunk) {
      assembler_.add_chunk(**chunk);
    } else if (chunk && !*chunk) {
      end(assembler_.finished());
    }
    co_return chunk;
  }

 private:
  void end(bool finished) {
    if (!on_end_) return;
    const OnEnd on_end = std::exchange(on_end_, nullptr);  // once, even if it throws
    on_end(assembler_.completion(), finished && inner_->cacheable());
  }

  std::unique_ptr<providers::ChunkStream> inner_;
  OnEnd on_end_;
  api::CompletionAssembler assembler_;
};

// The request as the provider got it: the client's own when it went as it came.
const api::Json& sent_body(const ChatRequest& request) {
  return request.provider_only && request.native ? request.native->body : request.body;
}

// What an answer cost: the usage it reported, else (a stream cut short before its usage, or one
// whose client turned usage off with stream_options) an estimate, UTF-8 bytes / 4 of what was
// sent (system, messages, tools) and of what came back (count_tokens' rule without a tokenizer).
// The provider bills a cancelled generation for what it produced, so a rate limit must count it.
api::Usage usage_or_estimate(const ChatRequest& request, const api::Json& completion) {
  api::Usage usage = api::usage_of(completion);
  if (usage.prompt_tokens > 0 || usage.completion_tokens > 0) return usage;
  const auto quarter = [](std::size_t bytes) { return static_cast<int64_t>((bytes + 3) / 4); };
  const api::Json& sent = sent_body(request);
  for (const char* key : {"system", "messages", "tools"}) {
    if (auto it = sent.find(key); it != sent.end()) usage.prompt_tokens += quarter(api::dump_json(*it).size());
  }
  usage.completion_tokens = quarter(api::completion_text(completion).size());
  auto choices = completion.find("choices");
  if (choices != completion.end() && choices->is_array() && !choices->empty() && (*choices)[0].is_object()) {
    const api::Json& choice = (*choices)[0];
    auto message = choice.find("message");
    if (message != choice.end() && message->is_object()) {
      auto calls = message->find("tool_calls");
      if (calls != message->end() && !calls->empty()) usage.completion_tokens += quarter(api::dump_json(*calls).size());
    }
  }
  return usage;
}

}  // namespace

bool Answer::parse_completion() {
  if (completion || completion_json.empty()) return completion.has_value();
  auto parsed = api::Json::parse(completion_json, nullptr, false);
  if (!parsed.is_object()) return false;
  completion = std::move(parsed);
  return true;
}

void Pipeline::store_before(std::size_t index, const ChatRequest& request, const api::Json& completion) {
  if (request.provider_only) return;
  for (std::size_t i = 0; i < index; ++i) layers_[i]->store(request, completion);
}

void Pipeline::report_usage(const ChatRequest& request, LayerId layer, const api::Usage& usage) const {
  if (observer_) observer_->on_usage(layer, usage);
  if (request.budget) request.budget->on_usage(layer, usage);
}

asio::awaitable<Result<Answer>> Pipeline::handle(ChatRequest request) {
  bool admitted = false;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const LayerId id = layers_[i]->id();
    if (request.provider_only && id != LayerId::kL3) continue;
    if (!is_cache(id) && !admitted && request.budget) {
      admitted = true;
      CO_RETURN_IF_ERROR(request.budget->before_uncached());
    }
    const auto started = std::chrono::steady_clock::now();
    auto answer = co_await layers_[i]->answer(request);
    if (observer_) {
      const LayerOutcome outcome = !answer                                  ? LayerOutcome::kFailed
                                   : *answer                                ? LayerOutcome::kAnswered
                                   : !request.cache.lookup && is_cache(id) ? LayerOutcome::kBypassed
                                                                            : LayerOutcome::kPassed;
      observer_->on_layer(id, outcome, std::chrono::steady_clock::now() - started, answer ? nullptr : &answer.error());
    }
    if (!answer) co_return std::unexpected(answer.error());
    if (!*answer) continue;
    Answer result = std::move(**answer);
    LOG_DEBUG("isartor::pipeline", "answered by {}", to_string(result.layer));
    // A layer after the first whose answer is only text gets it parsed to store it earlier.
    if (i > 0 && !result.completion_json.empty()) (void)result.parse_completion();
    if (result.completion) {
      store_before(i, request, *result.completion);
      // A cache's answer costs what it cost when stored (no estimate from this request).
      report_usage(request, id, is_cache(id) ? api::usage_of(*result.completion) : usage_or_estimate(request, *result.completion));
    } else if (!result.completion_json.empty()) {
      report_usage(request, id, api::usage_in_text(result.completion_json));
    } else if (result.stream && (i > 0 || observer_ || request.budget)) {
      auto req = std::make_shared<const ChatRequest>(std::move(request));
      result.stream = std::make_unique<StoringStream>(
          std::move(result.stream), [this, i, id, req](const api::Json& completion, bool cacheable) {
            if (cacheable) store_before(i, *req, completion);
            report_usage(*req, id, usage_or_estimate(*req, completion));
          });
    }
    co_return result;
  }
  co_return fail(ErrorCode::kUnavailable, "no layer could answer this request");
}

}  // namespace isartor::pipeline
