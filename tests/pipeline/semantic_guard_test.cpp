#include "pipeline/semantic_guard.h"

#include <gtest/gtest.h>

#include <string>

namespace isartor::pipeline {
namespace {

// Every rule is symmetric; check both argument orders so a one-sided bug cannot hide.
void expect_compatible(std::string_view a, std::string_view b) {
  EXPECT_TRUE(semantically_compatible(a, b)) << a << " | " << b;
  EXPECT_TRUE(semantically_compatible(b, a)) << b << " | " << a;
}

void expect_incompatible(std::string_view a, std::string_view b) {
  EXPECT_FALSE(semantically_compatible(a, b)) << a << " | " << b;
  EXPECT_FALSE(semantically_compatible(b, a)) << b << " | " << a;
}

TEST(SemanticGuardTest, ParaphrasesPass) {
  expect_compatible("How do I reverse a string in Python?", "What's the way to reverse a Python string?");
  expect_compatible("In Python, how do I read a CSV file?", "How do I read a CSV file in Python?");
  expect_compatible("For my daughter, write a short poem about cats.",
                    "Write a short poem about cats for my daughter.");
  expect_compatible("How much protein should I eat per day to build muscle?",
                    "To build muscle, how much protein should I eat per day?");
  expect_compatible("Give me three tips for better sleep.", "Tips for better sleep: give me three.");
  expect_compatible("Hello!", "Hi there, hope you're having a good day!");
}

TEST(SemanticGuardTest, EmptyAndIdenticalInputsAreCompatible) {
  expect_compatible("", "");
  expect_compatible("   ", "?!");
  expect_compatible("Is 97 prime?", "Is 97 prime?");
}

TEST(SemanticGuardTest, NumbersMustMatch) {
  expect_incompatible("What is 15% of 80?", "What is 15% of 90?");
  expect_incompatible("What's new in Python 3.12?", "What's new in Python 3.11?");
  expect_incompatible("Convert 2.5 kg to pounds.", "Convert 25 kg to pounds.");
  expect_incompatible("What is the 10th Fibonacci number?", "What is the 20th Fibonacci number?");
  expect_incompatible("Plan a 3-day trip to Rome.", "Plan a trip to Rome.");
  expect_incompatible("Give me a three-day meal plan.", "Give me a seven-day meal plan.");
}

TEST(SemanticGuardTest, NumberOrderMatters) {
  expect_incompatible("What is 10 divided by 2?", "What is 2 divided by 10?");
}

TEST(SemanticGuardTest, NumberSpellingsThatMeanTheSameAreEqual) {
  expect_compatible("Plan a 3 day trip to Rome", "Plan a three-day trip to Rome");
  expect_compatible("A $300,000 mortgage", "a $300000 mortgage");
  expect_compatible("the date 03/04", "the date 3/4");
  expect_compatible("merge dicts in python3", "merge dicts in Python 3");
  // "one" is usually a pronoun ("which one"), so it is not read as 1.
  expect_compatible("Which one is faster, Go or Rust?", "Which is faster, Go or Rust?");
}

TEST(SemanticGuardTest, CommaListIsSeveralNumbers) {
  // "3,1,2" is three numbers, not 312 and not a thousands-separated 3,120.
  expect_incompatible("Sort 3,1,2", "Sort 312");
  expect_compatible("Sort 3,1,2", "Sort 3, 1, 2");
}

TEST(SemanticGuardTest, NegationInOnlyOnePromptIsIncompatible) {
  expect_incompatible("Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?");
  expect_incompatible("Why is my code working?", "Why is my code not working?");
  expect_incompatible("Should I use a VPN on public Wi-Fi?", "Why shouldn't I use a VPN on public Wi-Fi?");
  expect_incompatible("How do I make a cake with eggs?", "How do I make a cake without eggs?");
  expect_incompatible("Animals that can swim", "Animals that cannot swim");
  expect_incompatible("Customers who placed an order", "Customers who never placed an order");
}

TEST(SemanticGuardTest, NegationSpellingsAreEquivalent) {
  expect_compatible("I don't know how to use async await", "dont know how to use async await");
  expect_compatible("I don\xE2\x80\x99t know how to use async await", "I don't know how to use async await");
  expect_compatible("Which browsers don't support WebGPU?", "Which browsers do not support WebGPU?");
}

TEST(SemanticGuardTest, OppositeMarkersAreIncompatible) {
  expect_incompatible("What are the advantages of remote work?", "What are the disadvantages of remote work?");
  expect_incompatible("Pros of using TypeScript", "Cons of using TypeScript");
  expect_incompatible("How do I increase the font size?", "How do I decrease the font size?");
  expect_incompatible("What should I do before a marathon?", "What should I do after a marathon?");
  expect_incompatible("Strengths of Agile", "Weaknesses of Agile");
  expect_incompatible("How to zoom in on a Mac", "How to zoom out on a Mac");
  expect_incompatible("Sort in ascending order", "Sort in descending order");
}

TEST(SemanticGuardTest, BothSidesOfAPairAreNeutral) {
  // Naming both poles, or neither, says nothing about direction.
  expect_compatible("Pros and cons of Rust", "What are the cons and pros of Rust?");
  expect_compatible("What are the benefits of meditation?", "What are the advantages of meditation?");
  expect_compatible("How do I delete a file in Linux?", "How do I remove a file in Linux?");
}

TEST(SemanticGuardTest, UnAndNonPrefixesNegate) {
  expect_incompatible("Is it safe to swim after eating?", "Why is it unsafe to swim after eating?");
  expect_incompatible("How to install Homebrew", "How to uninstall Homebrew");
  expect_incompatible("How do I mute a channel?", "How do I unmute a channel?");
  expect_incompatible("Blocking sockets in Java", "Non-blocking sockets in Java");
  expect_compatible("Non-blocking sockets in Java", "nonblocking sockets in Java");
  // Other prefixes form too many unrelated pairs to be read as negation.
  expect_compatible("What is the recommended daily intake of vitamin D?",
                    "How much vitamin D should I take daily, as recommended?");
}

TEST(SemanticGuardTest, SwappedDirectionIsIncompatible) {
  expect_incompatible("Convert 100 USD to EUR.", "Convert 100 EUR to USD.");
  expect_incompatible("Convert 5 miles into kilometers.", "Convert 5 kilometers to miles.");
  expect_incompatible("How do I migrate from MySQL to PostgreSQL?", "How do I migrate from PostgreSQL to MySQL?");
  expect_incompatible("Cheapest flight from London to New York", "Cheapest flight from New York to London");
  expect_incompatible("Is Python faster than Java?", "Is Java faster than Python?");
  expect_incompatible("Did Edison work for Tesla?", "Did Tesla work for Edison?");
  expect_incompatible("Explain how to convert passive voice to active voice.",
                      "Explain how to convert active voice to passive voice.");
}

TEST(SemanticGuardTest, SameDirectionDifferentWordingPasses) {
  expect_compatible("Convert 10 km to miles", "Could you convert a distance of 10 km into miles?");
  expect_compatible("Translate this from English to German", "From English to German, translate this");
}

TEST(SemanticGuardTest, KnownBlindSpotsPass) {
  // What the guard does not claim to catch: swaps without a direction word, other entities.
  EXPECT_TRUE(semantically_compatible("Did Google buy YouTube?", "Did YouTube buy Google?"));
  EXPECT_TRUE(semantically_compatible("What is the capital of France?", "What is the capital of Germany?"));
}

TEST(SemanticGuardTest, ArbitraryBytesDoNotCrash) {
  const std::string garbage("\xFF\xFE\x00\xE2\x80 \xE2\x80\x99\x80 12.,,3.", 17);
  EXPECT_TRUE(semantically_compatible(garbage, garbage));
  EXPECT_FALSE(semantically_compatible(garbage, "no numbers here"));
  EXPECT_TRUE(semantically_compatible("'", "\xE2\x80\x99"));
  EXPECT_TRUE(semantically_compatible("r\xC3\xA9sum\xC3\xA9 tips", "R\xC3\xA9sum\xC3\xA9 tips"));
}

}  // namespace
}  // namespace isartor::pipeline
