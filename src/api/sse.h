#pragma once
// Server-Sent Events (text/event-stream): an incremental parser for upstream bytes and a formatter
// for what we send. Per the WHATWG spec: lines end in \n, \r\n or \r; "data" lines are joined with
// \n; comments (":") are skipped; an event is dispatched on a blank line.
#include <string>
#include <string_view>
#include <vector>

namespace isartor::api {

struct SseEvent {
  std::string event;  // empty = default "message"
  std::string data;
  bool operator==(const SseEvent&) const = default;
};

// Not thread-safe; one parser per stream.
class SseParser {
 public:
  // Feeds the next bytes (any split, even mid-line or mid-UTF-8) and returns completed events.
  std::vector<SseEvent> feed(std::string_view bytes);
  // Flushes a final event that was not followed by a blank line.
  std::vector<SseEvent> finish();

 private:
  std::string line_;
  SseEvent pending_;
  bool has_data_ = false;
  bool last_was_cr_ = false;
  void on_line(std::vector<SseEvent>& out);
};

// "event: <event>\ndata: <data>\n\n" (no event line when empty; multi-line data split). Pure.
std::string format_sse(const SseEvent& event);

}  // namespace isartor::api
