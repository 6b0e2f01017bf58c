#include "pipeline/cloud_layer.h"

namespace isartor::pipeline {

LayerStatus CloudLayer::status() const {
  return {true, provider_->ready(), std::string(provider_->name())};
}

boost::asio::awaitable<Result<std::optional<Answer>>> CloudLayer::answer(ChatRequest& request) {
  Answer answer;
  answer.layer = LayerId::kL3;
  if (request.native) {
    if (request.stream) {
      auto stream = co_await provider_->stream_native(*request.native);
      if (!stream) co_return std::unexpected(stream.error());
      answer.stream = std::move(*stream);
      answer.native_stream = true;
    } else {
      auto native = co_await provider_->complete_native(*request.native);
      if (!native) co_return std::unexpected(native.error());
      answer.native_json = api::dump_json(native->native);
      answer.completion = std::move(native->completion);
    }
  } else if (request.stream) {
    auto stream = co_await provider_->stream(request.body);
    if (!stream) co_return std::unexpected(stream.error());
    answer.stream = std::move(*stream);
  } else {
    auto completion = co_await provider_->complete(request.body);
    if (!completion) co_return std::unexpected(completion.error());
    answer.completion = std::move(*completion);
  }
  co_return std::optional<Answer>(std::move(answer));
}

}  // namespace isartor::pipeline
