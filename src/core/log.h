#pragma once
// Levelled, structured logging to stderr, filtered like Rust's env_logger/tracing:
// ISARTOR_LOG (or RUST_LOG) = "info", "isartor=debug", "warn,isartor::http=trace", ...
// Lines look like: 2026-11-25T14:33:00.123Z  INFO isartor > Listening on 0.0.0.0:8080 key=value
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace isartor::log {

enum class Level { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };

// Parses a filter spec and installs it. Not thread-safe against concurrent logging: call at start-up
// (after it the filter is immutable, which is what lets enabled() read it without locks).
// Comma-separated directives: a bare level sets the default; `target=level` applies to `target`
// and its "target::..." children, the longest matching target winning. Levels: trace, debug,
// info, warn, error, off (any case). Unknown level words are ignored (the default "info" stays).
void init(std::string_view filter_spec);

// Installs the filter from ISARTOR_LOG, else RUST_LOG, else "info". Call once at start-up.
void init_from_env();

// True when a message of `level` for `target` (e.g. "isartor::http") would be written. Thread-safe.
bool enabled(Level level, std::string_view target);

// Queues one line for stderr and returns without waiting for it: one writer thread writes the
// lines in order, so a request's thread never waits on a slow terminal or journal. At most
// kMaxPendingLogBytes wait; beyond that lines are dropped, and the writer then says how many.
// Control characters in `message` are escaped (a newline becomes "\\n") so a record is always
// one line. Thread-safe.
void write(Level level, std::string_view target, std::string_view message);

inline constexpr std::size_t kMaxPendingLogBytes = 4 * 1024 * 1024;

// Returns once every line queued before the call is written. Called at exit; thread-safe.
void flush();

// For tests only: sends each finished line (with its trailing '\n') to `sink` instead of stderr;
// an empty function restores stderr. Not thread-safe: call while nothing is logging.
void set_sink(std::function<void(std::string_view)> sink);

// Lets one line through per interval and counts the ones held back, for failures that can repeat
// millions of times a second (accept() without file descriptors). One owner; not thread-safe.
class Throttle {
 public:
  explicit Throttle(std::chrono::steady_clock::duration interval) : interval_(interval) {}
  // The number of lines held back since the last one let through, when one may be written now;
  // std::nullopt (and one more held back) otherwise.
  std::optional<std::uint64_t> allow(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

 private:
  std::chrono::steady_clock::duration interval_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  std::uint64_t held_back_ = 0;
};

template <class... Args>
void emit(Level level, std::string_view target, fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(level, target)) write(level, target, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace isartor::log

#define ISARTOR_LOG_AT(level, target, ...) ::isartor::log::emit(level, target, __VA_ARGS__)
#define LOG_TRACE(target, ...) ISARTOR_LOG_AT(::isartor::log::Level::kTrace, target, __VA_ARGS__)
#define LOG_DEBUG(target, ...) ISARTOR_LOG_AT(::isartor::log::Level::kDebug, target, __VA_ARGS__)
#define LOG_INFO(target, ...) ISARTOR_LOG_AT(::isartor::log::Level::kInfo, target, __VA_ARGS__)
#define LOG_WARN(target, ...) ISARTOR_LOG_AT(::isartor::log::Level::kWarn, target, __VA_ARGS__)
#define LOG_ERROR(target, ...) ISARTOR_LOG_AT(::isartor::log::Level::kError, target, __VA_ARGS__)
