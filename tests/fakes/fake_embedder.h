#pragma once
// A deterministic Embedder for tests: a normalised bag of lower-cased words hashed into `dims`
// buckets, computed on a worker thread like the real one. Texts with the same words embed
// identically; more shared words mean higher cosine.
#include <cctype>
#include <cmath>
#include <functional>
#include <thread>

#include "inference/embedder.h"

namespace isartor::fakes {

class FakeEmbedder final : public inference::Embedder {
 public:
  explicit FakeEmbedder(int dims = 64) : dims_(dims) {}
  int dimensions() const override { return dims_; }
  bool fail = false;

  void embed_async(std::vector<std::string> texts, inference::EmbedCallback done) override {
    std::thread([this, texts = std::move(texts), done = std::move(done)] {
      if (fail) return done(std::unexpected(Error(ErrorCode::kInternal, "fake embedder failure")));
      std::vector<inference::Embedding> out;
      for (const auto& t : texts) out.push_back(embed_one(t));
      done(std::move(out));
    }).detach();
  }

  // Words, as embed_one() splits them.
  std::size_t count_tokens(std::string_view text) const override {
    std::size_t words = 0;
    bool in_word = false;
    for (char c : text) {
      const bool alnum = std::isalnum(static_cast<unsigned char>(c)) != 0;
      words += alnum && !in_word;
      in_word = alnum;
    }
    return words;
  }

  inference::Embedding embed_one(const std::string& text) const {
    inference::Embedding v(dims_, 0.0f);
    std::string word;
    auto flush = [&] {
      if (!word.empty()) v[std::hash<std::string>{}(word) % dims_] += 1.0f;
      word.clear();
    };
    for (char c : text) {
      if (std::isalnum(static_cast<unsigned char>(c))) {
        word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      } else {
        flush();
      }
    }
    flush();
    float norm = 0;
    for (float x : v) norm += x * x;
    norm = std::sqrt(norm);
    if (norm > 0) {
      for (float& x : v) x /= norm;
    }
    return v;
  }

 private:
  int dims_;
};

}  // namespace isartor::fakes
