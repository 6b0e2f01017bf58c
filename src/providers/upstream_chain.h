#pragma once
// L3's providers in order, each with its pool of keys and its circuit breaker: a call goes to the
// first provider that can take it now, and on a 429, a 5xx, a timeout or a connect error moves on
// to the next key or provider, backing off (full jitter) and honouring Retry-After, within one
// deadline. A client's mistake (another 4xx) is never retried nor sent elsewhere. A stream is
// retried only until the provider accepted it: once it has a 2xx, its bytes are the client's.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "providers/circuit_breaker.h"
#include "providers/key_pool.h"
#include "policy/clients.h"
#include "providers/provider_client.h"

namespace isartor::providers {

// How one call to one provider ended.
enum class AttemptOutcome : uint8_t {
  kOk,           // a 2xx
  kRateLimited,  // 429: the key rests, the next key or provider is tried
  kKeyRefused,   // 401/403: the gateway's key; likewise
  kRejected,     // another 4xx: the client's mistake, returned as it is
  kFailed,       // 5xx, garbage, connect error: counts towards the breaker
  kTimeout,      // likewise
};
inline constexpr std::size_t kAttemptOutcomeCount = 6;

// "ok", "rate_limited", "key_refused", "rejected", "failed", "timeout". Pure.
const char* to_string(AttemptOutcome outcome);

// Sees every call the chain makes (metrics). Called from I/O threads; must be thread-safe.
class UpstreamObserver {
 public:
  virtual ~UpstreamObserver() = default;
  // `member`: the provider's index in the chain; `status`: its HTTP status, 0 when none.
  virtual void on_attempt(std::size_t member, AttemptOutcome outcome, int status, std::chrono::nanoseconds took) = 0;
};

struct ChainPolicy {
  config::KeyStrategy key_strategy = config::KeyStrategy::kRoundRobin;
  std::chrono::milliseconds key_cooldown{60000};
  int max_attempts = 1;  // per provider; keys refused on the way add one each
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
  std::chrono::milliseconds deadline{180000};
  int breaker_failures = 5;
  std::chrono::milliseconds breaker_open{30000};
  config::QuotaAction quota_action = config::QuotaAction::kFallback;  // for a provider past its quota
};

// The resilience variables as a policy. Pure.
ChainPolicy policy_of(const config::Config& config);

// One provider of the chain: a client per key of its pool (a keyless provider has one client
// that is not ready()).
struct ChainMember {
  std::string name;   // X-Isartor-Provider
  std::string model;  // the model it is asked for; "" = the request's
  std::vector<std::unique_ptr<ProviderClient>> clients;
  uint64_t tokens_per_day = 0;  // quota of its answers' tokens (UTC windows); 0 = none
  uint64_t tokens_per_month = 0;
};

// A chat request for L3.
struct ChatCall {
  api::WireFormat format = api::WireFormat::kOpenAI;  // the route it came in on
  const api::Json* body = nullptr;                    // canonical form (model resolved)
  const PassThrough* native = nullptr;  // the client's own request, for providers that speak `format`
  const ClientHeaders* headers = nullptr;  // the client's allow-listed fields; null: none
  bool stream = false;
  bool provider_only = false;  // only a provider that speaks `format` can answer
};

// What the chain got, and from whom.
struct UpstreamAnswer {
  std::string provider;                // the member's name
  std::optional<api::Json> completion;  // canonical answer, or
  std::unique_ptr<ChunkStream> stream;  // a stream (ChatCall::stream)
  std::optional<api::Json> native;      // the provider's own answer of a pass-through call
  bool native_stream = false;           // `stream` is a pass-through stream
};

struct MemberStatus {
  std::string name;
  std::string provider;  // the client's name() of its first key
  BreakerState breaker = BreakerState::kClosed;
  std::size_t keys = 0;            // configured
  std::size_t keys_available = 0;  // not cooling down
  bool ready = false;              // has a key
  bool quota_spent = false;        // past its daily or monthly quota
};

class UpstreamChain {
 public:
  // `members` non-empty, each with at least one client. A chain with fewer than two keyed members
  // has no breaker: there is nowhere else to send a call it would refuse.
  UpstreamChain(std::vector<ChainMember> members, ChainPolicy policy);
  ~UpstreamChain();
  // The configured chain: config::upstream_targets(), a client per key.
  static std::unique_ptr<UpstreamChain> build(const config::Config& config, HttpClient& http);

  // Set once at start-up, before any call. Not thread-safe.
  void set_observer(UpstreamObserver* observer) { observer_ = observer; }

  // Answers a chat request from the first provider that can. Awaited on the caller's executor;
  // safe to call concurrently.
  boost::asio::awaitable<Result<UpstreamAnswer>> chat(const ChatCall& call);
  // A native endpoint (embeddings, count_tokens) on the first provider that has it, with the same
  // keys, retries and breakers; kNotFound when none has. Awaited on the caller's executor.
  boost::asio::awaitable<Result<api::Json>> call_native(const NativeRequest& request);

  // Whether the primary takes requests of `format` unchanged. Thread-safe.
  bool speaks(api::WireFormat format) const;
  // Whether some provider has a key. Thread-safe.
  bool ready() const;
  // The primary's name (the first member). Thread-safe.
  std::string_view primary() const;
  std::vector<std::string> names() const;
  // Every member's state, in order (/health, metrics). Thread-safe.
  std::vector<MemberStatus> status() const;

 private:
  struct Member;
  struct Call;
  struct Pick {
    std::size_t member = 0;
    std::size_t key = 0;
  };

  boost::asio::awaitable<Result<UpstreamAnswer>> run(const Call& call);
  boost::asio::awaitable<Result<UpstreamAnswer>> attempt(const Call& call, const Pick& pick);
  bool can_take(const Member& member, const Call& call) const;
  // The longest rest a Retry-After gives a key: KEY_COOLDOWN or an hour, whichever is longer.
  std::chrono::milliseconds max_rest() const;
  // Whether `member`'s quota keeps calls away (action fallback or block).
  bool quota_blocks(Member& member) const;
  // Charges an answer's usage to `member`'s quota (a stream: when it ends).
  static void charge(Member& member, UpstreamAnswer& answer);

  std::vector<std::unique_ptr<Member>> members_;
  ChainPolicy policy_;
  UpstreamObserver* observer_ = nullptr;
};

}  // namespace isartor::providers
