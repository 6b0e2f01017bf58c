#include "inference/generator.h"

#include <fmt/format.h>

#include <cctype>
#include <future>
#include <string>
#include <utility>

namespace isartor::inference {

const std::string_view kClassifyInstruction =
    "You route requests for an AI assistant. A request is SIMPLE if a small language model can answer it "
    "correctly in a few sentences: greetings, small talk, short factual questions, definitions, unit "
    "conversions, spelling, grammar, rewording or formatting a short text. A request is COMPLEX if it needs "
    "multi-step reasoning, mathematics, writing or debugging code, analysis, long or creative writing, "
    "specialised expertise or current information. Reply with one word: SIMPLE or COMPLEX.";

std::vector<ChatMessage> classification_messages(const std::vector<ChatMessage>& messages) {
  std::string request = "Request:\n";
  if (messages.size() == 1) {
    request += messages.front().content;
  } else {
    for (size_t i = 0; i < messages.size(); ++i) {
      if (i > 0) request += "\n\n";
      request += fmt::format("{}: {}", messages[i].role, messages[i].content);
    }
  }
  return {{"system", std::string(kClassifyInstruction)}, {"user", std::move(request)}};
}

const char* const kLabelGrammar = R"(root ::= "SIMPLE" | "COMPLEX")";

std::string_view classify_mode_name(ClassifyMode mode) {
  return mode == ClassifyMode::kGrammar ? "grammar" : "logits";
}

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

Result<Label> Generator::classify(std::vector<ChatMessage> messages, ClassifyOptions options) {
  std::promise<Result<Label>> promise;
  auto future = promise.get_future();
  // The promise outlives the callback: we wait for it below.
  classify_async(std::move(messages), options,
                 [&promise](Result<Label> result) { promise.set_value(std::move(result)); });
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
