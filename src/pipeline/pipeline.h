#pragma once
#include <vector>

#include "pipeline/layer.h"
#include "pipeline/observer.h"

namespace isartor::pipeline {

// Runs a request through the layers in order. A streamed answer is wrapped so that, once it
// finished normally, the assembled completion is stored in the earlier layers; an interrupted
// stream is never stored. Every layer tried and every complete answer's usage is told to the
// observer, when there is one.
class Pipeline {
 public:
  explicit Pipeline(std::vector<std::unique_ptr<Layer>> layers, std::shared_ptr<Observer> observer = nullptr)
      : layers_(std::move(layers)), observer_(std::move(observer)) {}

  // Thread-safe; call from the request's coroutine.
  boost::asio::awaitable<Result<Answer>> handle(ChatRequest request);

  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }

 private:
  std::vector<std::unique_ptr<Layer>> layers_;
  std::shared_ptr<Observer> observer_;
  void store_before(std::size_t index, const ChatRequest& request, const api::Json& completion);
  // Tells the observer and the request's budget.
  void report_usage(const ChatRequest& request, LayerId layer, const api::Usage& usage) const;
};

}  // namespace isartor::pipeline
