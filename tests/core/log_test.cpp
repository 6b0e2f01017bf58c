#include "core/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <unistd.h>

#include <regex>
#include <sstream>
#include <thread>
#include <vector>

namespace isartor::log {
namespace {

using ::testing::IsEmpty;
using ::testing::MatchesRegex;

// Restores the default filter and stderr after each test.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    set_sink([this](std::string_view line) { lines_.emplace_back(line); });
  }
  void TearDown() override {
    set_sink({});
    init("info");
  }

  std::vector<std::string> lines_;
};

TEST_F(LogTest, BareLevelIsTheDefaultForEveryTarget) {
  init("info");
  EXPECT_TRUE(enabled(Level::kInfo, "isartor"));
  EXPECT_TRUE(enabled(Level::kError, "anything::else"));
  EXPECT_FALSE(enabled(Level::kDebug, "isartor"));
  init("trace");
  EXPECT_TRUE(enabled(Level::kTrace, "isartor::http"));
  init("error");
  EXPECT_FALSE(enabled(Level::kWarn, "isartor"));
  EXPECT_TRUE(enabled(Level::kError, "isartor"));
}

TEST_F(LogTest, OffSilencesEverything) {
  init("off");
  EXPECT_FALSE(enabled(Level::kError, "isartor"));
  EXPECT_FALSE(enabled(Level::kError, ""));
  init("info");
  EXPECT_FALSE(enabled(Level::kOff, "isartor"));
}

TEST_F(LogTest, TargetDirectiveMatchesItselfAndItsChildrenOnly) {
  init("isartor=debug");
  EXPECT_TRUE(enabled(Level::kDebug, "isartor"));
  EXPECT_TRUE(enabled(Level::kDebug, "isartor::http"));
  EXPECT_TRUE(enabled(Level::kDebug, "isartor::http::conn"));
  EXPECT_FALSE(enabled(Level::kTrace, "isartor::http"));
  EXPECT_FALSE(enabled(Level::kDebug, "isartorx"));   // prefix but not a path segment
  EXPECT_FALSE(enabled(Level::kDebug, "isartor:x"));  // one colon is not a separator
  EXPECT_FALSE(enabled(Level::kDebug, "other"));
  EXPECT_TRUE(enabled(Level::kInfo, "other"));  // default stays info
}

TEST_F(LogTest, DefaultPlusTargetDirective) {
  init("warn,isartor::http=trace");
  EXPECT_TRUE(enabled(Level::kTrace, "isartor::http"));
  EXPECT_TRUE(enabled(Level::kTrace, "isartor::http::conn"));
  EXPECT_FALSE(enabled(Level::kTrace, "isartor::httpx"));
  EXPECT_FALSE(enabled(Level::kInfo, "isartor"));
  EXPECT_TRUE(enabled(Level::kWarn, "isartor"));
  EXPECT_FALSE(enabled(Level::kInfo, "isartor::cache"));
}

TEST_F(LogTest, LongestMatchingDirectiveWinsRegardlessOfOrder) {
  for (const char* spec :
       {"isartor=error,isartor::cache=debug", "isartor::cache=debug,isartor=error"}) {
    init(spec);
    EXPECT_TRUE(enabled(Level::kDebug, "isartor::cache")) << spec;
    EXPECT_TRUE(enabled(Level::kDebug, "isartor::cache::redis")) << spec;
    EXPECT_FALSE(enabled(Level::kWarn, "isartor::http")) << spec;
    EXPECT_FALSE(enabled(Level::kWarn, "isartor")) << spec;
    EXPECT_TRUE(enabled(Level::kInfo, "other")) << spec;
  }
  // A more specific directive can also be quieter than its parent.
  init("trace,isartor::http=off");
  EXPECT_FALSE(enabled(Level::kError, "isartor::http"));
  EXPECT_TRUE(enabled(Level::kTrace, "isartor::cache"));
}

TEST_F(LogTest, LevelsAreCaseInsensitiveAndBlanksIgnored) {
  init(" WARN , isartor = Debug ");
  EXPECT_TRUE(enabled(Level::kWarn, "other"));
  EXPECT_FALSE(enabled(Level::kInfo, "other"));
  EXPECT_TRUE(enabled(Level::kDebug, "isartor::x"));
}

TEST_F(LogTest, UnknownWordsAreIgnored) {
  init("verbose");
  EXPECT_TRUE(enabled(Level::kInfo, "isartor"));
  EXPECT_FALSE(enabled(Level::kDebug, "isartor"));
  init("isartor=loud,debug");
  EXPECT_TRUE(enabled(Level::kDebug, "isartor"));
  EXPECT_FALSE(enabled(Level::kTrace, "isartor"));
  init("");
  EXPECT_TRUE(enabled(Level::kInfo, "isartor"));
  EXPECT_FALSE(enabled(Level::kDebug, "isartor"));
  init(",,");
  EXPECT_TRUE(enabled(Level::kInfo, "isartor"));
}

TEST_F(LogTest, LaterDirectiveForTheSameTargetWins) {
  init("isartor=trace,isartor=warn");
  EXPECT_FALSE(enabled(Level::kInfo, "isartor"));
  EXPECT_TRUE(enabled(Level::kWarn, "isartor"));
}

TEST_F(LogTest, InitFromEnvPrefersIsartorLogOverRustLog) {
  const char* old_isartor = std::getenv("ISARTOR_LOG");
  const char* old_rust = std::getenv("RUST_LOG");
  const std::string saved_isartor = old_isartor ? old_isartor : "";
  const std::string saved_rust = old_rust ? old_rust : "";

  setenv("ISARTOR_LOG", "error", 1);
  setenv("RUST_LOG", "trace", 1);
  init_from_env();
  EXPECT_FALSE(enabled(Level::kWarn, "isartor"));

  unsetenv("ISARTOR_LOG");
  init_from_env();
  EXPECT_TRUE(enabled(Level::kTrace, "isartor"));

  unsetenv("RUST_LOG");
  init_from_env();
  EXPECT_TRUE(enabled(Level::kInfo, "isartor"));
  EXPECT_FALSE(enabled(Level::kDebug, "isartor"));

  if (old_isartor) setenv("ISARTOR_LOG", saved_isartor.c_str(), 1);
  if (old_rust) setenv("RUST_LOG", saved_rust.c_str(), 1);
}

TEST_F(LogTest, LineFormat) {
  write(Level::kInfo, "isartor", "Listening on 0.0.0.0:8080 key=value");
  write(Level::kError, "isartor::http", "boom");
  write(Level::kWarn, "isartor", "careful");
  write(Level::kTrace, "isartor", "t");
  ASSERT_EQ(lines_.size(), 4u);
  const std::string ts =
      R"(20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\.[0-9]{3}Z)";
  EXPECT_TRUE(std::regex_match(
      lines_[0], std::regex(ts + "  INFO isartor > Listening on 0\\.0\\.0\\.0:8080 key=value\n")))
      << lines_[0];
  EXPECT_TRUE(std::regex_match(lines_[1], std::regex(ts + " ERROR isartor::http > boom\n")))
      << lines_[1];
  EXPECT_TRUE(std::regex_match(lines_[2], std::regex(ts + "  WARN isartor > careful\n")))
      << lines_[2];
  EXPECT_TRUE(std::regex_match(lines_[3], std::regex(ts + " TRACE isartor > t\n"))) << lines_[3];
}

TEST_F(LogTest, TimestampIsCurrentUtc) {
  const std::time_t before = std::time(nullptr);
  write(Level::kInfo, "isartor", "x");
  const std::time_t after = std::time(nullptr);
  ASSERT_EQ(lines_.size(), 1u);
  std::tm tm{};
  ASSERT_NE(strptime(lines_[0].c_str(), "%Y-%m-%dT%H:%M:%S", &tm), nullptr);
  const std::time_t logged = timegm(&tm);
  EXPECT_GE(logged, before);
  EXPECT_LE(logged, after);
}

TEST_F(LogTest, MessagesStayOnOneLine) {
  write(Level::kInfo, "isartor",
        "a\nb\r\x01"
        "c\td");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_THAT(lines_[0], ::testing::EndsWith(" > a\\nb\\r\\x01c\td\n"));
}

TEST_F(LogTest, MacrosFormatAndRespectTheFilter) {
  init("warn,isartor::cache=debug");
  LOG_INFO("isartor", "dropped {}", 1);
  LOG_DEBUG("isartor::cache", "hit key={} layer={}", "abc", 1);
  LOG_ERROR("isartor", "failed: {}", std::string("why"));
  LOG_TRACE("isartor::cache", "dropped");
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_THAT(lines_[0], MatchesRegex(".* DEBUG isartor::cache > hit key=abc layer=1\n"));
  EXPECT_THAT(lines_[1], MatchesRegex(".* ERROR isartor > failed: why\n"));
}

TEST_F(LogTest, EmptySinkRestoresStderr) {
  set_sink({});
  testing::internal::CaptureStderr();
  write(Level::kWarn, "isartor", "to stderr");
  flush();  // written by the writer thread, not the caller
  const std::string captured = testing::internal::GetCapturedStderr();
  EXPECT_THAT(captured, MatchesRegex(".*Z  WARN isartor > to stderr\n"));
  EXPECT_THAT(lines_, IsEmpty());
}

TEST_F(LogTest, AStderrThatDoesNotKeepUpLosesWholeLinesCountedNeverTheCaller) {
  set_sink({});
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const int saved = ::dup(STDERR_FILENO);
  ASSERT_EQ(::dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
  // Nobody reads the pipe yet: the writer blocks once it is full, and the callers go on.
  const std::string payload(1000, 'x');
  const auto started = std::chrono::steady_clock::now();
  constexpr int kLines = 2 * kMaxPendingLogBytes / 1000;
  for (int i = 0; i < kLines; ++i) write(Level::kInfo, "isartor", std::to_string(i) + " " + payload);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));  // never waited on the pipe
  std::string text;
  std::thread reader([&] {
    char buffer[65536];
    for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<size_t>(n));
  });
  flush();
  ASSERT_EQ(::dup2(saved, STDERR_FILENO), STDERR_FILENO);
  ::close(saved);
  ::close(fds[1]);
  reader.join();
  ::close(fds[0]);
  // Whole lines, in order, then the count of those dropped.
  std::istringstream lines(text);
  int previous = -1, kept = 0, dropped = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find(" WARN isartor::log > ") != std::string::npos) {
      ASSERT_THAT(line, MatchesRegex(".*WARN isartor::log > [0-9]+ log lines dropped.*"));
      dropped += std::stoi(line.substr(line.find("> ") + 2));
      continue;
    }
    ASSERT_NE(line.find("  INFO isartor > "), std::string::npos) << line.substr(0, 100);
    ASSERT_TRUE(line.ends_with(" " + payload)) << line.substr(0, 100);
    const int index = std::stoi(line.substr(line.find("> ") + 2));
    EXPECT_GT(index, previous);
    previous = index;
    ++kept;
  }
  EXPECT_LT(kept, kLines);
  EXPECT_GT(dropped, 0);
  EXPECT_EQ(kept + dropped, kLines);
}

TEST(Throttle, OneLinePerIntervalCountingTheOnesHeldBack) {
  using namespace std::chrono_literals;
  Throttle throttle(5s);
  const auto t0 = std::chrono::steady_clock::time_point{} + 100s;
  EXPECT_EQ(throttle.allow(t0), 0u);
  EXPECT_EQ(throttle.allow(t0 + 1s), std::nullopt);
  EXPECT_EQ(throttle.allow(t0 + 4999ms), std::nullopt);
  EXPECT_EQ(throttle.allow(t0 + 5s), 2u);
  EXPECT_EQ(throttle.allow(t0 + 11s), 0u);
}

}  // namespace
}  // namespace isartor::log
