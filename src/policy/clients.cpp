#include "policy/clients.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cmath>

#include "core/log.h"

namespace isartor::policy {

namespace {

std::unique_ptr<TokenBucket> bucket(uint64_t per_minute) {
  return per_minute == 0 ? nullptr : std::make_unique<TokenBucket>(per_minute);
}

int64_t whole_seconds(std::chrono::milliseconds ms) {
  return std::max<int64_t>(1, (ms.count() + 999) / 1000);
}

}  // namespace

int64_t Quota::window_of(WallClock::time_point wall) const {
  const auto day = std::chrono::floor<std::chrono::days>(wall);
  if (window_ == Window::kDay) return day.time_since_epoch().count();
  const std::chrono::year_month_day ymd(day);
  return static_cast<int64_t>(static_cast<int>(ymd.year())) * 12 + static_cast<unsigned>(ymd.month());
}

bool Quota::spent(WallClock::time_point wall) {
  if (const int64_t w = window_of(wall); w != current_) {
    current_ = w;
    used_ = 0;
  }
  return used_ >= limit_;
}

bool Quota::add(WallClock::time_point wall, uint64_t tokens) {
  const bool before = spent(wall);
  used_ += tokens;
  return !before && used_ >= limit_;
}

WallClock::time_point Quota::resets_at(WallClock::time_point wall) const {
  const auto day = std::chrono::floor<std::chrono::days>(wall);
  if (window_ == Window::kDay) return day + std::chrono::days(1);
  const std::chrono::year_month_day ymd(day);
  const std::chrono::year_month next = std::chrono::year_month(ymd.year(), ymd.month()) + std::chrono::months(1);
  return std::chrono::sys_days(next / std::chrono::day(1));
}

TokenBucket::TokenBucket(uint64_t per_minute)
    : per_minute_(per_minute), level_(static_cast<double>(per_minute)), last_(Clock::now()) {}

double TokenBucket::level(Clock::time_point now) {
  if (now > last_) {
    const double minutes = std::chrono::duration<double>(now - last_).count() / 60.0;
    level_ = std::min(static_cast<double>(per_minute_), level_ + minutes * static_cast<double>(per_minute_));
    last_ = now;
  }
  return level_;
}

std::chrono::milliseconds TokenBucket::until(double units) const {
  const double missing = units - level_;
  if (missing <= 0) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(static_cast<int64_t>(std::ceil(missing * 60000.0 / static_cast<double>(per_minute_))));
}

Client::Client(std::string name, config::RateLimits limits, config::QuotaAction quota_action, bool admin)
    : name_(std::move(name)),
      requests_(bucket(limits.requests_per_minute)),
      tokens_(bucket(limits.tokens_per_minute)),
      quota_action_(quota_action),
      admin_(admin) {
  if (limits.tokens_per_day) quotas_.emplace_back(Quota::Window::kDay, limits.tokens_per_day);
  if (limits.tokens_per_month) quotas_.emplace_back(Quota::Window::kMonth, limits.tokens_per_month);
}

Result<void> Client::admit(Clock::time_point now, WallClock::time_point wall) {
  std::lock_guard lock(mutex_);
  if (quota_action_ == config::QuotaAction::kBlock) {
    for (Quota& quota : quotas_) {
      if (!quota.spent(wall)) continue;
      ++counts_.limited_quota;
      const auto wait = std::chrono::ceil<std::chrono::seconds>(quota.resets_at(wall) - wall).count();
      Error error(ErrorCode::kRateLimited, "the " + std::string(quota.name()) + " quota of " +
                                               std::to_string(quota.limit()) + " tokens for gateway key '" + name_ +
                                               "' is used up; it resets in " + std::to_string(wait) + " s (UTC)");
      error.upstream_type = "insufficient_quota";  // OpenAI's type and code for a used-up quota
      error.upstream_code = "insufficient_quota";
      error.headers.emplace_back("retry-after", std::to_string(std::max<int64_t>(1, wait)));
      return std::unexpected(std::move(error));
    }
  }
  const bool requests_out = requests_ && requests_->level(now) < 1.0;
  // Tokens are known only after the answer, so the budget refuses once it is spent, not before.
  const bool tokens_out = !requests_out && tokens_ && tokens_->level(now) <= 0.0;
  if (!requests_out && !tokens_out) {
    if (requests_) requests_->spend(1.0);
    ++counts_.admitted;
    return {};
  }
  TokenBucket& spent = requests_out ? *requests_ : *tokens_;
  const auto wait = spent.until(requests_out ? 1.0 : 1e-9);
  ++(requests_out ? counts_.limited_requests : counts_.limited_tokens);
  Error error(ErrorCode::kRateLimited,
              "rate limit reached for gateway key '" + name_ + "': " + std::to_string(spent.per_minute()) +
                  (requests_out ? " requests" : " tokens") + " per minute; retry in " +
                  std::to_string(whole_seconds(wait)) + " s");
  error.headers.emplace_back("retry-after", std::to_string(whole_seconds(wait)));
  // The names OpenAI uses, so clients that pace themselves by them keep working.
  const std::pair<const char*, TokenBucket*> kinds[] = {{"requests", requests_.get()}, {"tokens", tokens_.get()}};
  for (const auto& [kind, b] : kinds) {
    if (!b) continue;
    const std::string suffix = kind;
    error.headers.emplace_back("x-ratelimit-limit-" + suffix, std::to_string(b->per_minute()));
    error.headers.emplace_back("x-ratelimit-remaining-" + suffix,
                               std::to_string(static_cast<int64_t>(std::max(0.0, std::floor(b->level(now))))));
    error.headers.emplace_back("x-ratelimit-reset-" + suffix, std::to_string(whole_seconds(b->until(1.0))) + "s");
  }
  return std::unexpected(std::move(error));
}

void Client::charge(Clock::time_point now, uint64_t tokens, WallClock::time_point wall) {
  std::lock_guard lock(mutex_);
  counts_.tokens += tokens;
  for (Quota& quota : quotas_) {
    if (quota.add(wall, tokens) && quota_action_ == config::QuotaAction::kWarn) {
      LOG_WARN("isartor::policy", "gateway key '{}' used up its {} quota of {} tokens", name_, quota.name(), quota.limit());
    }
  }
  if (!tokens_) return;
  tokens_->level(now);
  tokens_->spend(static_cast<double>(tokens));
}

Client::Reading Client::reading() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

Clients::Clients(const config::Config& config) : count_cache_hits_(config.rate_limit.count_cache_hits) {
  const config::RateLimits& defaults = config.rate_limit.defaults;
  const config::QuotaAction action = config.rate_limit.quota_action;
  auto with_defaults = [&](config::RateLimits own) {
    for (auto member : {&config::RateLimits::requests_per_minute, &config::RateLimits::tokens_per_minute,
                        &config::RateLimits::tokens_per_day, &config::RateLimits::tokens_per_month}) {
      if (own.*member == 0) own.*member = defaults.*member;
    }
    return own;
  };
  if (!config.gateway_api_key.empty()) {
    keys_.push_back({sha256(config.gateway_api_key), std::make_unique<Client>("default", defaults, action, true)});
  }
  for (const config::GatewayKey& key : config.gateway_api_keys) {
    keys_.push_back({key.digest, std::make_unique<Client>(key.name, with_defaults(key.limits), action, key.admin)});
  }
  if (keys_.empty()) anonymous_ = std::make_unique<Client>("anonymous", defaults, action);
}

Client* Clients::identify(std::string_view presented) const {
  if (anonymous_) return anonymous_.get();
  const Sha256Digest got = sha256(presented);
  Client* found = nullptr;
  // Every digest is compared, so the time taken says nothing about which key matched.
  for (const Entry& entry : keys_) {
    if (CRYPTO_memcmp(entry.digest.data(), got.data(), got.size()) == 0) found = entry.client.get();
  }
  return found;
}

std::vector<const Client*> Clients::all() const {
  std::vector<const Client*> out;
  if (anonymous_) out.push_back(anonymous_.get());
  for (const Entry& entry : keys_) out.push_back(entry.client.get());
  return out;
}

}  // namespace isartor::policy
