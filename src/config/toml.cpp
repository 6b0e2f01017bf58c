// isartor.toml, read by toml++ (TOML 1.0): tables become ISARTOR__SECTION__KEY names, scalars
// their text, and arrays (of tables too: [[fallback_providers]], [[gateway_api_keys]]) the JSON
// text the matching variable takes.
#define TOML_HEADER_ONLY 1
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string_view>
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

// The length of the run of `quote` at `i` (0 when there is none).
std::size_t run_of(std::string_view text, std::size_t i, char quote) {
  std::size_t n = 0;
  while (i + n < text.size() && text[i + n] == quote) ++n;
  return n;
}

// The 1-based line of the first non-ASCII byte outside a string or comment, or 0. TOML 1.0 allows
// them nowhere else, and toml++ 3.3 (Debian 12) classifies some of them (U+00A1..U+0499 among
// others) where whitespace may stand by reaching __builtin_unreachable(): undefined behaviour in
// a release build (found by the config fuzzer). Such text is refused before toml++ sees it.
std::size_t non_ascii_outside_strings(std::string_view text) {
  enum class In { kCode, kComment, kBasic, kLiteral, kMultiBasic, kMultiLiteral };
  In in = In::kCode;
  std::size_t line = 1;
  // A UTF-8 byte order mark (Windows editors write one) is no character; toml++ skips it too.
  const std::size_t start = text.starts_with("\xEF\xBB\xBF") ? 3 : 0;
  for (std::size_t i = start; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      // A one-line string left open is toml++'s error to report; a comment ends here.
      if (in == In::kComment || in == In::kBasic || in == In::kLiteral) in = In::kCode;
      continue;
    }
    switch (in) {
      case In::kCode:
        if (static_cast<unsigned char>(c) >= 0x80) return line;
        if (c == '#') {
          in = In::kComment;
        } else if (c == '"' || c == '\'') {
          const bool multi = run_of(text, i, c) >= 3;
          if (multi) i += 2;
          in = c == '"' ? (multi ? In::kMultiBasic : In::kBasic) : (multi ? In::kMultiLiteral : In::kLiteral);
        }
        break;
      case In::kComment: break;
      case In::kBasic:
      case In::kMultiBasic:
        if (c == '\\') {
          if (i + 1 < text.size() && text[i + 1] == '\n') ++line;
          ++i;  // the escaped character
        } else if (c == '"' && (in == In::kBasic || run_of(text, i, '"') >= 3)) {
          // A multi-line string may end in up to two quotes of its own before its delimiter.
          if (in == In::kMultiBasic) i += std::min<std::size_t>(run_of(text, i, '"'), 5) - 1;
          in = In::kCode;
        }
        break;
      case In::kLiteral:
      case In::kMultiLiteral:
        if (c == '\'' && (in == In::kLiteral || run_of(text, i, '\'') >= 3)) {
          if (in == In::kMultiLiteral) i += std::min<std::size_t>(run_of(text, i, '\''), 5) - 1;
          in = In::kCode;
        }
        break;
    }
  }
  return 0;
}

}  // namespace

std::map<std::string, std::string> parse_toml(const std::string& text) {
  if (const std::size_t line = non_ascii_outside_strings(text)) {
    detail::syntax_error(static_cast<int>(line), "a non-ASCII character outside a string or comment");
  }
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
