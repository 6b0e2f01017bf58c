#include "core/sha256.h"

#include <openssl/evp.h>

#include <algorithm>
#include <stdexcept>

namespace isartor {

namespace {

const EVP_MD* sha256_md() {
  // Fetched once; kept for the process's life (freeing it at exit would race late users).
  static const EVP_MD* md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (fetched == nullptr) throw std::runtime_error("OpenSSL has no SHA-256");
    return fetched;
  }();
  return md;
}

void check(int ok) {
  // With the default provider SHA-256 can only fail on allocation failure.
  if (ok != 1) throw std::runtime_error("SHA-256 digest failed");
}

}  // namespace

struct Sha256::Ctx {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  if (!ctx_->ctx) throw std::runtime_error("SHA-256: out of memory");
  reset();
}

Sha256::~Sha256() = default;

void Sha256::reset() { check(EVP_DigestInit_ex2(ctx_->ctx.get(), sha256_md(), nullptr)); }

void Sha256::update(std::string_view bytes) { check(EVP_DigestUpdate(ctx_->ctx.get(), bytes.data(), bytes.size())); }

Sha256Digest Sha256::finish() {
  Sha256Digest out{};
  unsigned int length = 0;
  check(EVP_DigestFinal_ex(ctx_->ctx.get(), out.data(), &length));
  return out;
}

Sha256Digest sha256(std::string_view bytes) {
  // One context per thread, reused: creating one per call is most of the cost of a short input.
  thread_local Sha256 hasher;
  hasher.reset();
  hasher.update(bytes);
  return hasher.finish();
}

std::optional<Sha256Digest> digest_from_hex(std::string_view hex) {
  Sha256Digest digest{};
  if (hex.size() != 2 * digest.size()) return std::nullopt;
  auto nibble = [](char c) -> int { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  for (std::size_t i = 0; i < digest.size(); ++i) {
    const int high = nibble(hex[2 * i]);
    const int low = nibble(hex[2 * i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    digest[i] = static_cast<std::uint8_t>(high << 4 | low);
  }
  return digest;
}

std::string to_hex(const Sha256Digest& digest, std::size_t bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  bytes = std::min(bytes, digest.size());
  std::string out(2 * bytes, '0');
  for (std::size_t i = 0; i < bytes; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 15];
  }
  return out;
}

}  // namespace isartor
