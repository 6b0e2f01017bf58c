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

}  // namespace isartor::pipeline
