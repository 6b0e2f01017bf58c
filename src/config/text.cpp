#include "config/text.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "config/config.h"

namespace isartor::config::detail {

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::expected<std::string, std::string> parse_quoted(std::string_view text, bool strict_escapes,
                                                     size_t& consumed) {
  const char delimiter = text.front();
  std::string value;
  for (size_t i = 1; i < text.size(); ++i) {
    const char c = text[i];
    if (c == delimiter) {
      consumed = i + 1;
      return value;
    }
    if (c != '\\' || delimiter == '\'') {
      value += c;
      continue;
    }
    if (++i == text.size()) break;
    switch (text[i]) {
      case '"':
        value += '"';
        break;
      case '\\':
        value += '\\';
        break;
      case 'n':
        value += '\n';
        break;
      case 't':
        value += '\t';
        break;
      case 'r':
        value += '\r';
        break;
      default:
        if (strict_escapes) return std::unexpected(fmt::format("unknown escape \\{}", text[i]));
        value += '\\';
        value += text[i];
    }
  }
  return std::unexpected(std::string("unterminated string"));
}

bool is_blank_or_comment(std::string_view rest) {
  rest = trim(rest);
  return rest.empty() || rest.front() == '#';
}

void for_each_line(std::string_view text, const std::function<void(int, std::string_view)>& visit) {
  int line_no = 1;
  for (size_t start = 0; start <= text.size(); ++line_no) {
    const size_t newline = text.find('\n', start);
    const size_t end = newline == std::string_view::npos ? text.size() : newline;
    visit(line_no, trim(text.substr(start, end - start)));
    start = end + 1;
  }
}

void syntax_error(int line, std::string_view what) {
  throw ConfigError(fmt::format("line {}: {}", line, what));
}

std::expected<std::string, std::string> read_file(const std::string& path) {
  // POSIX calls rather than ifstream so a directory or a read failure reports its real errno.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::unexpected(std::string(std::strerror(errno)));
  std::string content;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      content.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      const int error = errno;
      ::close(fd);
      return std::unexpected(std::string(std::strerror(error)));
    }
  }
  ::close(fd);
  return content;
}

}  // namespace isartor::config::detail
