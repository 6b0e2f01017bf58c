// The L3 chain in process: fallbacks, key pools, retries and the circuit breaker over scripted
// fake providers (no sockets), plus the breaker and the pool on their own.
#include "providers/upstream_chain.h"

#include <gtest/gtest.h>

#include "fakes/fake_provider_client.h"
#include "support/run_coroutine.h"

namespace isartor::providers {
namespace {

using namespace std::chrono_literals;
using testing::run_coroutine;

Error upstream(ErrorCode code, int status, std::string retry_after = {}) {
  Error e(code, "HTTP " + std::to_string(status));
  e.upstream_status = status;
  if (!retry_after.empty()) e.headers.emplace_back("retry-after", retry_after);
  return e;
}

TEST(CircuitBreaker, OpensAfterConsecutiveFailuresThenLetsOneProbeThrough) {
  CircuitBreaker breaker(2, 1000ms);
  const auto t0 = Clock::now();
  breaker.on_failure(t0);
  breaker.on_success();  // a success in between resets the count
  breaker.on_failure(t0);
  EXPECT_TRUE(breaker.allow(t0));
  breaker.on_failure(t0);
  EXPECT_EQ(breaker.state(t0), BreakerState::kOpen);
  EXPECT_FALSE(breaker.allow(t0 + 999ms));
  EXPECT_EQ(breaker.state(t0 + 1s), BreakerState::kHalfOpen);
  EXPECT_TRUE(breaker.allow(t0 + 1s));        // the probe
  EXPECT_FALSE(breaker.allow(t0 + 1s + 1ms));  // only one at a time
  breaker.on_failure(t0 + 1500ms);             // a failed probe opens it again at once
  EXPECT_EQ(breaker.state(t0 + 2s), BreakerState::kOpen);
  EXPECT_TRUE(breaker.allow(t0 + 2500ms));
  breaker.on_success();
  EXPECT_EQ(breaker.state(t0 + 2500ms), BreakerState::kClosed);
}

TEST(CircuitBreaker, AProbeThatNeverReportsIsReplacedAfterAnotherPeriod) {
  CircuitBreaker breaker(1, 1000ms);
  const auto t0 = Clock::now();
  breaker.on_failure(t0);
  EXPECT_TRUE(breaker.allow(t0 + 1s));
  EXPECT_FALSE(breaker.allow(t0 + 1900ms));
  EXPECT_TRUE(breaker.allow(t0 + 2s));  // the first probe was cancelled
}

TEST(CircuitBreaker, ALateAnswerFromBeforeItOpenedDoesNotCloseIt) {
  CircuitBreaker breaker(1, 1000ms);
  const auto t0 = Clock::now();
  breaker.on_failure(t0);
  breaker.on_success();  // a call that started before it opened
  EXPECT_EQ(breaker.state(t0), BreakerState::kOpen);
  EXPECT_TRUE(breaker.allow(t0 + 1s));
  breaker.release();  // the probe was not made
  EXPECT_TRUE(breaker.allow(t0 + 1s));
  breaker.on_success();
  EXPECT_EQ(breaker.state(t0 + 1s), BreakerState::kClosed);
}

TEST(CircuitBreaker, ZeroFailuresNeverOpens) {
  CircuitBreaker breaker(0, 1000ms);
  for (int i = 0; i < 100; ++i) breaker.on_failure(Clock::now());
  EXPECT_EQ(breaker.state(Clock::now()), BreakerState::kClosed);
}

TEST(KeyPool, RoundRobinSkipsRestingKeysAndPriorityPrefersTheFirst) {
  const auto t0 = Clock::now();
  KeyPool rr(3, config::KeyStrategy::kRoundRobin);
  EXPECT_EQ(rr.pick(t0), 0u);
  EXPECT_EQ(rr.pick(t0), 1u);
  rr.cool_down(2, t0 + 10s);
  EXPECT_EQ(rr.pick(t0), 0u);
  EXPECT_EQ(rr.available(t0), 2u);
  EXPECT_EQ(rr.pick(t0 + 10s), 1u);
  EXPECT_EQ(rr.pick(t0 + 10s), 2u);

  KeyPool priority(2, config::KeyStrategy::kPriority);
  EXPECT_EQ(priority.pick(t0), 0u);
  EXPECT_EQ(priority.pick(t0), 0u);
  priority.cool_down(0, t0 + 5s);
  priority.cool_down(0, t0 + 1s);  // a shorter rest does not cut a longer one
  EXPECT_EQ(priority.pick(t0 + 2s), 1u);
  priority.cool_down(1, t0 + 3s);
  EXPECT_EQ(priority.pick(t0 + 2s), std::nullopt);
  EXPECT_EQ(priority.soonest(), 1u);
}

// A chain over fakes the test keeps pointers to: member i has keys[i] clients.
class ChainTest : public ::testing::Test {
 protected:
  void build(std::vector<int> keys, ChainPolicy policy = fast()) {
    std::vector<ChainMember> members;
    fakes_.clear();
    for (std::size_t i = 0; i < keys.size(); ++i) {
      ChainMember& m = members.emplace_back();
      m.name = "p" + std::to_string(i);
      fakes_.emplace_back();
      for (int k = 0; k < keys[i]; ++k) {
        auto client = std::make_unique<fakes::FakeProviderClient>();
        client->label = m.name;
        fakes_.back().push_back(client.get());
        m.clients.push_back(std::move(client));
      }
    }
    chain_ = std::make_unique<UpstreamChain>(std::move(members), policy);
  }

  static ChainPolicy fast() {
    ChainPolicy p;
    p.initial_backoff = 1ms;
    p.max_backoff = 5ms;
    p.deadline = 5s;
    p.breaker_failures = 2;
    p.breaker_open = 60s;
    return p;
  }

  Result<UpstreamAnswer> ask(bool stream = false) {
    ChatCall call;
    call.body = &body_;
    call.stream = stream;
    return run_coroutine(chain_->chat(call));
  }

  fakes::FakeProviderClient& fake(std::size_t member, std::size_t key = 0) { return *fakes_[member][key]; }

  api::Json body_{{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  std::vector<std::vector<fakes::FakeProviderClient*>> fakes_;
  std::unique_ptr<UpstreamChain> chain_;
};

TEST_F(ChainTest, ProviderFailuresAndRateLimitsGoToTheNextProvider) {
  build({1, 1});
  for (Error e : {upstream(ErrorCode::kUpstream, 503), upstream(ErrorCode::kRateLimited, 429),
                  upstream(ErrorCode::kUpstreamTimeout, 0), upstream(ErrorCode::kUpstreamRejected, 401)}) {
    fake(0).fail_next.push_back(e);
    auto answer = ask();
    ASSERT_TRUE(answer) << e.message;
    EXPECT_EQ(answer->provider, "p1");
    ASSERT_TRUE(answer->completion);
  }
  EXPECT_EQ(fake(1).calls, 4);
}

TEST_F(ChainTest, AClientErrorIsTheAnswer) {
  build({1, 1});
  fake(0).fail_with = upstream(ErrorCode::kUpstreamRejected, 400);
  auto answer = ask();
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().upstream_status, 400);
  EXPECT_EQ(fake(0).calls, 1);
  EXPECT_EQ(fake(1).calls, 0);
}

TEST_F(ChainTest, RetriesTheSameProviderUpToItsAttempts) {
  ChainPolicy p = fast();
  p.max_attempts = 3;
  build({1}, p);
  fake(0).fail_next = {upstream(ErrorCode::kUpstream, 502), upstream(ErrorCode::kUpstream, 500)};
  ASSERT_TRUE(ask());
  EXPECT_EQ(fake(0).calls, 3);
  fake(0).fail_with = upstream(ErrorCode::kUpstream, 503);
  auto failed = ask();
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().upstream_status, 503);
  EXPECT_EQ(fake(0).calls, 6);
}

TEST_F(ChainTest, ARefusedKeyRestsAndTheNextKeyAnswersWithoutARetry) {
  build({2});
  fake(0, 0).fail_next.push_back(upstream(ErrorCode::kRateLimited, 429));
  auto answer = ask();
  ASSERT_TRUE(answer);
  EXPECT_EQ(fake(0, 0).calls, 1);
  EXPECT_EQ(fake(0, 1).calls, 1);
  ASSERT_TRUE(ask());
  ASSERT_TRUE(ask());
  EXPECT_EQ(fake(0, 0).calls, 1);  // resting for the cooldown
  EXPECT_EQ(fake(0, 1).calls, 3);
  EXPECT_EQ(chain_->status()[0].keys_available, 1u);
}

TEST_F(ChainTest, WhenEveryKeyRestsTheOneThatFreesFirstIsTriedRatherThanRefused) {
  build({1});
  fake(0).fail_next.push_back(upstream(ErrorCode::kRateLimited, 429));
  ASSERT_FALSE(ask());
  ASSERT_TRUE(ask());
  EXPECT_EQ(fake(0).calls, 2);
}

TEST_F(ChainTest, RetryAfterIsWaitedForWithinTheDeadline) {
  ChainPolicy p = fast();
  p.max_attempts = 2;
  build({1}, p);
  fake(0).fail_next.push_back(upstream(ErrorCode::kRateLimited, 429, "1"));
  const auto t0 = Clock::now();
  ASSERT_TRUE(ask());
  EXPECT_GE(Clock::now() - t0, 950ms);
  EXPECT_EQ(fake(0).calls, 2);

  p.deadline = 500ms;
  build({1}, p);
  fake(0).fail_next.push_back(upstream(ErrorCode::kRateLimited, 429, "2"));
  auto late = ask();
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, ErrorCode::kRateLimited);
  EXPECT_EQ(fake(0).calls, 1);
}

TEST_F(ChainTest, TheBreakerSkipsAFailingProviderAndFailsFastWhenAllAreOpen) {
  build({1, 1});
  fake(0).fail_with = upstream(ErrorCode::kUpstream, 503);
  ASSERT_TRUE(ask());
  ASSERT_TRUE(ask());
  EXPECT_EQ(chain_->status()[0].breaker, BreakerState::kOpen);
  ASSERT_TRUE(ask());
  EXPECT_EQ(fake(0).calls, 2);  // skipped while open
  fake(1).fail_with = upstream(ErrorCode::kUpstream, 503);
  ASSERT_FALSE(ask());
  ASSERT_FALSE(ask());
  auto refused = ask();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(refused.error().message.find("circuit open: p0, p1"), std::string::npos) << refused.error().message;
  ASSERT_FALSE(refused.error().headers.empty());
  EXPECT_EQ(refused.error().headers[0].first, "retry-after");
  EXPECT_EQ(fake(1).calls, 5);  // three answers, then two failures that opened its breaker too
}

TEST_F(ChainTest, AProviderFailureUsesARetryEvenWithSpareKeys) {
  build({2});  // one attempt per provider by default
  fake(0, 0).fail_next.push_back(upstream(ErrorCode::kUpstream, 503));
  fake(0, 1).fail_next.push_back(upstream(ErrorCode::kUpstream, 503));
  ASSERT_FALSE(ask());
  EXPECT_EQ(fake(0, 0).calls + fake(0, 1).calls, 1);
}

TEST_F(ChainTest, NoNewAttemptStartsPastTheDeadline) {
  ChainPolicy p = fast();
  p.max_attempts = 5;
  p.deadline = 300ms;
  build({1}, p);
  // Retry-After, not the jittered backoff (which may draw four short waits), sets 200 ms between
  // calls: at t = 0 and 200 ms, and the third would start past 300 ms. A stalled machine can only
  // make it fewer.
  fake(0).fail_with = upstream(ErrorCode::kUpstream, 503, "0.2");
  ASSERT_FALSE(ask());
  EXPECT_GE(fake(0).calls, 1);
  EXPECT_LE(fake(0).calls, 2);
}

TEST_F(ChainTest, AFallbackThatCannotExpressTheRequestDoesNotHideThePrimarysFailure) {
  build({1, 1, 1});
  fake(0).fail_with = upstream(ErrorCode::kUpstream, 503);
  fake(1).fail_with = Error(ErrorCode::kUnprocessable, "p1 cannot express 'n'", "n");
  auto answer = ask();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->provider, "p2");
  fake(2).fail_with = upstream(ErrorCode::kUpstream, 502);
  auto failed = ask();
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().upstream_status, 502);  // a provider's failure, not p1's refusal
  EXPECT_EQ(chain_->status()[1].breaker, BreakerState::kClosed);
}

TEST_F(ChainTest, AChainOfOneHasNoBreaker) {
  build({1});
  fake(0).fail_with = upstream(ErrorCode::kUpstream, 503);
  for (int i = 0; i < 5; ++i) ASSERT_FALSE(ask());
  EXPECT_EQ(fake(0).calls, 5);
  EXPECT_EQ(chain_->status()[0].breaker, BreakerState::kClosed);
}

TEST_F(ChainTest, AProviderWithoutAKeyIsPassedOverAndAloneSaysWhichVariableToSet) {
  build({1, 1});
  fake(0).keyed = false;
  auto answer = ask();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->provider, "p1");
  EXPECT_EQ(fake(0).calls, 0);
  fake(1).keyed = false;
  EXPECT_FALSE(chain_->ready());
  fake(0).fail_with = Error(ErrorCode::kUnavailable, "no API key configured");
  auto none = ask();
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message, "no API key configured");
}

TEST_F(ChainTest, AFallbackIsAskedForItsOwnModel) {
  std::vector<ChainMember> members(2);
  auto primary = std::make_unique<fakes::FakeProviderClient>();
  auto backup = std::make_unique<fakes::FakeProviderClient>();
  fakes::FakeProviderClient* p = primary.get();
  fakes::FakeProviderClient* b = backup.get();
  p->fail_with = upstream(ErrorCode::kUpstream, 503);
  members[0].name = "primary";
  members[0].clients.push_back(std::move(primary));
  members[1].name = "backup";
  members[1].model = "other-model";
  members[1].clients.push_back(std::move(backup));
  chain_ = std::make_unique<UpstreamChain>(std::move(members), fast());
  auto answer = ask(true);
  ASSERT_TRUE(answer);
  EXPECT_TRUE(answer->stream);
  EXPECT_EQ(p->bodies.at(0)["model"], "m");
  EXPECT_EQ(b->bodies.at(0)["model"], "other-model");
  EXPECT_EQ(body_["model"], "m");  // the request itself is not changed
}

TEST_F(ChainTest, ANativeEndpointGoesToTheFirstProviderThatHasIt) {
  build({1, 1});
  fake(0).fail_with = Error(ErrorCode::kNotFound, "p0 has no embeddings endpoint");
  NativeRequest request;
  request.body = {{"model", "e"}, {"input", "x"}};
  auto answer = run_coroutine(chain_->call_native(request));
  ASSERT_TRUE(answer);
  EXPECT_EQ(fake(1).native_requests.size(), 1u);
  EXPECT_EQ(chain_->status()[0].breaker, BreakerState::kClosed);  // not a failure of p0
}

}  // namespace
}  // namespace isartor::providers
