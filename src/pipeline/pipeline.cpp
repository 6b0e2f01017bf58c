#include "pipeline/pipeline.h"

#include "api/openai.h"
#include "core/log.h"

namespace isartor::pipeline {
namespace asio = boost::asio;

namespace {

// Passes chunks through and hands the assembled completion to `on_complete` once the upstream
// ended normally with a finish_reason, saying whether the stream lets its answer be kept. Lives as
// long as the client reads the stream.
class StoringStream final : public providers::ChunkStream {
 public:
  StoringStream(std::unique_ptr<providers::ChunkStream> inner,
                std::function<void(const api::Json&, bool cacheable)> on_complete)
      : inner_(std::move(inner)), on_complete_(std::move(on_complete)) {}

  std::string take_native() override { return inner_->take_native(); }

  asio::awaitable<Result<std::optional<api::Json>>> next() override {
    auto chunk = co_await inner_->next();
    if (chunk && *chunk) {
      assembler_.add_chunk(**chunk);
    } else if (chunk && !*chunk && assembler_.finished() && on_complete_) {
      on_complete_(assembler_.completion(), inner_->cacheable());
      on_complete_ = nullptr;
    }
    co_return chunk;
  }

 private:
  std::unique_ptr<providers::ChunkStream> inner_;
  std::function<void(const api::Json&, bool cacheable)> on_complete_;
  api::CompletionAssembler assembler_;
};

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
      report_usage(request, id, api::usage_of(*result.completion));
    } else if (!result.completion_json.empty()) {
      report_usage(request, id, api::usage_in_text(result.completion_json));
    } else if (result.stream && (i > 0 || observer_ || request.budget)) {
      result.stream = std::make_unique<StoringStream>(
          std::move(result.stream), [this, i, id, req = std::move(request)](const api::Json& completion, bool cacheable) {
            if (cacheable) store_before(i, req, completion);
            report_usage(req, id, api::usage_of(completion));
          });
    }
    co_return result;
  }
  co_return fail(ErrorCode::kUnavailable, "no layer could answer this request");
}

}  // namespace isartor::pipeline
