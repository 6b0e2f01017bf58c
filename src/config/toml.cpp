// The TOML subset isartor.toml may use: [section] / [section.sub] headers, bare (optionally
// dotted) keys, basic and literal one-line strings, integers, floats and booleans, # comments.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include "config/config.h"
#include "config/text.h"

namespace isartor::config {

namespace {

bool is_bare_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
}

// "a.b" -> "A__B"; empty when a part is not a bare key.
std::string flatten_dotted(std::string_view dotted) {
  std::string out;
  while (true) {
    const size_t dot = dotted.find('.');
    const std::string_view part = detail::trim(dotted.substr(0, dot));
    if (part.empty()) return {};
    for (char c : part) {
      if (!is_bare_key_char(c)) return {};
    }
    if (!out.empty()) out += "__";
    out += detail::to_upper(part);
    if (dot == std::string_view::npos) return out;
    dotted.remove_prefix(dot + 1);
  }
}

// Integer ([+-]digits with single underscores between digits) or float (adds . and/or exponent).
// Returns the canonical text (no underscores, no leading +), or empty when it is neither.
std::string parse_number(std::string_view text) {
  std::string digits;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '_') {
      digits += text[i];
      continue;
    }
    const bool between_digits = i > 0 && i + 1 < text.size() &&
                                std::isdigit(static_cast<unsigned char>(text[i - 1])) != 0 &&
                                std::isdigit(static_cast<unsigned char>(text[i + 1])) != 0;
    if (!between_digits) return {};
  }
  if (!digits.empty() && digits.front() == '+') digits.erase(0, 1);
  const std::string_view unsigned_part =
      !digits.empty() && digits.front() == '-' ? std::string_view(digits).substr(1) : digits;
  if (unsigned_part.empty() ||
      std::isdigit(static_cast<unsigned char>(unsigned_part.front())) == 0) {
    return {};
  }
  double value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || !std::isfinite(value)) return {};
  return digits;
}

}  // namespace

std::map<std::string, std::string> parse_toml(const std::string& text) {
  using detail::syntax_error;
  std::map<std::string, std::string> out;
  std::string section;  // "LAYER2__" style prefix, empty at top level
  detail::for_each_line(text, [&](int line_no, std::string_view line) {
    if (detail::is_blank_or_comment(line)) return;

    if (line.front() == '[') {
      const size_t close = line.find(']');
      if (line.starts_with("[[")) syntax_error(line_no, "arrays of tables are not supported");
      if (close == std::string_view::npos) syntax_error(line_no, "expected ] after the table name");
      const std::string name = flatten_dotted(line.substr(1, close - 1));
      if (name.empty()) syntax_error(line_no, "bad table name");
      if (!detail::is_blank_or_comment(line.substr(close + 1))) {
        syntax_error(line_no, "unexpected text after the table header");
      }
      section = name + "__";
      return;
    }

    const size_t equals = line.find('=');
    if (equals == std::string_view::npos) syntax_error(line_no, "expected key = value");
    const std::string key = flatten_dotted(line.substr(0, equals));
    if (key.empty()) syntax_error(line_no, "bad key (use letters, digits, _ and -)");
    const std::string_view rest = detail::trim(line.substr(equals + 1));
    if (rest.empty()) syntax_error(line_no, "missing value");

    std::string value;
    size_t consumed = 0;
    if (rest.front() == '"' || rest.front() == '\'') {
      if (rest.starts_with("\"\"\"") || rest.starts_with("'''")) {
        syntax_error(line_no, "multi-line strings are not supported");
      }
      auto parsed = detail::parse_quoted(rest, /*strict_escapes=*/true, consumed);
      if (!parsed) syntax_error(line_no, parsed.error());
      value = std::move(*parsed);
    } else {
      consumed = std::min(rest.find('#'), rest.size());
      const std::string_view word = detail::trim(rest.substr(0, consumed));
      value = word == "true" || word == "false" ? std::string(word) : parse_number(word);
      if (value.empty()) syntax_error(line_no, "expected a quoted string, a number, true or false");
    }
    if (!detail::is_blank_or_comment(rest.substr(consumed))) {
      syntax_error(line_no, "unexpected text after the value");
    }
    std::string name = "ISARTOR__" + section + key;
    if (out.contains(name)) syntax_error(line_no, fmt::format("duplicate key {}", name));
    out.emplace(std::move(name), std::move(value));
  });
  return out;
}

}  // namespace isartor::config
