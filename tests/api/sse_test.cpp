#include "api/sse.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace isartor::api {

// Found by gtest through ADL, so it lives in the type's namespace.
void PrintTo(const SseEvent& e, std::ostream* os) {
  *os << "{event=\"" << e.event << "\", data=\"" << e.data << "\"}";
}

namespace {

std::vector<SseEvent> parse_all(const std::vector<std::string>& feeds) {
  SseParser parser;
  std::vector<SseEvent> events;
  for (const std::string& bytes : feeds) {
    for (SseEvent& e : parser.feed(bytes)) events.push_back(std::move(e));
  }
  for (SseEvent& e : parser.finish()) events.push_back(std::move(e));
  return events;
}

std::vector<SseEvent> parse(const std::string& bytes) { return parse_all({bytes}); }

TEST(SseParser, ParsesEventAndData) {
  EXPECT_EQ(parse("event: message_start\ndata: {\"a\":1}\n\n"),
            (std::vector<SseEvent>{{"message_start", "{\"a\":1}"}}));
}

TEST(SseParser, DataWithAndWithoutSpaceOnlyOneSpaceStripped) {
  EXPECT_EQ(parse("data:x\n\ndata: y\n\ndata:  z\n\n"),
            (std::vector<SseEvent>{{"", "x"}, {"", "y"}, {"", " z"}}));
}

TEST(SseParser, JoinsMultipleDataLinesWithNewline) {
  EXPECT_EQ(parse("data: one\ndata:two\ndata\n\n"), (std::vector<SseEvent>{{"", "one\ntwo\n"}}));
}

TEST(SseParser, SkipsCommentsIdRetryAndUnknownFields) {
  EXPECT_EQ(parse(": keep-alive\nid: 7\nretry: 1000\nfoo: bar\ndata: x\n\n: trailing\n\n"),
            (std::vector<SseEvent>{{"", "x"}}));
}

TEST(SseParser, FieldWithoutColonIsEmptyValue) {
  EXPECT_EQ(parse("data\n\n"), (std::vector<SseEvent>{{"", ""}}));
}

TEST(SseParser, EventWithoutDataIsDroppedAndTypeReset) {
  EXPECT_EQ(parse("event: ping\n\ndata: x\n\n"), (std::vector<SseEvent>{{"", "x"}}));
}

TEST(SseParser, AcceptsCrLfCrAndLfLineEndings) {
  const std::vector<SseEvent> expected{{"a", "1"}, {"b", "2"}, {"c", "3"}};
  EXPECT_EQ(parse("event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\revent: c\ndata: 3\n\n"),
            expected);
}

TEST(SseParser, CrLfSplitAcrossFeedsIsOneLineEnd) {
  // If the LF after a CR in the previous feed counted as a line end, the event would end early.
  EXPECT_EQ(parse_all({"data: a\r", "\ndata: b\r", "\n\r", "\n"}),
            (std::vector<SseEvent>{{"", "a\nb"}}));
}

TEST(SseParser, DoneTerminatorIsAnOrdinaryEvent) {
  EXPECT_EQ(parse("data: {\"x\":1}\n\ndata: [DONE]\n\n"),
            (std::vector<SseEvent>{{"", "{\"x\":1}"}, {"", "[DONE]"}}));
}

TEST(SseParser, FinishFlushesUnterminatedEvent) {
  EXPECT_EQ(parse("event: e\ndata: last"), (std::vector<SseEvent>{{"e", "last"}}));
  EXPECT_EQ(parse("data: a\n"), (std::vector<SseEvent>{{"", "a"}}));
  EXPECT_TRUE(parse("").empty());
  EXPECT_TRUE(parse(": only a comment").empty());
}

TEST(SseParser, FeedReturnsEventsAsSoonAsComplete) {
  SseParser parser;
  EXPECT_TRUE(parser.feed("data: a\n").empty());
  EXPECT_EQ(parser.feed("\ndata: b"), (std::vector<SseEvent>{{"", "a"}}));
  EXPECT_EQ(parser.finish(), (std::vector<SseEvent>{{"", "b"}}));
  EXPECT_TRUE(parser.finish().empty());
}

const std::string kMixedStream =
    ": OPENROUTER PROCESSING\r\n"
    "event: message_start\r\n"
    "data: {\"type\":\"message_start\",\"text\":\"Grüße 🌍 世界\"}\r\n"
    "\r\n"
    "id: 1\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"é\"}}]}\n"
    "\n"
    "event: multi\r"
    "data: line1\r"
    "data:line2\r"
    "\r"
    "data: [DONE]\n\n";

TEST(SseParser, SplitAtEveryBytePositionGivesSameEvents) {
  const std::vector<SseEvent> whole = parse(kMixedStream);
  ASSERT_EQ(whole, (std::vector<SseEvent>{
                       {"message_start", "{\"type\":\"message_start\",\"text\":\"Grüße 🌍 世界\"}"},
                       {"", "{\"choices\":[{\"delta\":{\"content\":\"é\"}}]}"},
                       {"multi", "line1\nline2"},
                       {"", "[DONE]"}}));
  for (size_t i = 0; i <= kMixedStream.size(); ++i) {
    for (size_t j = i; j <= kMixedStream.size(); j += 7) {
      EXPECT_EQ(parse_all({kMixedStream.substr(0, i), kMixedStream.substr(i, j - i),
                           kMixedStream.substr(j)}),
                whole)
          << "split at " << i << " and " << j;
    }
  }
}

TEST(SseParser, ByteByByteGivesSameEvents) {
  std::vector<std::string> bytes;
  for (char c : kMixedStream) bytes.emplace_back(1, c);
  EXPECT_EQ(parse_all(bytes), parse(kMixedStream));
}

TEST(FormatSse, WritesEventAndDataLines) {
  EXPECT_EQ(format_sse({"message_stop", "{\"type\":\"message_stop\"}"}),
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  EXPECT_EQ(format_sse({"", "[DONE]"}), "data: [DONE]\n\n");
  EXPECT_EQ(format_sse({"", ""}), "data: \n\n");
}

TEST(FormatSse, SplitsMultiLineDataOnEveryLineEnding) {
  EXPECT_EQ(format_sse({"", "a\nb\r\nc\rd"}), "data: a\ndata: b\ndata: c\ndata: d\n\n");
  EXPECT_EQ(format_sse({"", "trailing\n"}), "data: trailing\ndata: \n\n");
}

TEST(FormatSse, RoundTripsThroughParser) {
  const std::vector<SseEvent> events{
      {"e", "x"}, {"", "multi\nline\n"}, {"", ""}, {"ping", " leading space"}};
  std::string wire;
  for (const SseEvent& e : events) wire += format_sse(e);
  EXPECT_EQ(parse(wire), events);
}

}  // namespace
}  // namespace isartor::api
