#pragma once
// SHA-256 (OpenSSL 3 EVP underneath), the one implementation the cache key, the API-key check,
// model downloads and folder tags share. The algorithm is fetched from the provider once per
// process: a per-call fetch (what EVP_sha256()/SHA256() do in OpenSSL 3) cost more than hashing
// a whole chat request.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace isartor {

using Sha256Digest = std::array<std::uint8_t, 32>;

// Digest of `bytes`. Thread-safe; throws std::runtime_error only if OpenSSL cannot allocate.
Sha256Digest sha256(std::string_view bytes);

// Lower-case hex of the first `bytes` bytes of a digest (all 32 by default).
std::string to_hex(const Sha256Digest& digest, std::size_t bytes = 32);
// The digest written as 64 lower-case hex digits; none for anything else.
std::optional<Sha256Digest> digest_from_hex(std::string_view hex);

// Incremental hashing (large downloads). One object per thread at a time.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void reset();  // start over
  void update(std::string_view bytes);
  Sha256Digest finish();  // the digest so far; reset() before the next use

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

}  // namespace isartor
