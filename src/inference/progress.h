#pragma once
// Progress of one long download: a single-line bar redrawn with '\r' on a terminal, otherwise an
// INFO line (target "isartor::models") every 5 s or 10 %, so logs stay readable in containers.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace isartor::inference {

// "model.gguf  42% [########------------] 700.1/1630.5 MB  25.3 MB/s  ETA 0:36"; without a total
// (0) the percent, bar and ETA are left out; without a rate (0) so is the ETA. Pure.
std::string format_progress(std::string_view label, std::uint64_t done, std::uint64_t total,
                            double bytes_per_sec);

// Megabytes (10^6 bytes) with one decimal: "1630.5 MB". Pure.
std::string format_megabytes(std::uint64_t bytes);

class Progress {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Style { kBar, kLog };
  // Receives the bar's text ("\r..." redraws, a final "\n"); the default writes to stderr.
  using BarWriter = std::function<void(std::string_view)>;

  // kBar when stderr is a terminal, else kLog. Thread-safe.
  static Style default_style();

  // `total` bytes expected (0 = unknown); `already` bytes were there before (a resumed download),
  // so they count towards the percentage but not the rate.
  Progress(std::string label, std::uint64_t total, std::uint64_t already, Style style,
           BarWriter bar_writer = {}, Clock::time_point start = Clock::now());

  // Reports that `done` bytes of `total` are present; draws or logs when it is time to.
  void update(std::uint64_t done) { update(done, Clock::now()); }
  void update(std::uint64_t done, Clock::time_point now);

  // Draws the final state and ends the bar's line. Call once, success or not.
  void finish() { finish(Clock::now()); }
  void finish(Clock::time_point now);

  // Not copyable: one object per download, used by one thread.
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

 private:
  double rate(Clock::time_point now) const;
  void emit(Clock::time_point now);

  std::string label_;
  std::uint64_t total_;
  std::uint64_t already_;
  Style style_;
  BarWriter bar_writer_;
  Clock::time_point start_;
  Clock::time_point last_emit_;
  std::uint64_t done_ = 0;
  int last_decile_ = 0;
  bool drawn_ = false;
};

}  // namespace isartor::inference
