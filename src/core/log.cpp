#include "core/log.h"

#include "core/strings.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <utility>
#include <vector>

namespace isartor::log {

namespace {

struct Directive {
  std::string target;
  Level level;
};

// Written only by init() at start-up, read without locks afterwards (see log.h).
struct Filter {
  Level default_level = Level::kInfo;
  std::vector<Directive>
      directives;  // longest target first, so the first match is the most specific
  Level most_verbose = Level::kInfo;  // lets enabled() reject most calls without a scan
};

Filter g_filter;
std::function<void(std::string_view)> g_sink;

std::optional<Level> parse_level(std::string_view word) {
  static constexpr std::pair<std::string_view, Level> kLevels[] = {
      {"trace", Level::kTrace}, {"debug", Level::kDebug}, {"info", Level::kInfo},
      {"warn", Level::kWarn},   {"error", Level::kError}, {"off", Level::kOff}};
  for (const auto& [name, level] : kLevels) {
    if (core::iequals(name, word)) return level;
  }
  return std::nullopt;
}

const char* level_name(Level level) {
  switch (level) {
    case Level::kTrace:
      return "TRACE";
    case Level::kDebug:
      return "DEBUG";
    case Level::kInfo:
      return "INFO";
    case Level::kWarn:
      return "WARN";
    case Level::kError:
      return "ERROR";
    case Level::kOff:
      return "OFF";
  }
  return "?";
}

bool target_matches(std::string_view directive, std::string_view target) {
  return target.starts_with(directive) &&
         (target.size() == directive.size() || target.substr(directive.size()).starts_with("::"));
}

// "2026-11-25T14:33:00.123Z" in UTC.
std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millis);
}

// Keeps a record on one line even when a message carries client-supplied text with newlines.
void append_escaped(std::string& out, std::string_view message) {
  for (char c : message) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
}

void write_stderr(std::string_view line) {
  while (!line.empty()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report a failing stderr
    }
    line.remove_prefix(static_cast<size_t>(n));
  }
}

// The one thread that writes stderr. Producers append to `pending_` under the lock (a copy of
// one line); the writer swaps the whole batch out and writes it without the lock held.
class StderrWriter {
 public:
  StderrWriter() : thread_([this] { run(); }) {}

  void push(std::string_view line) {
    bool first = false;
    {
      std::lock_guard lock(mutex_);
      first = pending_.empty() && dropped_ == 0;
      if (pending_.size() + line.size() > kMaxPendingLogBytes) {
        ++dropped_;
      } else {
        pending_ += line;
      }
    }
    // Only the first line of a batch wakes the writer (a futex call); the rest ride along.
    if (first) wake_.notify_one();
  }

  // Waits (at most kFlushWait: a stalled stderr must not hold the process at exit) until every
  // line queued before the call is written.
  void flush() {
    std::unique_lock lock(mutex_);
    const uint64_t target = queued_batches_ + (pending_.empty() && dropped_ == 0 ? 0 : 1);
    wake_.notify_one();
    written_.wait_for(lock, kFlushWait, [&] { return written_batches_ >= target; });
  }

 private:
  static constexpr auto kFlushWait = std::chrono::seconds(2);
  std::mutex mutex_;
  std::condition_variable wake_, written_;
  std::string pending_;
  uint64_t dropped_ = 0;
  uint64_t queued_batches_ = 0;   // batches taken by the writer
  uint64_t written_batches_ = 0;  // of those, written
  std::thread thread_;

  [[noreturn]] void run() {
    std::string batch;
    for (;;) {
      uint64_t dropped = 0;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return !pending_.empty() || dropped_ > 0; });
        batch.swap(pending_);
        dropped = std::exchange(dropped_, 0);
        ++queued_batches_;
      }
      write_stderr(batch);
      if (dropped > 0) {
        write_stderr(fmt::format("{}  WARN isartor::log > {} log lines dropped: stderr did not keep up\n", timestamp(),
                                 dropped));
      }
      batch.clear();
      {
        std::lock_guard lock(mutex_);
        ++written_batches_;
      }
      written_.notify_all();
    }
  }
};

// Started on the first line and never destroyed: the thread outlives static destructors that may
// still log; whatever is queued at exit is flushed by an atexit handler.
StderrWriter& stderr_writer() {
  static StderrWriter* writer = [] {
    auto* w = new StderrWriter();
    std::atexit([] { flush(); });
    return w;
  }();
  return *writer;
}

}  // namespace

void init(std::string_view filter_spec) {
  Filter filter;
  while (!filter_spec.empty()) {
    const size_t comma = filter_spec.find(',');
    const std::string_view item = core::trim(filter_spec.substr(0, comma));
    filter_spec =
        comma == std::string_view::npos ? std::string_view() : filter_spec.substr(comma + 1);
    const size_t equals = item.find('=');
    if (equals == std::string_view::npos) {
      if (const auto level = parse_level(item)) filter.default_level = *level;
      continue;
    }
    const std::string_view target = core::trim(item.substr(0, equals));
    const auto level = parse_level(core::trim(item.substr(equals + 1)));
    if (!level) continue;
    if (target.empty()) {
      filter.default_level = *level;
      continue;
    }
    // A repeated target: the later directive replaces the earlier one.
    std::erase_if(filter.directives, [&](const Directive& d) { return d.target == target; });
    filter.directives.push_back({std::string(target), *level});
  }
  std::ranges::stable_sort(filter.directives, [](const Directive& a, const Directive& b) {
    return a.target.size() > b.target.size();
  });
  filter.most_verbose = filter.default_level;
  for (const Directive& d : filter.directives)
    filter.most_verbose = std::min(filter.most_verbose, d.level);
  g_filter = std::move(filter);
}

void init_from_env() {
  const char* spec = std::getenv("ISARTOR_LOG");
  if (spec == nullptr) spec = std::getenv("RUST_LOG");
  init(spec == nullptr ? "info" : spec);
}

bool enabled(Level level, std::string_view target) {
  if (level == Level::kOff || level < g_filter.most_verbose) return false;
  for (const Directive& d : g_filter.directives) {
    if (target_matches(d.target, target)) return level >= d.level;
  }
  return level >= g_filter.default_level;
}

void write(Level level, std::string_view target, std::string_view message) {
  std::string line = fmt::format("{} {:>5} {} > ", timestamp(), level_name(level), target);
  append_escaped(line, message);
  line += '\n';
  if (g_sink) {
    g_sink(line);
  } else {
    stderr_writer().push(line);
  }
}

void flush() {
  if (!g_sink) stderr_writer().flush();
}

void set_sink(std::function<void(std::string_view)> sink) { g_sink = std::move(sink); }

std::optional<std::uint64_t> Throttle::allow(std::chrono::steady_clock::time_point now) {
  if (last_ && now - *last_ < interval_) {
    ++held_back_;
    return std::nullopt;
  }
  last_ = now;
  return std::exchange(held_back_, 0);
}

}  // namespace isartor::log
