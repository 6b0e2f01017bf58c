#include "pipeline/cloud_layer.h"

namespace isartor::pipeline {

LayerStatus CloudLayer::status() const { return {true, chain_->ready(), std::string(chain_->primary())}; }

boost::asio::awaitable<Result<std::optional<Answer>>> CloudLayer::answer(ChatRequest& request) {
  providers::ChatCall call;
  call.format = request.format;
  call.body = &request.body;
  call.native = request.native ? &*request.native : nullptr;
  call.headers = &request.client_headers;
  call.stream = request.stream;
  call.provider_only = request.provider_only;
  CO_ASSIGN_OR_RETURN(auto upstream, co_await chain_->chat(call));
  Answer answer;
  answer.layer = LayerId::kL3;
  answer.provider = std::move(upstream.provider);
  answer.stream = std::move(upstream.stream);
  answer.native_stream = upstream.native_stream;
  if (upstream.native) answer.native_json = api::dump_json(*upstream.native);
  answer.completion = std::move(upstream.completion);
  co_return std::optional<Answer>(std::move(answer));
}

}  // namespace isartor::pipeline
