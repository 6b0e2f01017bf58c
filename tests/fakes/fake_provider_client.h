#pragma once
// An in-process ProviderClient for pipeline tests: answers "Echo: <last message>", counts calls,
// and can fail or cut a stream short.
#include <atomic>
#include <deque>
#include <optional>
#include <vector>

#include "api/openai.h"
#include "providers/provider_client.h"
#include "providers/upstream_chain.h"

namespace isartor::fakes {

class FakeProviderClient final : public providers::ProviderClient {
 public:
  std::atomic<int> calls{0};
  std::optional<Error> fail_with;  // every call fails with this
  std::deque<Error> fail_next;     // the next calls fail with these, in order (before fail_with)
  bool cut_stream = false;         // streams end without a finish_reason
  std::string label = "fake";      // name()
  bool keyed = true;               // ready()
  std::vector<api::Json> bodies;   // what complete() and stream() were given
  std::vector<providers::ClientHeaders> headers;  // and the client header fields with them

  std::string_view name() const override { return label; }
  bool ready() const override { return keyed; }

  boost::asio::awaitable<Result<api::Json>> complete(const api::Json& body,
                                                     const providers::ClientHeaders& fields) override {
    ++calls;
    bodies.push_back(body);
    headers.push_back(fields);
    if (auto failure = next_failure()) co_return std::unexpected(std::move(*failure));
    co_return api::make_completion("chatcmpl-fake", body.value("model", ""), 0, answer_for(body), "stop", {3, 2});
  }

  boost::asio::awaitable<Result<std::unique_ptr<providers::ChunkStream>>> stream(
      const api::Json& body, const providers::ClientHeaders& fields) override {
    ++calls;
    bodies.push_back(body);
    headers.push_back(fields);
    if (auto failure = next_failure()) co_return std::unexpected(std::move(*failure));
    auto chunks = api::completion_to_chunks(
        api::make_completion("chatcmpl-fake", body.value("model", ""), 0, answer_for(body), "stop", {3, 2}), 4);
    if (cut_stream) chunks.resize(2);
    co_return std::make_unique<Replay>(std::move(chunks), cut_stream);
  }

  // Native calls: one 1-d embedding, or 42 tokens; `native_answer` replaces that answer.
  std::optional<api::Json> native_answer;
  std::vector<providers::NativeRequest> native_requests;

  boost::asio::awaitable<Result<api::Json>> call_native(const providers::NativeRequest& request) override {
    ++calls;
    native_requests.push_back(request);
    if (auto failure = next_failure()) co_return std::unexpected(std::move(*failure));
    if (native_answer) co_return *native_answer;
    co_return native_default(request);
  }

  static api::Json native_default(const providers::NativeRequest& request) {
    if (request.endpoint == providers::NativeEndpoint::kCountTokens) return {{"input_tokens", 42}};
    return {{"object", "list"},
            {"data", {{{"object", "embedding"}, {"index", 0}, {"embedding", {0.5}}}}},
            {"model", request.body.value("model", "")}};
  }

  static std::string answer_for(const api::Json& body) {
    const auto& last = body["messages"].back();
    return "Echo: " + (last["content"].is_string() ? last["content"].get<std::string>() : std::string());
  }

 private:
  std::optional<Error> next_failure() {
    if (!fail_next.empty()) {
      Error e = std::move(fail_next.front());
      fail_next.pop_front();
      return e;
    }
    return fail_with;
  }

  class Replay final : public providers::ChunkStream {
   public:
    Replay(std::vector<api::Json> chunks, bool cut) : chunks_(chunks.begin(), chunks.end()), cut_(cut) {}
    boost::asio::awaitable<Result<std::optional<api::Json>>> next() override {
      if (chunks_.empty()) {
        if (cut_) co_return std::unexpected(Error(ErrorCode::kUpstream, "stream cut"));
        co_return std::optional<api::Json>{};
      }
      api::Json c = std::move(chunks_.front());
      chunks_.pop_front();
      co_return std::optional<api::Json>(std::move(c));
    }

   private:
    std::deque<api::Json> chunks_;
    bool cut_;
  };
};

// A chain of one provider, `client` (which it owns), that calls it once per request: no retry, no
// breaker, so tests of layers and routes see each call they cause.
inline std::shared_ptr<providers::UpstreamChain> chain_of(std::unique_ptr<providers::ProviderClient> client) {
  std::vector<providers::ChainMember> members(1);
  members[0].name = std::string(client->name());
  members[0].clients.push_back(std::move(client));
  providers::ChainPolicy policy;
  policy.max_attempts = 1;
  policy.breaker_failures = 0;
  return std::make_shared<providers::UpstreamChain>(std::move(members), policy);
}

}  // namespace isartor::fakes
