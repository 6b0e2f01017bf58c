#pragma once
// A cheap lexical veto for L1b semantic-cache hits. Sentence embeddings put "convert USD to EUR"
// and "convert EUR to USD", or "is X safe" and "is X not safe", at cosine > 0.9: the words are
// the same, only their order or one small word differs. This check runs only on candidate hits
// (pairs already above the similarity threshold) and rejects those whose prompts differ in one of
// the ways embeddings are blind to. A rejection costs one upstream call; a false hit returns the
// answer to another question, so every rule errs on the side of rejecting.
//
// Both prompts are split into lower-cased ASCII words (letters, digits, inner apostrophes; other
// bytes above 0x7F count as letters, U+2019 as an apostrophe). They are incompatible when:
//  1. Numbers: the sequences of numbers differ, in order. A number is a run of digits, with a
//     '.' between digits kept ("3.12") and thousands commas dropped ("300,000" = "300000");
//     "two" … "twenty" and "thirty" … "ninety" count as their digits ("one" does not: it is
//     more often a pronoun).
//  2. Negation: exactly one of them has a negation word (not, no, never, none, nothing, nobody,
//     nowhere, neither, nor, without, cannot, any word ending in n't, and the apostrophe-less
//     spellings dont, isnt, cant, …).
//  3. Opposites: for a fixed list of antonym pairs (advantages/disadvantages, pros/cons,
//     increase/decrease, before/after, enable/disable, up/down, in/out, best/worst, min/max, …),
//     one prompt mentions only one side and the other only the other side; or one prompt has a
//     word and the other only its un-/non- form (safe/unsafe, install/uninstall, blocking/
//     non-blocking; a stem of at least three letters). Plurals count as their singular.
//  4. Direction: two words that both prompts share sit on opposite sides of the same direction
//     word (to/into, from, than, for), within three content words of it, in opposite order:
//     "100 USD to EUR" vs "100 EUR to USD", "faster than Java" with the subjects swapped.
// It does not catch a different entity ("capital of France" vs "of Germany"), a different
// language, a different ask about the same topic, or a swap without a direction word ("did Google
// buy YouTube"): those are left to the similarity threshold (bench/semantic_eval measures both).
#include <string_view>

namespace isartor::pipeline {

// True when nothing above tells `a` and `b` apart, i.e. a cached answer to one may serve the
// other. Symmetric; total (any bytes, including empty and invalid UTF-8); expected time linear
// in the prompts' length (a few µs for chat-sized prompts). Thread-safe (pure).
bool semantically_compatible(std::string_view a, std::string_view b);

}  // namespace isartor::pipeline
