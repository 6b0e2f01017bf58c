#include "inference/answer_stream.h"

#include <algorithm>
#include <utility>

namespace isartor::inference {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the UTF-8 sequence `lead` starts, 0 when it cannot start one.
size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Whether `byte` may follow `lead` at offset `index` (1..3): continuation bytes, without
// overlong forms, surrogates or code points past U+10FFFF.
bool utf8_follows(unsigned char lead, size_t index, unsigned char byte) {
  if (byte < 0x80 || byte > 0xBF) return false;
  if (index != 1) return true;
  if (lead == 0xE0) return byte >= 0xA0;
  if (lead == 0xED) return byte <= 0x9F;
  if (lead == 0xF0) return byte >= 0x90;
  if (lead == 0xF4) return byte <= 0x8F;
  return true;
}

}  // namespace

std::string Utf8Assembler::feed(std::string_view bytes) {
  tail_.append(bytes);
  std::string out;
  size_t i = 0;
  while (i < tail_.size()) {
    const auto lead = static_cast<unsigned char>(tail_[i]);
    const size_t length = utf8_length(lead);
    size_t valid = length == 0 ? 0 : 1;
    while (valid > 0 && valid < length && i + valid < tail_.size() &&
           utf8_follows(lead, valid, static_cast<unsigned char>(tail_[i + valid]))) {
      ++valid;
    }
    if (length > 0 && valid == length) {
      out.append(tail_, i, length);
      i += length;
    } else if (valid > 0 && i + valid == tail_.size()) {
      break;  // a prefix of a character: wait for the rest
    } else {
      // One U+FFFD per maximal invalid prefix, as the Unicode standard recommends.
      out.append(kReplacement);
      i += std::max<size_t>(valid, 1);
    }
  }
  tail_.erase(0, i);
  return out;
}

std::string Utf8Assembler::flush() {
  if (tail_.empty()) return {};
  tail_.clear();
  return std::string(kReplacement);
}

AnswerStream::AnswerStream(std::vector<std::string> stop) : stop_(std::move(stop)) {
  std::erase_if(stop_, [](const std::string& s) { return s.empty(); });
}

std::string AnswerStream::push(std::string_view piece) {
  if (stopped_) return {};
  text_ += utf8_.feed(piece);
  return release(false);
}

std::string AnswerStream::finish() {
  if (stopped_) return {};
  text_ += utf8_.flush();
  return release(true);
}

std::string AnswerStream::release(bool final) {
  // A stop string cannot start before sent_: text it would overlap was held back.
  size_t cut = std::string::npos;
  for (const std::string& s : stop_) cut = std::min(cut, text_.find(s, sent_));
  if (cut != std::string::npos) {
    text_.resize(cut);
    stopped_ = true;
    final = true;
  }
  size_t hold = 0;
  if (!final) {
    // The longest end of the text that some stop string starts with. Stop strings are valid
    // UTF-8, so the held part starts on a character boundary.
    for (const std::string& s : stop_) {
      for (size_t k = std::min(s.size() - 1, text_.size() - sent_); k > hold; --k) {
        if (std::string_view(text_).ends_with(std::string_view(s).substr(0, k))) {
          hold = k;
          break;
        }
      }
    }
  }
  const size_t end = text_.size() - hold;
  std::string out = text_.substr(sent_, end - sent_);
  sent_ = end;
  return out;
}

}  // namespace isartor::inference
