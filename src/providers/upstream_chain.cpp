#include "providers/upstream_chain.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>
#include <random>

#include "core/log.h"

namespace isartor::providers {
namespace asio = boost::asio;

namespace {

constexpr const char* kTarget = "isartor::upstream";

// What a failed call means for the next one.
enum class Verdict {
  kFinal,     // the client's mistake or ours: the answer, whoever else could be asked
  kKey,       // the key was refused (429, 401, 403): rest it, try another key or provider
  kProvider,  // the provider failed: count it against its breaker, back off before asking it again
  kSkip,      // the provider has no such endpoint: ask the next one
};

Verdict verdict_of(const Error& error) {
  switch (error.code) {
    case ErrorCode::kRateLimited: return Verdict::kKey;
    case ErrorCode::kUpstreamRejected:
      return error.upstream_status == 401 || error.upstream_status == 403 ? Verdict::kKey : Verdict::kFinal;
    case ErrorCode::kUpstream:
    case ErrorCode::kUpstreamTimeout: return Verdict::kProvider;
    case ErrorCode::kNotFound: return Verdict::kSkip;
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

int64_t seconds_until(Clock::time_point at, Clock::time_point now) {
  return std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(at - now).count());
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
  return p;
}

struct UpstreamChain::Member {
  std::string name;
  std::string model;
  std::vector<std::unique_ptr<ProviderClient>> clients;
  KeyPool pool;
  CircuitBreaker breaker;

  Member(ChainMember m, const ChainPolicy& policy)
      : name(std::move(m.name)),
        model(std::move(m.model)),
        clients(std::move(m.clients)),
        pool(clients.size(), policy.key_strategy),
        breaker(policy.breaker_failures, policy.breaker_open) {}
  bool ready() const { return clients.front()->ready(); }
};

struct UpstreamChain::Call {
  const ChatCall* chat = nullptr;          // a chat request, or
  const NativeRequest* native = nullptr;   // a native endpoint's
};

UpstreamChain::UpstreamChain(std::vector<ChainMember> members, ChainPolicy policy) : policy_(policy) {
  if (members.size() < 2) policy_.breaker_failures = 0;
  for (ChainMember& m : members) members_.push_back(std::make_unique<Member>(std::move(m), policy_));
}

UpstreamChain::~UpstreamChain() = default;

std::unique_ptr<UpstreamChain> UpstreamChain::build(const config::Config& config, HttpClient& http) {
  std::vector<ChainMember> members;
  for (const config::UpstreamTarget& target : config::upstream_targets(config)) {
    ChainMember& m = members.emplace_back();
    m.name = target.name;
    m.model = target.model;
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
    out.push_back(std::move(s));
  }
  return out;
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
  auto answer = co_await run(c);
  if (!answer) co_return std::unexpected(answer.error());
  co_return std::move(*answer->completion);
}

asio::awaitable<Result<UpstreamAnswer>> UpstreamChain::attempt(const Call& call, const Pick& pick) {
  Member& member = *members_[pick.member];
  ProviderClient& client = *member.clients[pick.key];
  UpstreamAnswer answer;
  answer.provider = member.name;
  if (call.native) {
    auto json = co_await client.call_native(*call.native);
    if (!json) co_return std::unexpected(json.error());
    answer.completion = std::move(*json);
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
      auto stream = co_await client.stream_native(*request);
      if (!stream) co_return std::unexpected(stream.error());
      answer.stream = std::move(*stream);
      answer.native_stream = true;
    } else {
      auto native = co_await client.complete_native(*request);
      if (!native) co_return std::unexpected(native.error());
      answer.native = std::move(native->native);
      answer.completion = std::move(native->completion);
    }
    co_return answer;
  }
  const api::Json* body = chat.body;
  api::Json own;
  if (!member.model.empty()) {
    own = *chat.body;
    own["model"] = member.model;
    body = &own;
  }
  if (chat.stream) {
    auto stream = co_await client.stream(*body);
    if (!stream) co_return std::unexpected(stream.error());
    answer.stream = std::move(*stream);
  } else {
    auto completion = co_await client.complete(*body);
    if (!completion) co_return std::unexpected(completion.error());
    answer.completion = std::move(*completion);
  }
  co_return answer;
}

asio::awaitable<Result<UpstreamAnswer>> UpstreamChain::run(const Call& call) {
  const std::size_t n = members_.size();
  const Clock::time_point deadline = Clock::now() + policy_.deadline;
  // Per provider for this request: calls left, and when it may be asked again (backoff).
  std::vector<int> left(n);
  std::vector<Clock::time_point> not_before(n);
  for (std::size_t i = 0; i < n; ++i) {
    left[i] = can_take(*members_[i], call) ? policy_.max_attempts + static_cast<int>(members_[i]->pool.size()) - 1 : 0;
  }
  std::optional<Error> last;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    const Clock::time_point now = Clock::now();
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
    --left[pick->member];
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
    if (observer_) observer_->on_attempt(pick->member, outcome_of(error), error.upstream_status, took);
    const Verdict verdict = verdict_of(error);
    const Clock::time_point after = Clock::now();
    switch (verdict) {
      case Verdict::kFinal:
        m.breaker.on_success();  // it answered: not the provider failing
        co_return result;
      case Verdict::kSkip:
        m.breaker.on_success();
        left[pick->member] = 0;
        break;
      case Verdict::kKey: {
        m.breaker.on_success();
        const auto hint = retry_after(error);
        m.pool.cool_down(pick->key, after + hint.value_or(policy_.key_cooldown));
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
        const int failures = policy_.max_attempts + static_cast<int>(m.pool.size()) - 1 - left[pick->member];
        not_before[pick->member] = after + std::max(backoff(policy_, failures), retry_after(error).value_or(std::chrono::milliseconds(0)));
        LOG_WARN(kTarget, "{} failed: {}", m.name, error.message);
        break;
      }
    }
    if (verdict != Verdict::kSkip || !last) last = std::move(error);
  }
  if (last) co_return std::unexpected(std::move(*last));
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
