#include "inference/embedder.h"

#include <future>
#include <utility>

namespace isartor::inference {

Result<std::vector<Embedding>> Embedder::embed(std::vector<std::string> texts) {
  std::promise<Result<std::vector<Embedding>>> promise;
  auto future = promise.get_future();
  // The promise outlives the callback: we wait for it below.
  embed_async(std::move(texts),
              [&promise](Result<std::vector<Embedding>> result) { promise.set_value(std::move(result)); });
  return future.get();
}

}  // namespace isartor::inference
