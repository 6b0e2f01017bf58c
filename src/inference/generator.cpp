#include "inference/generator.h"

#include <cctype>
#include <future>
#include <string>
#include <utility>

namespace isartor::inference {

std::string_view label_name(Label label) {
  return label == Label::kSimple ? "SIMPLE" : "COMPLEX";
}

Label parse_label(std::string_view text) {
  std::string word;
  // A trailing '\0' closes the last word.
  for (size_t i = 0; i <= text.size(); ++i) {
    const unsigned char c = i < text.size() ? static_cast<unsigned char>(text[i]) : 0;
    if (std::isalpha(c)) {
      word.push_back(static_cast<char>(std::toupper(c)));
      continue;
    }
    if (word == label_name(Label::kSimple)) return Label::kSimple;
    if (word == label_name(Label::kComplex)) return Label::kComplex;
    word.clear();
  }
  return Label::kComplex;
}

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kTimeout:
      return "timeout";
  }
  return "stop";
}

Result<Label> Generator::classify(std::vector<ChatMessage> messages) {
  std::promise<Result<Label>> promise;
  auto future = promise.get_future();
  // The promise outlives the callback: we wait for it below.
  classify_async(std::move(messages), [&promise](Result<Label> result) { promise.set_value(std::move(result)); });
  return future.get();
}

Result<Generation> Generator::generate(std::vector<ChatMessage> messages, GenerateOptions options,
                                       TokenCallback on_token) {
  std::promise<Result<Generation>> promise;
  auto future = promise.get_future();
  generate_async(std::move(messages), std::move(options), std::move(on_token),
                 [&promise](Result<Generation> result) { promise.set_value(std::move(result)); });
  return future.get();
}

}  // namespace isartor::inference
