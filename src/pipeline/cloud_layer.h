#pragma once
#include "pipeline/layer.h"
#include "providers/upstream_chain.h"

namespace isartor::pipeline {

// L3: the chain of cloud providers. Always answers (or fails); the last layer of the chain.
class CloudLayer final : public Layer {
 public:
  explicit CloudLayer(std::shared_ptr<providers::UpstreamChain> chain) : chain_(std::move(chain)) {}
  LayerId id() const override { return LayerId::kL3; }
  LayerStatus status() const override;
  boost::asio::awaitable<Result<std::optional<Answer>>> answer(ChatRequest& request) override;

 private:
  std::shared_ptr<providers::UpstreamChain> chain_;
};

}  // namespace isartor::pipeline
