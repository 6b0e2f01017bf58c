#include "pipeline/semantic_guard.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace isartor::pipeline {
namespace {

using Words = std::vector<std::string>;
using WordSet = std::unordered_set<std::string_view>;

constexpr std::string_view kRightSingleQuote = "\xE2\x80\x99";  // U+2019, as phones type "don’t"

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Non-ASCII bytes count as letters so that "résumé" stays one word.
bool is_word_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return is_digit(c) || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u >= 0x80;
}

char to_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// "300,000": a comma followed by exactly three digits separates thousands; "3,1,2" is a list.
bool thousands_group_at(std::string_view text, size_t pos) {
  if (pos + 3 > text.size()) return false;
  for (size_t i = pos; i < pos + 3; ++i) {
    if (!is_digit(text[i])) return false;
  }
  return pos + 3 == text.size() || !is_digit(text[pos + 3]);
}

Words split_words(std::string_view text) {
  Words words;
  std::string word;
  const auto flush = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const size_t quote_len = c == '\''                                       ? 1
                             : text.substr(i).starts_with(kRightSingleQuote) ? kRightSingleQuote.size()
                                                                             : 0;
    if (quote_len > 0) {
      const size_t next = i + quote_len;
      // Inner apostrophes stay ("don't", "python's"); quotes around words do not.
      if (!word.empty() && next < text.size() && is_word_byte(text[next])) {
        word += '\'';
      } else {
        flush();
      }
      i = next - 1;
      continue;
    }
    if (is_word_byte(c)) {
      word += to_lower(c);
      continue;
    }
    const bool after_digit = !word.empty() && is_digit(word.back());
    if (c == '.' && after_digit && i + 1 < text.size() && is_digit(text[i + 1])) {
      word += '.';
      continue;
    }
    if (c == ',' && after_digit && thousands_group_at(text, i + 1)) continue;
    if (c == '-' && word == "non") continue;  // "non-blocking" is "nonblocking"
    flush();
  }
  flush();
  return words;
}

// ---- 1. numbers ----

const std::unordered_map<std::string_view, std::string_view>& number_words() {
  static const std::unordered_map<std::string_view, std::string_view> words = {
      {"zero", "0"},     {"two", "2"},        {"three", "3"},     {"four", "4"},      {"five", "5"},
      {"six", "6"},      {"seven", "7"},      {"eight", "8"},     {"nine", "9"},      {"ten", "10"},
      {"eleven", "11"},  {"twelve", "12"},    {"thirteen", "13"}, {"fourteen", "14"}, {"fifteen", "15"},
      {"sixteen", "16"}, {"seventeen", "17"}, {"eighteen", "18"}, {"nineteen", "19"}, {"twenty", "20"},
      {"thirty", "30"},  {"forty", "40"},     {"fifty", "50"},    {"sixty", "60"},    {"seventy", "70"},
      {"eighty", "80"},  {"ninety", "90"}};
  return words;
}

// Leading zeros do not change a number ("03/04" is March 4th either way).
std::string_view canonical_number(std::string_view digits) {
  while (digits.size() > 1 && digits[0] == '0' && digits[1] != '.') digits.remove_prefix(1);
  return digits;
}

// Every number in order; digit runs inside words count too ("10th", "python3", "x86").
std::vector<std::string_view> numbers(const Words& words) {
  std::vector<std::string_view> out;
  for (const std::string_view w : words) {
    if (const auto it = number_words().find(w); it != number_words().end()) {
      out.push_back(it->second);
      continue;
    }
    for (size_t i = 0; i < w.size();) {
      if (!is_digit(w[i])) {
        ++i;
        continue;
      }
      size_t end = i;
      while (end < w.size() && (is_digit(w[end]) || w[end] == '.')) ++end;  // '.' only between digits
      out.push_back(canonical_number(w.substr(i, end - i)));
      i = end;
    }
  }
  return out;
}

// ---- 2. negation ----

bool is_negation(std::string_view w) {
  static const std::unordered_set<std::string_view> words = {
      "not",    "no",      "never",    "none",  "nothing", "nobody", "nowhere", "neither", "nor",  "without",
      "cannot", "dont",    "doesnt",   "didnt", "isnt",    "arent",  "wasnt",   "werent",  "cant", "couldnt",
      "wont",   "wouldnt", "shouldnt", "hasnt", "havent",  "hadnt",  "mustnt",  "neednt",  "aint"};
  return w.ends_with("n't") || words.contains(w);
}

bool has_negation(const Words& words) {
  return std::ranges::any_of(words, is_negation);
}

// ---- 3. opposites ----

struct Antonym {
  std::string_view a, b;
};

// Singular forms: plurals and third-person verbs are found by stripping "s"/"es" (all_forms).
// clang-format off
constexpr Antonym kAntonyms[] = {
    {"advantage", "disadvantage"},   {"pro", "con"},                  {"benefit", "drawback"},
    {"strength", "weakness"},        {"increase", "decrease"},        {"increasing", "decreasing"},
    {"raise", "lower"},              {"rise", "fall"},                {"up", "down"},
    {"in", "out"},                   {"on", "off"},                   {"before", "after"},
    {"enable", "disable"},           {"enabled", "disabled"},         {"encrypt", "decrypt"},
    {"encryption", "decryption"},    {"encode", "decode"},            {"compress", "decompress"},
    {"activate", "deactivate"},      {"serialize", "deserialize"},    {"ascending", "descending"},
    {"asc", "desc"},                 {"maximum", "minimum"},          {"max", "min"},
    {"best", "worst"},               {"better", "worse"},             {"positive", "negative"},
    {"add", "remove"},               {"gain", "lose"},                {"win", "lose"},
    {"buy", "sell"},                 {"upload", "download"},          {"import", "export"},
    {"push", "pull"},                {"open", "close"},               {"open", "closed"},
    {"start", "stop"},               {"start", "end"},                {"begin", "end"},
    {"first", "last"},               {"high", "low"},                 {"higher", "lower"},
    {"above", "below"},              {"over", "under"},               {"more", "less"},
    {"most", "least"},               {"fast", "slow"},                {"faster", "slower"},
    {"cheap", "expensive"},          {"easy", "hard"},                {"easy", "difficult"},
    {"early", "late"},               {"young", "old"},                {"big", "small"},
    {"large", "small"},              {"long", "short"},               {"strong", "weak"},
    {"hot", "cold"},                 {"dark", "light"},               {"true", "false"},
    {"left", "right"},               {"north", "south"},              {"east", "west"},
    {"male", "female"},              {"man", "woman"},                {"men", "women"},
    {"allow", "deny"},               {"allow", "block"},              {"accept", "reject"},
    {"include", "exclude"},          {"show", "hide"},                {"public", "private"},
    {"input", "output"},             {"sync", "async"},               {"synchronous", "asynchronous"},
    {"horizontal", "vertical"},      {"uppercase", "lowercase"},      {"internal", "external"},
    {"client", "server"},            {"agree", "disagree"},           {"like", "dislike"},
    {"connect", "disconnect"},       {"appear", "disappear"},         {"valid", "invalid"},
    {"correct", "incorrect"},        {"possible", "impossible"},      {"secure", "insecure"},
    {"active", "inactive"},          {"complete", "incomplete"},      {"mutable", "immutable"},
    {"legal", "illegal"},            {"explicit", "implicit"},        {"attach", "detach"},
    {"expand", "collapse"},
};
// clang-format on

// Every word as written and, when it may be a plural or third-person form, without "s" / "es":
// "pros" -> "pro", "weaknesses" -> "weakness". The views point into `words`.
WordSet all_forms(const Words& words) {
  WordSet out;
  for (const std::string_view w : words) {
    out.insert(w);
    if (w.size() > 3 && w.ends_with('s') && !w.ends_with("ss")) out.insert(w.substr(0, w.size() - 1));
    if (w.size() > 4 && w.ends_with("es")) out.insert(w.substr(0, w.size() - 2));
  }
  return out;
}

// Per antonym pair: bit 0 when side a is mentioned, bit 1 for side b.
std::array<uint8_t, std::size(kAntonyms)> antonym_sides(const WordSet& forms_present) {
  static const auto index = [] {
    std::unordered_multimap<std::string_view, std::pair<size_t, uint8_t>> out;
    for (size_t i = 0; i < std::size(kAntonyms); ++i) {
      out.emplace(kAntonyms[i].a, std::pair{i, uint8_t{1}});
      out.emplace(kAntonyms[i].b, std::pair{i, uint8_t{2}});
    }
    return out;
  }();
  std::array<uint8_t, std::size(kAntonyms)> sides{};
  for (const auto f : forms_present) {
    const auto [first, last] = index.equal_range(f);
    for (auto it = first; it != last; ++it) sides[it->second.first] |= it->second.second;
  }
  return sides;
}

bool opposite_antonyms(const WordSet& a, const WordSet& b) {
  const auto sides_a = antonym_sides(a);
  const auto sides_b = antonym_sides(b);
  for (size_t i = 0; i < std::size(kAntonyms); ++i) {
    // 3 (both sides named) is neutral: "pros and cons" matches either.
    const auto x = sides_a[i], y = sides_b[i];
    if ((x == 1 || x == 2) && (y == 1 || y == 2) && x != y) return true;
  }
  return false;
}

// `with_prefix` has "un"/"non" + a word that `plain` has, and neither has the other's form.
// Only these two prefixes: "dis"/"in"/"im"/"de" make too many unrelated pairs (display/play,
// intake/take, design/sign); their real antonyms are in kAntonyms.
bool negated_by_prefix(const WordSet& with_prefix, const WordSet& plain) {
  for (const auto w : with_prefix) {
    for (const std::string_view prefix : {"un", "non"}) {
      if (!w.starts_with(prefix) || w.size() < prefix.size() + 3) continue;
      const auto stem = w.substr(prefix.size());
      if (plain.contains(stem) && !with_prefix.contains(stem) && !plain.contains(w)) return true;
    }
  }
  return false;
}

// ---- 4. direction ----

// Words that carry no entity of their own; skipped when looking for a direction word's neighbours.
bool is_function_word(std::string_view w) {
  static const std::unordered_set<std::string_view> words = {
      "a",     "an",  "the",   "this",  "that",   "these", "those",  "my",   "your",  "our", "their", "his",
      "her",   "its", "some",  "any",   "i",      "me",    "you",    "we",   "it",    "is",  "are",   "was",
      "were",  "be",  "been",  "do",    "does",   "did",   "how",    "what", "which", "who", "why",   "when",
      "where", "can", "could", "would", "should", "will",  "please", "of",   "in",    "on",  "at",    "with",
      "by",    "and", "or",    "as",    "about",  "to",    "into",   "from", "than",  "for"};
  return words.contains(w);
}

// Direction words; "to" and "into" are one class. -1 for any other word.
int direction_class(std::string_view w) {
  if (w == "to" || w == "into") return 0;
  if (w == "from") return 1;
  if (w == "than") return 2;
  if (w == "for") return 3;
  return -1;
}

constexpr size_t kDirectionWindow = 3;  // content words looked at on each side

// "x <direction word> y": x among the shared content words just before it, y just after.
struct DirectedPair {
  int word_class = -1;
  std::string_view before, after;
  bool operator==(const DirectedPair&) const = default;
};

struct DirectedPairHash {
  size_t operator()(const DirectedPair& p) const {
    const std::hash<std::string_view> h;
    return (h(p.before) * 31 + h(p.after)) * 4 + static_cast<size_t>(p.word_class);
  }
};

using DirectedPairs = std::unordered_set<DirectedPair, DirectedPairHash>;

DirectedPairs directed_pairs(const Words& words, const WordSet& shared) {
  // Up to kDirectionWindow content words from `from` walking by `step`, keeping the shared ones.
  const auto neighbours = [&](ptrdiff_t from, ptrdiff_t step) {
    std::vector<std::string_view> out;
    size_t seen = 0;
    for (ptrdiff_t i = from; i >= 0 && i < static_cast<ptrdiff_t>(words.size()) && seen < kDirectionWindow; i += step) {
      const std::string_view w = words[static_cast<size_t>(i)];
      if (is_function_word(w)) continue;
      ++seen;
      if (shared.contains(w)) out.push_back(w);
    }
    return out;
  };
  DirectedPairs out;
  for (size_t i = 0; i < words.size(); ++i) {
    const int word_class = direction_class(words[i]);
    if (word_class < 0) continue;
    const auto before = neighbours(static_cast<ptrdiff_t>(i) - 1, -1);
    const auto after = neighbours(static_cast<ptrdiff_t>(i) + 1, +1);
    for (const auto x : before) {
      for (const auto y : after) {
        if (x != y) out.insert({word_class, x, y});
      }
    }
  }
  return out;
}

// Some "x to y" in one prompt is "y to x" in the other.
bool direction_swapped(const Words& a, const Words& b) {
  WordSet shared;
  const WordSet in_b(b.begin(), b.end());
  for (const std::string_view w : a) {
    if (in_b.contains(w)) shared.insert(w);
  }
  const DirectedPairs pairs_b = directed_pairs(b, shared);
  if (pairs_b.empty()) return false;
  for (const auto& p : directed_pairs(a, shared)) {
    if (pairs_b.contains({p.word_class, p.after, p.before})) return true;
  }
  return false;
}

}  // namespace

bool semantically_compatible(std::string_view a, std::string_view b) {
  const Words words_a = split_words(a);
  const Words words_b = split_words(b);
  if (numbers(words_a) != numbers(words_b)) return false;
  if (has_negation(words_a) != has_negation(words_b)) return false;
  const WordSet forms_a = all_forms(words_a);
  const WordSet forms_b = all_forms(words_b);
  if (opposite_antonyms(forms_a, forms_b)) return false;
  if (negated_by_prefix(forms_a, forms_b) || negated_by_prefix(forms_b, forms_a)) return false;
  return !direction_swapped(words_a, words_b);
}

}  // namespace isartor::pipeline
