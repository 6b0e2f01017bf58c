#pragma once
// Turns a model's token pieces into the text a client may be streamed: valid UTF-8 only, and cut
// before the first stop string, which is never streamed. Used by the generators.
#include <string>
#include <string_view>
#include <vector>

namespace isartor::inference {

// Token pieces to valid UTF-8: a character split across pieces waits for its last byte; bytes
// that cannot form one become U+FFFD (a confused model emits stray byte tokens). Not thread-safe.
class Utf8Assembler {
 public:
  // The text that `bytes` completes, with what came before.
  std::string feed(std::string_view bytes);
  // An unfinished character left at the end, as U+FFFD; "" when none.
  std::string flush();

 private:
  std::string tail_;
};

// One answer as it is streamed: holds back text that may be the start of a stop string and ends
// the answer before the first one. Empty stop strings are ignored. Not thread-safe.
class AnswerStream {
 public:
  explicit AnswerStream(std::vector<std::string> stop = {});

  // Adds a token's piece; returns the text that may be streamed now (often "").
  std::string push(std::string_view piece);
  // At the end of generation: the held-back rest ("" once stopped).
  std::string finish();

  // Whether a stop string appeared; push() then returns nothing more.
  bool stopped() const { return stopped_; }
  // All text returned so far, concatenated.
  const std::string& text() const { return text_; }

 private:
  std::string release(bool final);

  std::vector<std::string> stop_;
  Utf8Assembler utf8_;
  std::string text_;  // decoded text; text_[0, sent_) has been returned
  size_t sent_ = 0;
  bool stopped_ = false;
};

}  // namespace isartor::inference
