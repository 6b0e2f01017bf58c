#include "inference/answer_stream.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace isartor::inference {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

// Feeds `pieces`, then finishes; returns every non-empty release.
std::vector<std::string> stream(AnswerStream& s, const std::vector<std::string>& pieces) {
  std::vector<std::string> out;
  for (const auto& p : pieces) {
    if (auto r = s.push(p); !r.empty()) out.push_back(r);
  }
  if (auto r = s.finish(); !r.empty()) out.push_back(r);
  return out;
}

TEST(Utf8AssemblerTest, HoldsASplitCharacterUntilComplete) {
  Utf8Assembler a;
  EXPECT_EQ(a.feed("h\xC3"), "h");
  EXPECT_EQ(a.feed("\xA9"), "\xC3\xA9");
  EXPECT_EQ(a.feed("\xF0\x9F"), "");
  EXPECT_EQ(a.feed("\x98"), "");
  EXPECT_EQ(a.feed("\x80!"), "\xF0\x9F\x98\x80!");
  EXPECT_EQ(a.flush(), "");
}

TEST(Utf8AssemblerTest, ReplacesBytesThatCannotFormACharacter) {
  Utf8Assembler a;
  EXPECT_EQ(a.feed("\x80"), kFffd);                          // lone continuation byte
  EXPECT_EQ(a.feed("\xC3x"), kFffd + "x");                   // lead byte without its continuation
  EXPECT_EQ(a.feed("\xC0\xAF"), kFffd + kFffd);              // overlong
  EXPECT_EQ(a.feed("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // surrogate
  EXPECT_EQ(a.feed("\xE2\x82"), "");
  EXPECT_EQ(a.flush(), kFffd);  // unfinished at the end
  EXPECT_EQ(a.flush(), "");
}

TEST(AnswerStreamTest, WithoutStopStringsPassesTextThrough) {
  AnswerStream s;
  EXPECT_EQ(stream(s, {"Hel", "lo", " world"}), (std::vector<std::string>{"Hel", "lo", " world"}));
  EXPECT_EQ(s.text(), "Hello world");
  EXPECT_FALSE(s.stopped());
}

TEST(AnswerStreamTest, CutsBeforeAStopStringSplitAcrossPieces) {
  AnswerStream s({"</end>"});
  EXPECT_EQ(s.push("Hi </"), "Hi ");  // "</" may start the stop string
  EXPECT_EQ(s.push("en"), "");
  EXPECT_EQ(s.push("d> more"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.push("ignored"), "");
  EXPECT_EQ(s.finish(), "");
  EXPECT_EQ(s.text(), "Hi ");
}

TEST(AnswerStreamTest, ReleasesHeldTextThatTurnsOutNotToBeAStop) {
  AnswerStream s({"STOP"});
  EXPECT_EQ(s.push("ST"), "");
  EXPECT_EQ(s.push("ep"), "STep");
  EXPECT_EQ(s.push(" S"), " ");
  EXPECT_EQ(s.finish(), "S");  // the end of generation releases what was held
  EXPECT_EQ(s.text(), "STep S");
  EXPECT_FALSE(s.stopped());
}

TEST(AnswerStreamTest, EarliestOfSeveralStopStringsWins) {
  AnswerStream s({"", "bb", "a b"});
  EXPECT_EQ(stream(s, {"xa bb"}), (std::vector<std::string>{"x"}));
  EXPECT_EQ(s.text(), "x");
}

TEST(AnswerStreamTest, StopStringInsideOnePieceAndAtTheStart) {
  AnswerStream s({"\n\n"});
  EXPECT_EQ(stream(s, {"\n\nrest"}), std::vector<std::string>{});
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.text(), "");
}

TEST(AnswerStreamTest, MultiByteStopStringAndSplitCharacters) {
  AnswerStream s({"\xC3\xA9t\xC3\xA9"});  // "été"
  EXPECT_EQ(s.push("un \xC3"), "un ");
  EXPECT_EQ(s.push("\xA9t"), "");
  EXPECT_EQ(s.push("\xC3\xA9!"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.text(), "un ");
}

}  // namespace
}  // namespace isartor::inference
