#include "api/sse.h"

#include <cstring>

namespace isartor::api {

std::vector<SseEvent> SseParser::feed(std::string_view bytes) {
  std::vector<SseEvent> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    // The LF of a CRLF may arrive in the next feed; it must not end a second (empty) line.
    if (last_was_cr_ && bytes[pos] == '\n') {
      last_was_cr_ = false;
      ++pos;
      continue;
    }
    size_t end = bytes.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) {
      line_.append(bytes.substr(pos));
      last_was_cr_ = false;
      break;
    }
    line_.append(bytes.substr(pos, end - pos));
    last_was_cr_ = bytes[end] == '\r';
    on_line(out);
    pos = end + 1;
  }
  return out;
}

std::vector<SseEvent> SseParser::finish() {
  std::vector<SseEvent> out;
  if (!line_.empty()) on_line(out);
  on_line(out);  // the blank line the stream never sent
  last_was_cr_ = false;
  return out;
}

void SseParser::on_line(std::vector<SseEvent>& out) {
  std::string line = std::move(line_);
  line_.clear();
  if (line.empty()) {
    // Per the spec an event without data lines is dropped, its event type included.
    if (has_data_) out.push_back(std::move(pending_));
    pending_ = SseEvent{};
    has_data_ = false;
    return;
  }
  if (line.front() == ':') return;  // comment / keep-alive
  std::string_view field = line;
  std::string_view value;
  if (size_t colon = field.find(':'); colon != std::string_view::npos) {
    value = field.substr(colon + 1);
    field = field.substr(0, colon);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) pending_.data += '\n';
    pending_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    pending_.event = std::string(value);
  }
  // "id", "retry" and unknown fields carry nothing we use.
}

std::string format_sse(const SseEvent& event) {
  std::string_view data = event.data;
  std::string out;
  out.reserve(event.event.size() + data.size() + 16);
  if (!event.event.empty()) out.append("event: ").append(event.event).append("\n");
  // Every line terminator inside the data would end the field, so each line gets its own "data:".
  // JSON text (every event we send) has none: one memchr each finds that out.
  const bool one_line = std::memchr(data.data(), '\n', data.size()) == nullptr &&
                        std::memchr(data.data(), '\r', data.size()) == nullptr;
  if (one_line) {
    out.append("data: ").append(data).append("\n\n");
    return out;
  }
  while (true) {
    size_t end = data.find_first_of("\r\n");
    out += "data: ";
    out.append(data.substr(0, end));
    out += '\n';
    if (end == std::string_view::npos) break;
    size_t skip = (data[end] == '\r' && end + 1 < data.size() && data[end + 1] == '\n') ? 2 : 1;
    data.remove_prefix(end + skip);
  }
  out += '\n';
  return out;
}

}  // namespace isartor::api
