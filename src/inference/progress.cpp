#include "inference/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

#include "core/log.h"

namespace isartor::inference {

namespace {

constexpr const char* kTarget = "isartor::models";
constexpr auto kBarInterval = std::chrono::milliseconds(100);
constexpr auto kLogInterval = std::chrono::seconds(5);
constexpr int kBarWidth = 20;

std::string format_duration(double seconds) {
  auto total = static_cast<long long>(seconds + 0.5);
  if (total >= 3600) return fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
  return fmt::format("{}:{:02}", total / 60, total % 60);
}

void write_stderr(std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
    if (n <= 0) return;  // progress is cosmetic: a closed stderr must not fail the download
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

std::string format_megabytes(std::uint64_t bytes) {
  return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6);
}

std::string format_progress(std::string_view label, std::uint64_t done, std::uint64_t total,
                            double bytes_per_sec) {
  std::string line(label);
  if (total > 0) {
    double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    int filled = static_cast<int>(fraction * kBarWidth);
    line += fmt::format("  {:3}% [{}{}] {:.1f}/{}", static_cast<int>(fraction * 100),
                        std::string(filled, '#'), std::string(kBarWidth - filled, '-'),
                        static_cast<double>(done) / 1e6, format_megabytes(total));
  } else {
    line += "  " + format_megabytes(done);
  }
  if (bytes_per_sec > 0) {
    line += fmt::format("  {:.1f} MB/s", bytes_per_sec / 1e6);
    if (total > done) line += "  ETA " + format_duration(static_cast<double>(total - done) / bytes_per_sec);
  }
  return line;
}

Progress::Style Progress::default_style() {
  return ::isatty(STDERR_FILENO) ? Style::kBar : Style::kLog;
}

Progress::Progress(std::string label, std::uint64_t total, std::uint64_t already, Style style,
                   BarWriter bar_writer, Clock::time_point start)
    : label_(std::move(label)),
      total_(total),
      already_(already),
      style_(style),
      bar_writer_(bar_writer ? std::move(bar_writer) : BarWriter(&write_stderr)),
      start_(start),
      last_emit_(start),
      done_(already),
      last_decile_(total > 0 ? static_cast<int>(already * 10 / total) : 0) {}

double Progress::rate(Clock::time_point now) const {
  double seconds = std::chrono::duration<double>(now - start_).count();
  if (seconds <= 0 || done_ <= already_) return 0;
  return static_cast<double>(done_ - already_) / seconds;
}

void Progress::emit(Clock::time_point now) {
  last_emit_ = now;
  std::string line = format_progress(label_, done_, total_, rate(now));
  if (style_ == Style::kBar) {
    // "\x1b[K" clears what a longer previous line left behind.
    bar_writer_("\r" + line + "\x1b[K");
    drawn_ = true;
  } else {
    LOG_INFO(kTarget, "downloading {}", line);
  }
}

void Progress::update(std::uint64_t done, Clock::time_point now) {
  done_ = done;
  if (style_ == Style::kBar) {
    if (!drawn_ || now - last_emit_ >= kBarInterval) emit(now);
    return;
  }
  int decile = total_ > 0 ? static_cast<int>(std::min(done, total_) * 10 / total_) : 0;
  if (decile > last_decile_ || now - last_emit_ >= kLogInterval) {
    last_decile_ = decile;
    emit(now);
  }
}

void Progress::finish(Clock::time_point now) {
  // The log style reports the end itself (hf_hub.cpp logs the outcome), so only the bar needs it.
  if (style_ != Style::kBar) return;
  emit(now);
  bar_writer_("\n");
}

}  // namespace isartor::inference
