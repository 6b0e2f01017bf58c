// isartor.toml, read by toml++ (TOML 1.0): tables become ISARTOR__SECTION__KEY names, scalars
// their text, and arrays (of tables too: [[fallback_providers]], [[gateway_api_keys]]) the JSON
// text the matching variable takes.
#define TOML_HEADER_ONLY 1
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "config/config.h"
#include "config/text.h"

namespace isartor::config {

namespace {

std::string scalar_text(const toml::node& node, int line) {
  if (const auto* s = node.as_string()) return s->get();
  if (const auto* i = node.as_integer()) return std::to_string(i->get());
  if (const auto* f = node.as_floating_point()) return fmt::format("{}", f->get());
  if (const auto* b = node.as_boolean()) return b->get() ? "true" : "false";
  detail::syntax_error(line, "dates and times are not accepted as values");
}

nlohmann::json to_json(const toml::node& node) {
  if (const auto* array = node.as_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const toml::node& item : *array) out.push_back(to_json(item));
    return out;
  }
  if (const auto* table = node.as_table()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, item] : *table) out[std::string(key.str())] = to_json(item);
    return out;
  }
  if (const auto* s = node.as_string()) return s->get();
  if (const auto* i = node.as_integer()) return i->get();
  if (const auto* f = node.as_floating_point()) return f->get();
  if (const auto* b = node.as_boolean()) return b->get();
  detail::syntax_error(static_cast<int>(node.source().begin.line), "dates and times are not accepted as values");
}

void flatten(const toml::table& table, const std::string& prefix, std::map<std::string, std::string>& out) {
  for (const auto& [key, node] : table) {
    const int line = static_cast<int>(node.source().begin.line);
    const std::string name = prefix + detail::to_upper(key.str());
    if (const auto* sub = node.as_table()) {
      flatten(*sub, name + "__", out);
    } else if (node.is_array()) {
      out[name] = to_json(node).dump();
    } else {
      out[name] = scalar_text(node, line);
    }
  }
}

}  // namespace

std::map<std::string, std::string> parse_toml(const std::string& text) {
  toml::table root;
  try {
    root = toml::parse(text);
  } catch (const toml::parse_error& e) {
    detail::syntax_error(static_cast<int>(e.source().begin.line), e.description());
  }
  std::map<std::string, std::string> out;
  flatten(root, "ISARTOR__", out);
  return out;
}

}  // namespace isartor::config
