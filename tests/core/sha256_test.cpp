#include "core/sha256.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace isartor {
namespace {

// FIPS 180-2 test vectors.
constexpr const char* kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* kAbc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(to_hex(sha256("")), kEmpty);
  EXPECT_EQ(to_hex(sha256("abc")), kAbc);
  EXPECT_EQ(to_hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, IncrementalEqualsOneShotAndResets) {
  Sha256 h;
  h.update("a");
  h.update("");
  h.update("bc");
  EXPECT_EQ(to_hex(h.finish()), kAbc);
  h.reset();
  EXPECT_EQ(to_hex(h.finish()), kEmpty);
}

TEST(Sha256Test, HexPrefix) {
  EXPECT_EQ(to_hex(sha256("abc"), 3), "ba7816");
  EXPECT_EQ(to_hex(sha256("abc"), 99), kAbc);
}

TEST(Sha256Test, ThreadsHashIndependently) {
  // Each thread reuses its own context; interleaved use must not mix inputs.
  std::vector<std::thread> threads;
  std::vector<std::string> results(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &results] {
      std::string last;
      for (int i = 0; i < 2000; ++i) last = to_hex(sha256(t % 2 ? "abc" : ""));
      results[t] = last;
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(results[t], t % 2 ? kAbc : kEmpty);
}

}  // namespace
}  // namespace isartor
