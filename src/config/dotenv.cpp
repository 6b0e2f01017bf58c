// .env files as docker compose and python-dotenv write them: KEY=VALUE, optional `export `,
// quoted values, whole-line and trailing comments.
#include <fmt/format.h>

#include <cctype>

#include "config/config.h"
#include "config/text.h"

namespace isartor::config {

namespace {

bool is_valid_key(std::string_view key) {
  if (key.empty() || std::isdigit(static_cast<unsigned char>(key.front())) != 0) return false;
  for (char c : key) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_' && c != '.') return false;
  }
  return true;
}

// Unquoted value (`raw` is everything after the =): a # starts a comment only after a blank, as
// in the shell, so "a#b" and "KEY=#b" keep their #.
std::string_view unquoted_value(std::string_view raw) {
  for (size_t i = 1; i < raw.size(); ++i) {
    if (raw[i] == '#' && (raw[i - 1] == ' ' || raw[i - 1] == '\t')) {
      return detail::trim(raw.substr(0, i));
    }
  }
  return detail::trim(raw);
}

}  // namespace

std::map<std::string, std::string> parse_dotenv(const std::string& text) {
  using detail::syntax_error;
  std::map<std::string, std::string> out;
  detail::for_each_line(text, [&](int line_no, std::string_view line) {
    if (detail::is_blank_or_comment(line)) return;
    if (line.starts_with("export ") || line.starts_with("export\t")) {
      line = detail::trim(line.substr(7));
    }
    const size_t equals = line.find('=');
    if (equals == std::string_view::npos) syntax_error(line_no, "expected KEY=VALUE");
    const std::string_view key = detail::trim(line.substr(0, equals));
    if (!is_valid_key(key)) syntax_error(line_no, "bad variable name (use letters, digits and _)");
    const std::string_view raw = line.substr(equals + 1);
    const std::string_view rest = detail::trim(raw);

    std::string value;
    if (!rest.empty() && (rest.front() == '"' || rest.front() == '\'')) {
      size_t consumed = 0;
      auto parsed = detail::parse_quoted(rest, /*strict_escapes=*/false, consumed);
      if (!parsed) syntax_error(line_no, parsed.error());
      if (!detail::is_blank_or_comment(rest.substr(consumed))) {
        syntax_error(line_no, "unexpected text after the closing quote");
      }
      value = std::move(*parsed);
    } else {
      value = std::string(unquoted_value(raw));
    }
    out[std::string(key)] = std::move(value);
  });
  return out;
}

}  // namespace isartor::config
