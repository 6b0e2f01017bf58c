#pragma once
// The gateway's clients, told apart by the key they present (ISARTOR__GATEWAY_API_KEY and
// ISARTOR__GATEWAY_API_KEYS), and each one's rate limits: requests and tokens per minute as
// token buckets (bursts up to a minute's worth, refilled continuously), as Envoy's local rate
// limit and the providers' own limits behave; and token quotas per UTC day and month.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/result.h"
#include "core/sha256.h"

namespace isartor::policy {

using Clock = std::chrono::steady_clock;
using WallClock = std::chrono::system_clock;

// Tokens used in the current calendar window (a UTC day or month), against its limit.
class Quota {
 public:
  enum class Window { kDay, kMonth };
  Quota(Window window, uint64_t limit) : window_(window), limit_(limit) {}
  // Whether the window `wall` falls in has used up its limit (a new window starts at 0).
  bool spent(WallClock::time_point wall);
  // Adds `tokens`; true when this crossed the limit (to warn once per window).
  bool add(WallClock::time_point wall, uint64_t tokens);
  // When the window of `wall` ends.
  WallClock::time_point resets_at(WallClock::time_point wall) const;
  uint64_t limit() const { return limit_; }
  const char* name() const { return window_ == Window::kDay ? "daily" : "monthly"; }

 private:
  int64_t window_of(WallClock::time_point wall) const;
  Window window_;
  uint64_t limit_;
  int64_t current_ = -1;
  uint64_t used_ = 0;
};

// `per_minute` units a minute, up to `per_minute` saved. Not thread-safe (Client holds the lock).
class TokenBucket {
 public:
  explicit TokenBucket(uint64_t per_minute);
  // Refills for the time since the last call; returns the level (negative after an overdraft).
  double level(Clock::time_point now);
  void spend(double units) { level_ -= units; }
  // Time until the level reaches `units`.
  std::chrono::milliseconds until(double units) const;
  uint64_t per_minute() const { return per_minute_; }

 private:
  uint64_t per_minute_;
  double level_;
  Clock::time_point last_;
};

// One gateway key. Thread-safe.
class Client {
 public:
  Client(std::string name, config::RateLimits limits, config::QuotaAction quota_action = config::QuotaAction::kBlock,
         bool admin = false);

  const std::string& name() const { return name_; }
  // Whether this key may use the operator's /admin/ routes.
  bool admin() const { return admin_; }
  // Takes one request: kRateLimited (Retry-After, x-ratelimit-*) when the request budget is out,
  // the token budget is overdrawn, or (action block) a quota is used up until its window ends.
  Result<void> admit(Clock::time_point now, WallClock::time_point wall = WallClock::now());
  // Spends the tokens an answer used; the token budget may go below zero, and then later
  // requests wait until it has refilled. A quota crossed with action warn is logged once.
  void charge(Clock::time_point now, uint64_t tokens, WallClock::time_point wall = WallClock::now());

  struct Reading {
    uint64_t admitted = 0;
    uint64_t limited_requests = 0;  // refused: requests per minute
    uint64_t limited_tokens = 0;    // refused: tokens per minute
    uint64_t limited_quota = 0;     // refused: a daily or monthly quota
    uint64_t tokens = 0;            // charged
  };
  Reading reading() const;

 private:
  const std::string name_;
  mutable std::mutex mutex_;
  std::unique_ptr<TokenBucket> requests_;  // null: no limit
  std::unique_ptr<TokenBucket> tokens_;
  std::vector<Quota> quotas_;
  const config::QuotaAction quota_action_;
  const bool admin_;
  Reading counts_;
};

// Every key the gateway accepts. Immutable after construction; thread-safe.
class Clients {
 public:
  // Throws nothing: the configuration was validated by config::load().
  explicit Clients(const config::Config& config);

  // The client whose key `presented` is, compared in constant time; with no key configured,
  // every request is the client "anonymous". nullptr: an unknown or missing key.
  Client* identify(std::string_view presented) const;
  bool count_cache_hits() const { return count_cache_hits_; }
  std::vector<const Client*> all() const;

 private:
  struct Entry {
    Sha256Digest digest;
    std::unique_ptr<Client> client;
  };
  std::vector<Entry> keys_;
  std::unique_ptr<Client> anonymous_;  // when no key is configured
  bool count_cache_hits_ = true;
};

}  // namespace isartor::policy
