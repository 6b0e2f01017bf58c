#include "pipeline/layer_support.h"

namespace isartor::pipeline {

std::optional<std::string> message_text(const api::Json& content) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) return std::nullopt;
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object()) return std::nullopt;
    auto type = part.find("type");
    auto part_text = part.find("text");
    if (type == part.end() || *type != "text" || part_text == part.end() || !part_text->is_string()) return std::nullopt;
    if (!text.empty()) text += '\n';
    text += part_text->get<std::string>();
  }
  return text;
}

boost::asio::awaitable<Result<std::vector<inference::Embedding>>> embed_on_worker(inference::Embedder& embedder,
                                                                                  std::vector<std::string> texts) {
  // A named lambda: g++ 12 mishandles one built inside the co_await expression.
  auto start = [&embedder, texts = std::move(texts)](auto done) mutable { embedder.embed_async(std::move(texts), done); };
  co_return co_await await_worker<std::vector<inference::Embedding>>(std::move(start));
}

}  // namespace isartor::pipeline
