#pragma once
#include "pipeline/layer.h"

namespace isartor::pipeline {

// L3: the configured cloud provider. Always answers (or fails); the last layer of the chain.
class CloudLayer final : public Layer {
 public:
  explicit CloudLayer(std::shared_ptr<providers::ProviderClient> provider) : provider_(std::move(provider)) {}
  LayerId id() const override { return LayerId::kL3; }
  LayerStatus status() const override;
  boost::asio::awaitable<Result<std::optional<Answer>>> answer(ChatRequest& request) override;

 private:
  std::shared_ptr<providers::ProviderClient> provider_;
};

}  // namespace isartor::pipeline
