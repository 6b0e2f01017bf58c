#include "providers/upstream_chain.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>
#include <random>

#include "api/openai.h"
#include "core/log.h"

namespace isartor::providers {
namespace asio = boost::asio;

namespace {

constexpr const char* kTarget = "isartor::upstream";
const ClientHeaders kNoHeaders;

// What a failed call means for the next one.
enum class Verdict {
  kFinal,     // the client's mistake or ours: the answer, whoever else could be asked
  kKey,       // the key was refused (429, 401, 403): rest it, try another key or provider
  kProvider,  // the provider failed: count it against its breaker, back off before asking it again
  kSkip,      // refused before any call (no such endpoint, inexpressible): ask the next one
};

Verdict verdict_of(const Error& error) {
  switch (error.code) {
    case ErrorCode::kRateLimited: return Verdict::kKey;
    case ErrorCode::kUpstreamRejected:
      return error.upstream_status == 401 || error.upstream_status == 403 ? Verdict::kKey : Verdict::kFinal;
    case ErrorCode::kUpstream:
    case ErrorCode::kUpstreamTimeout: return Verdict::kProvider;
    // The provider's client refused before calling (no such endpoint, a field its format cannot
    // express): another provider may take it.
    case ErrorCode::kNotFound:
    case ErrorCode::kUnprocessable:
    case ErrorCode::kInternal: return error.upstream_status == 0 ? Verdict::kSkip : Verdict::kFinal;
    default: return Verdict::kFinal;
  }
}

AttemptOutcome outcome_of(const Error& error) {
  if (error.code == ErrorCode::kRateLimited) return AttemptOutcome::kRateLimited;
  if (error.code == ErrorCode::kUpstreamTimeout) return AttemptOutcome::kTimeout;
  if (verdict_of(error) == Verdict::kKey) return AttemptOutcome::kKeyRefused;
  if (verdict_of(error) == Verdict::kProvider) return AttemptOutcome::kFailed;
  return AttemptOutcome::kRejected;
}

// Retry-After (delta-seconds; an HTTP date is taken as "no hint") or retry-after-ms.
std::optional<std::chrono::milliseconds> retry_after(const Error& error) {
  for (const auto& [name, value] : error.headers) {
    const bool ms = name == "retry-after-ms";
    if (!ms && name != "retry-after") continue;
    double n = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size() || n < 0 || n > 86400.0 * 1000) continue;
    return std::chrono::milliseconds(static_cast<int64_t>(ms ? n : n * 1000));
  }
  return std::nullopt;
}

// Full jitter (AWS): uniform in [0, min(max, initial * 2^(n-1))] before the n-th retry.
std::chrono::milliseconds backoff(const ChainPolicy& policy, int failures) {
  const int64_t cap = std::min<int64_t>(policy.max_backoff.count(),
                                        policy.initial_backoff.count() << std::min(failures - 1, 20));
  if (cap <= 0) return std::chrono::milliseconds(0);
  thread_local std::minstd_rand random(std::random_device{}());
  return std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, cap)(random));
}

// The longest a key rests, whatever a provider's Retry-After says (one bad header must not take
// a key away for days).
constexpr std::chrono::milliseconds kMaxRest = std::chrono::hours(1);

int64_t seconds_until(Clock::time_point at, Clock::time_point now) {
  return std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(at - now).count());
}

// A provider's token quotas: what its answers used in the current UTC day and month.
class ProviderQuota {
 public:
  ProviderQuota(std::string name, uint64_t per_day, uint64_t per_month) : name_(std::move(name)) {
    if (per_day) quotas_.emplace_back(policy::Quota::Window::kDay, per_day);
    if (per_month) quotas_.emplace_back(policy::Quota::Window::kMonth, per_month);
  }
  // Thread-safe.
  bool spent() {
    std::lock_guard lock(mutex_);
    const auto wall = policy::WallClock::now();
    return std::ranges::any_of(quotas_, [&](policy::Quota& q) { return q.spent(wall); });
  }
  // Thread-safe.
  void charge(const api::Usage& usage) {
    if (quotas_.empty()) return;
    const auto tokens = static_cast<uint64_t>(std::max<int64_t>(0, usage.prompt_tokens) + std::max<int64_t>(0, usage.completion_tokens));
    std::lock_guard lock(mutex_);
    const auto wall = policy::WallClock::now();
    for (policy::Quota& q : quotas_) {
      if (q.add(wall, tokens)) LOG_WARN(kTarget, "{} used up its {} quota of {} tokens", name_, q.name(), q.limit());
    }
  }
  bool empty() const { return quotas_.empty(); }

 private:
  const std::string name_;
  std::mutex mutex_;
  std::vector<policy::Quota> quotas_;
};

// Passes a stream through and charges its usage to the provider's quota when it ends (or is
// dropped: the provider bills what it sent).
class QuotaStream final : public ChunkStream {
 public:
  QuotaStream(std::unique_ptr<ChunkStream> inner, ProviderQuota& quota) : inner_(std::move(inner)), quota_(quota) {}
  ~QuotaStream() override { quota_.charge(usage_); }
  asio::awaitable<Result<std::optional<api::Json>>> next() override {
    auto chunk = co_await inner_->next();
    if (chunk && *chunk && (*chunk)->contains("usage")) {
      const api::Usage u = api::usage_of(**chunk);
      usage_.prompt_tokens = std::max(usage_.prompt_tokens, u.prompt_tokens);
      usage_.completion_tokens = std::max(usage_.completion_tokens, u.completion_tokens);
    }
    co_return chunk;
  }
  bool cacheable() const override { return inner_->cacheable(); }
  std::string take_native() override { return inner_->take_native(); }

 private:
  std::unique_ptr<ChunkStream> inner_;
  ProviderQuota& quota_;
  api::Usage usage_;
};

Error quota_error(const std::string& what) {
  Error error(ErrorCode::kRateLimited, what);
  error.upstream_type = "insufficient_quota";
  error.upstream_code = "insufficient_quota";
  return error;
}

}  // namespace

const char* to_string(AttemptOutcome outcome) {
  switch (outcome) {
    case AttemptOutcome::kOk: return "ok";
    case AttemptOutcome::kRateLimited: return "rate_limited";
    case AttemptOutcome::kKeyRefused: return "key_refused";
    case AttemptOutcome::kRejected: return "rejected";
    case AttemptOutcome::kFailed: return "failed";
    case AttemptOutcome::kTimeout: return "timeout";
  }
  return "?";
}

ChainPolicy policy_of(const config::Config& config) {
  const config::ResilienceConfig& r = config.resilience;
  ChainPolicy p;
  p.key_strategy = r.key_strategy;
  p.key_cooldown = std::chrono::seconds(r.key_cooldown_secs);
  p.max_attempts = r.max_attempts;
  p.initial_backoff = std::chrono::milliseconds(r.initial_backoff_ms);
  p.max_backoff = std::chrono::milliseconds(r.max_backoff_ms);
  p.deadline = std::chrono::seconds(r.deadline_secs);
  p.breaker_failures = r.breaker_failures;
  p.breaker_open = std::chrono::seconds(r.breaker_open_secs);
  p.quota_action = r.provider_quota_action;
  return p;
}

struct UpstreamChain::Member {
  std::string name;
  std::string model;
  std::vector<std::unique_ptr<ProviderClient>> clients;
  KeyPool pool;
  CircuitBreaker breaker;
  ProviderQuota quota;

  Member(ChainMember m, const ChainPolicy& policy)
      : name(std::move(m.name)),
        model(std::move(m.model)),
        clients(std::move(m.clients)),
        pool(clients.size(), policy.key_strategy),
        breaker(policy.breaker_failures, policy.breaker_open),
        quota(name, m.tokens_per_day, m.tokens_per_month) {}
  bool ready() const { return clients.front()->ready(); }
};

struct UpstreamChain::Call {
  const ChatCall* chat = nullptr;          // a chat request, or
  const NativeRequest* native = nullptr;   // a native endpoint's
};

UpstreamChain::UpstreamChain(std::vector<ChainMember> members, ChainPolicy policy) : policy_(policy) {
  const auto ready = std::ranges::count_if(members, [](const ChainMember& m) { return m.clients.front()->ready(); });
  if (ready < 2) policy_.breaker_failures = 0;
  for (ChainMember& m : members) members_.push_back(std::make_unique<Member>(std::move(m), policy_));
}

UpstreamChain::~UpstreamChain() = default;

std::unique_ptr<UpstreamChain> UpstreamChain::build(const config::Config& config, HttpClient& http) {
  std::vector<ChainMember> members;
  for (const config::UpstreamTarget& target : config::upstream_targets(config)) {
    ChainMember& m = members.emplace_back();
    m.name = target.name;
    m.model = target.model;
    m.tokens_per_day = target.tokens_per_day;
    m.tokens_per_month = target.tokens_per_month;
    for (const std::string& key : target.api_keys) m.clients.push_back(make_provider({target, key, config}, http));
    if (m.clients.empty()) m.clients.push_back(make_provider({target, std::string(), config}, http));
  }
  return std::make_unique<UpstreamChain>(std::move(members), policy_of(config));
}

std::string_view UpstreamChain::primary() const { return members_.front()->name; }

bool UpstreamChain::speaks(api::WireFormat format) const { return members_.front()->clients.front()->speaks(format); }

bool UpstreamChain::ready() const {
  return std::ranges::any_of(members_, [](const auto& m) { return m->ready(); });
}

std::vector<std::string> UpstreamChain::names() const {
  std::vector<std::string> out;
  for (const auto& m : members_) out.push_back(m->name);
  return out;
}

std::vector<MemberStatus> UpstreamChain::status() const {
  const auto now = Clock::now();
  std::vector<MemberStatus> out;
  for (const auto& m : members_) {
    MemberStatus s;
    s.name = m->name;
    s.provider = std::string(m->clients.front()->name());
    s.breaker = m->breaker.state(now);
    s.ready = m->ready();
    s.keys = s.ready ? m->pool.size() : 0;
    s.keys_available = s.ready ? m->pool.available(now) : 0;
    s.quota_spent = !m->quota.empty() && m->quota.spent();
    out.push_back(std::move(s));
  }
  return out;
}

std::chrono::milliseconds UpstreamChain::max_rest() const { return std::max(policy_.key_cooldown, kMaxRest); }

bool UpstreamChain::quota_blocks(Member& member) const {
  return policy_.quota_action != config::QuotaAction::kWarn && !member.quota.empty() && member.quota.spent();
}

bool UpstreamChain::can_take(const Member& member, const Call& call) const {
  if (!member.ready()) return false;
  if (call.chat && call.chat->provider_only) return member.clients.front()->speaks(call.chat->format);
  return true;
}

asio::awaitable<Result<UpstreamAnswer>> UpstreamChain::chat(const ChatCall& call) {
  Call c;
  c.chat = &call;
  co_return co_await run(c);
}

asio::awaitable<Result<api::Json>> UpstreamChain::call_native(const NativeRequest& request) {
  Call c;
  c.native = &request;
  CO_ASSIGN_OR_RETURN(auto answer, co_await run(c));
  co_return std::move(*answer.completion);
}

asio::awaitable<Result<UpstreamAnswer>> UpstreamChain::attempt(const Call& call, const Pick& pick) {
  Member& member = *members_[pick.member];
  ProviderClient& client = *member.clients[pick.key];
  UpstreamAnswer answer;
  answer.provider = member.name;
  if (call.native) {
    CO_ASSIGN_OR_RETURN(answer.completion, co_await client.call_native(*call.native));
    co_return answer;
  }
  const ChatCall& chat = *call.chat;
  if (chat.native && client.speaks(chat.format)) {
    const PassThrough* request = chat.native;
    PassThrough own;
    if (!member.model.empty()) {
      own = *chat.native;
      own.body["model"] = member.model;
      request = &own;
    }
    if (chat.stream) {
      CO_ASSIGN_OR_RETURN(answer.stream, co_await client.stream_native(*request));
      answer.native_stream = true;
    } else {
      CO_ASSIGN_OR_RETURN(auto native, co_await client.complete_native(*request));
      answer.native = std::move(native.native);
      answer.completion = std::move(native.completion);
    }
    charge(member, answer);
    co_return answer;
  }
  const api::Json* body = chat.body;
  api::Json own;
  if (!member.model.empty()) {
    own = *chat.body;
    own["model"] = member.model;
    body = &own;
  }
  const ClientHeaders& headers = chat.headers ? *chat.headers : kNoHeaders;
  if (chat.stream) {
    CO_ASSIGN_OR_RETURN(answer.stream, co_await client.stream(*body, headers));
  } else {
    CO_ASSIGN_OR_RETURN(answer.completion, co_await client.complete(*body, headers));
  }
  charge(member, answer);
  co_return answer;
}

void UpstreamChain::charge(Member& member, UpstreamAnswer& answer) {
  if (member.quota.empty()) return;
  if (answer.stream) {
    answer.stream = std::make_unique<QuotaStream>(std::move(answer.stream), member.quota);
  } else if (answer.completion) {
    member.quota.charge(api::usage_of(*answer.completion));
  }
}

asio::awaitable<Result<UpstreamAnswer>> UpstreamChain::run(const Call& call) {
  const std::size_t n = members_.size();
  const Clock::time_point deadline = Clock::now() + policy_.deadline;
  // Per provider for this request: calls left, refused keys that may still move on to another
  // key without using one, and when it may be asked again (backoff).
  std::vector<int> left(n);
  std::vector<int> free_refusals(n);
  std::vector<Clock::time_point> not_before(n);
  for (std::size_t i = 0; i < n; ++i) {
    left[i] = can_take(*members_[i], call) ? policy_.max_attempts : 0;
    free_refusals[i] = static_cast<int>(members_[i]->pool.size()) - 1;
  }
  std::optional<Error> last;
  bool quota_skipped = false;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    const Clock::time_point now = Clock::now();
    // Past the deadline nothing new starts (an attempt under way has its own timeout).
    if (last && now >= deadline) break;
    std::optional<Pick> pick;
    Clock::time_point wake = Clock::time_point::max();
    for (std::size_t i = 0; i < n && !pick; ++i) {
      Member& m = *members_[i];
      if (left[i] <= 0) continue;
      // Only this request's own backoff or Retry-After is waited for; an open breaker or resting
      // keys send it on to the next provider instead.
      if (not_before[i] > now) {
        wake = std::min(wake, not_before[i]);
        continue;
      }
      if (quota_blocks(m)) {
        if (policy_.quota_action == config::QuotaAction::kBlock) {
          co_return std::unexpected(quota_error("the token quota of upstream provider " + m.name + " is used up"));
        }
        left[i] = 0;
        quota_skipped = true;
        continue;
      }
      // The breaker last: letting a half-open breaker's probe through commits to calling.
      if (m.pool.available(now) == 0 || !m.breaker.allow(now)) continue;
      if (const auto key = m.pool.pick(now)) {
        pick.emplace();
        pick->member = i;
        pick->key = *key;
      }
    }
    // Every key of every provider rests and nothing was tried yet: the key whose rest ends first
    // rather than a refusal (the provider may well take it again).
    for (std::size_t i = 0; i < n && !pick && !last && wake == Clock::time_point::max(); ++i) {
      Member& m = *members_[i];
      if (left[i] <= 0 || !m.breaker.allow(now)) continue;
      pick.emplace();
      pick->member = i;
      pick->key = m.pool.soonest();
    }
    if (!pick) {
      if (wake >= deadline) break;
      timer.expires_at(wake);
      auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return std::unexpected(Error(ErrorCode::kUnavailable, "the request was cancelled"));
      continue;
    }
    Member& m = *members_[pick->member];
    const auto started = Clock::now();
    auto result = co_await attempt(call, *pick);
    const auto took = Clock::now() - started;
    if (result) {
      m.breaker.on_success();
      if (observer_) observer_->on_attempt(pick->member, AttemptOutcome::kOk, 200, took);
      if (last) LOG_INFO(kTarget, "answered by {} after an upstream failure", m.name);
      co_return result;
    }
    Error& error = result.error();
    const Verdict verdict = verdict_of(error);
    if (observer_ && verdict != Verdict::kSkip) {
      observer_->on_attempt(pick->member, outcome_of(error), error.upstream_status, took);
    }
    const Clock::time_point after = Clock::now();
    switch (verdict) {
      case Verdict::kFinal:
        m.breaker.on_success();  // it answered: not the provider failing
        co_return result;
      case Verdict::kSkip:
        // Refused here, before any call: this provider cannot take the request; the next may.
        m.breaker.release();
        left[pick->member] = 0;
        break;
      case Verdict::kKey: {
        m.breaker.on_success();
        if (free_refusals[pick->member] > 0) --free_refusals[pick->member];
        else --left[pick->member];
        const auto hint = retry_after(error);
        m.pool.cool_down(pick->key, after + std::min(hint.value_or(policy_.key_cooldown), max_rest()));
        // With no other key, this provider is asked again only when it said when.
        if (m.pool.available(after) == 0) {
          if (hint) not_before[pick->member] = after + *hint;
          else left[pick->member] = 0;
        }
        LOG_WARN(kTarget, "{} refused key {} of {} (HTTP {}); it rests", m.name, pick->key + 1, m.pool.size(),
                 error.upstream_status);
        break;
      }
      case Verdict::kProvider: {
        m.breaker.on_failure(after);
        --left[pick->member];
        const int failures = policy_.max_attempts - left[pick->member];
        not_before[pick->member] = after + std::max(backoff(policy_, failures), retry_after(error).value_or(std::chrono::milliseconds(0)));
        LOG_WARN(kTarget, "{} failed: {}", m.name, error.message);
        break;
      }
    }
    if (verdict != Verdict::kSkip || !last) last = std::move(error);
  }
  if (last) co_return std::unexpected(std::move(*last));
  if (quota_skipped) co_return std::unexpected(quota_error("every upstream provider's token quota is used up"));
  // Nothing was called: no provider with a key, or every breaker open.
  const auto now = Clock::now();
  for (const auto& m : members_) {
    if (m->ready()) {
      Clock::time_point soonest = Clock::time_point::max();
      std::string open;
      for (const auto& o : members_) {
        if (!o->ready() || o->breaker.state(now) == BreakerState::kClosed) continue;
        soonest = std::min(soonest, o->breaker.retry_at(now));
        open += (open.empty() ? "" : ", ") + o->name;
      }
      Error error(ErrorCode::kUnavailable,
                  open.empty() ? std::string("no upstream provider can take this request")
                               : "every upstream provider is unavailable (circuit open: " + open + ")");
      if (soonest != Clock::time_point::max()) error.headers.emplace_back("retry-after", std::to_string(seconds_until(soonest, now)));
      co_return std::unexpected(std::move(error));
    }
  }
  // No key anywhere: the primary's client says which variable to set.
  const Pick primary;
  co_return co_await attempt(call, primary);
}

}  // namespace isartor::providers
