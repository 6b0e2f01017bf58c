#pragma once
// Internal to isartor_config: small text helpers shared by the TOML, dotenv and config parsers.
#include <expected>
#include <functional>
#include <string>
#include <string_view>

#include "core/strings.h"

namespace isartor::config::detail {

using core::to_lower;
using core::to_upper;
using core::trim;

// `text` double-quoted with ", \ and control characters escaped, so a value fits on one line. Pure.
std::string quote(std::string_view text);

// Parses the quoted string at the start of `text` (which begins with ' or "). Single quotes are
// literal; double quotes take the escapes \" \\ \n \t \r (other escapes are an error when
// `strict_escapes`, else kept as written). Sets `consumed` to the length including both quotes.
// The error is a short description without the value. Pure.
std::expected<std::string, std::string> parse_quoted(std::string_view text, bool strict_escapes,
                                                     size_t& consumed);

// True when `rest` is only blanks, optionally followed by a # comment. Pure.
bool is_blank_or_comment(std::string_view rest);

// Calls `visit(line_number, line)` for each line (1-based), trimmed, CR LF tolerated.
void for_each_line(std::string_view text, const std::function<void(int, std::string_view)>& visit);

// Throws ConfigError("line N: what").
[[noreturn]] void syntax_error(int line, std::string_view what);

// The whole file, or an error "<reason>" (strerror). Reads the file system.
std::expected<std::string, std::string> read_file(const std::string& path);

}  // namespace isartor::config::detail
