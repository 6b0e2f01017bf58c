#include "inference/sidecar_generator.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <thread>

#include "api/openai.h"
#include "core/log.h"
#include "inference/callbacks.h"
#include "providers/http_client.h"
#include "providers/openai_provider.h"

namespace isartor::inference {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr const char* kTarget = "isartor::l2::sidecar";
using Clock = std::chrono::steady_clock;
// How often a running call looks at its Cancellation (the flag has no wake-up of its own).
constexpr auto kCancelPoll = std::chrono::milliseconds(20);

// "<base>/v1" without trailing slashes, whether or not the configured URL named /v1.
std::string api_base(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (!url.ends_with("/v1")) url += "/v1";
  return url;
}

api::Json messages_json(const std::vector<ChatMessage>& messages) {
  api::Json out = api::Json::array();
  for (const auto& m : messages) out.push_back({{"role", m.role}, {"content", m.content}});
  return out;
}

FinishReason finish_of(const std::string& reason) {
  return reason == "length" ? FinishReason::kLength : FinishReason::kStop;
}

}  // namespace

struct SidecarGenerator::Impl {
  SidecarOptions options;
  providers::HttpClient& http;
  std::string base;
  std::string model;
  std::unique_ptr<providers::OpenAICompatibleProvider> provider;
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(ioc);
  std::thread thread;
  std::atomic<std::size_t> in_flight{0};
  Cancellation stopping;  // cancels every call at shutdown

  Impl(SidecarOptions o, providers::HttpClient& client)
      : options(std::move(o)), http(client), base(api_base(options.url)), model(options.model) {
    providers::UpstreamSettings s;
    s.provider = "sidecar";
    s.url = base + "/chat/completions";
    s.api_key = options.api_key;
    if (!s.api_key.empty()) s.headers = {"Authorization: Bearer " + s.api_key};
    s.timeout = options.call_timeout;
    s.key_required = false;
    provider = std::make_unique<providers::OpenAICompatibleProvider>(std::move(s), base + "/embeddings", http);
  }

  Clock::time_point deadline_after(std::chrono::milliseconds timeout) const {
    return Clock::now() + (timeout.count() > 0 ? timeout : std::chrono::milliseconds(options.call_timeout));
  }

  // Ends when the deadline passes (kTimeout) or the call or the generator is cancelled. References,
  // not copies, as arguments: g++ 12 may destroy a temporary of a co_await expression twice.
  asio::awaitable<FinishReason> watch(Clock::time_point deadline, const Cancellation& cancel) const {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
      if (cancel.requested() || stopping.requested()) co_return FinishReason::kCancelled;
      const auto now = Clock::now();
      if (now >= deadline) co_return FinishReason::kTimeout;
      timer.expires_after(std::min<Clock::duration>(kCancelPoll, deadline - now));
      auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return FinishReason::kCancelled;
    }
  }

  // Admits one more call, or false at max_in_flight.
  bool admit() {
    if (in_flight.fetch_add(1) < options.max_in_flight) return true;
    in_flight.fetch_sub(1);
    return false;
  }

  api::Json classify_body(const std::vector<ChatMessage>& messages) const {
    api::Json body{{"messages", messages_json(classification_messages(messages))},
                   {"max_tokens", options.max_classify_tokens},
                   {"temperature", 0},
                   {"grammar", kLabelGrammar},
                   {"guided_choice", api::Json::array({label_name(Label::kSimple), label_name(Label::kComplex)})}};
    if (!model.empty()) body["model"] = model;
    return body;
  }

  api::Json generate_body(const std::vector<ChatMessage>& messages, const GenerateOptions& o) const {
    api::Json body{{"messages", messages_json(messages)},
                   {"max_tokens", o.max_tokens},
                   {"temperature", o.temperature},
                   {"repeat_penalty", o.repetition_penalty},
                   {"repetition_penalty", o.repetition_penalty}};
    if (!model.empty()) body["model"] = model;
    if (!o.stop.empty()) body["stop"] = o.stop;
    if (o.temperature > 0) body["seed"] = o.seed;
    return body;
  }

  asio::awaitable<void> classify(std::vector<ChatMessage> messages, ClassifyOptions o, Cancellation cancel,
                                 ClassifyCallback done) {
    Result<Label> label = Label::kComplex;
    try {
      const api::Json body = classify_body(messages);
      auto outcome = co_await (provider->complete(body) || watch(deadline_after(o.timeout), cancel));
      if (outcome.index() == 1) {
        label = std::get<1>(outcome) == FinishReason::kTimeout
                    ? fail(ErrorCode::kUpstreamTimeout, "sidecar classification timed out")
                    : fail(ErrorCode::kUnavailable, "sidecar classification cancelled");
      } else if (auto& completion = std::get<0>(outcome); !completion) {
        label = std::unexpected(completion.error());
      } else {
        label = parse_label(api::completion_text(*completion));
      }
    } catch (const std::exception& e) {
      // The last line of defence: the caller must hear back whatever happened.
      label = fail(ErrorCode::kInternal, std::string("sidecar classification failed: ") + e.what());
    }
    in_flight.fetch_sub(1);
    run_callback(done, std::move(label));
  }

  // Streams the answer into `out`, piece by piece to `on_token`, until the server ends it.
  asio::awaitable<Result<void>> stream_into(const api::Json& body, Generation& out, const TokenCallback& on_token) {
    CO_ASSIGN_OR_RETURN(auto stream, co_await provider->stream(body));
    for (;;) {
      CO_ASSIGN_OR_RETURN(auto chunk, co_await stream->next());
      if (!chunk) co_return Result<void>();
      const api::Json& c = *chunk;
      if (std::string piece = api::chunk_text(c); !piece.empty()) {
        out.text += piece;
        run_callback(on_token, std::string_view(piece));
      }
      if (const api::Usage usage = api::usage_of(c); usage.prompt_tokens + usage.completion_tokens > 0) {
        out.prompt_tokens = static_cast<int>(usage.prompt_tokens);
        out.completion_tokens = static_cast<int>(usage.completion_tokens);
      }
      if (std::string reason = api::finish_reason_of(c); !reason.empty()) out.finish = finish_of(reason);
    }
  }

  asio::awaitable<void> generate(std::vector<ChatMessage> messages, GenerateOptions o, Cancellation cancel,
                                 TokenCallback on_token, GenerateCallback done) {
    Generation generation;
    Result<Generation> result = generation;
    try {
      const api::Json body = generate_body(messages, o);
      auto outcome = co_await (stream_into(body, generation, on_token) || watch(deadline_after(o.timeout), cancel));
      result = generation;
      if (outcome.index() == 1) {
        result->finish = std::get<1>(outcome);
      } else if (auto& streamed = std::get<0>(outcome); !streamed) {
        result = std::unexpected(streamed.error());
      }
    } catch (const std::exception& e) {
      result = fail(ErrorCode::kInternal, std::string("sidecar generation failed: ") + e.what());
    }
    in_flight.fetch_sub(1);
    run_callback(done, std::move(result));
  }

  asio::awaitable<Result<std::string>> list_models() {
    providers::HttpRequest request;
    request.method = "GET";
    request.url = base + "/models";
    if (!options.api_key.empty()) request.headers = {"Authorization: Bearer " + options.api_key};
    request.total_timeout = std::chrono::seconds(3);  // a blackholed host must not hold up a shutdown long
    auto call = http.start(std::move(request), co_await asio::this_coro::executor);
    auto status = co_await call->status();
    if (!status) co_return fail(ErrorCode::kUnavailable, "sidecar " + base + " unreachable: " + status.error().message);
    auto body = co_await call->read_all();
    if (*status < 200 || *status >= 300 || !body) {
      co_return fail(ErrorCode::kUnavailable, fmt::format("sidecar {}/models answered HTTP {}", base, *status));
    }
    auto json = api::parse_json(*body);
    const auto data = json.is_object() ? json.find("data") : json.end();
    if (!json.is_object() || data == json.end() || !data->is_array() || data->empty() || !(*data)[0].is_object() ||
        !(*data)[0].value("id", api::Json()).is_string()) {
      co_return fail(ErrorCode::kUnavailable, "sidecar " + base + "/models lists no model");
    }
    co_return (*data)[0]["id"].get<std::string>();
  }
};

SidecarGenerator::SidecarGenerator(SidecarOptions options, providers::HttpClient& http)
    : impl_(std::make_unique<Impl>(std::move(options), http)) {
  impl_->thread = std::thread([impl = impl_.get()] { impl->ioc.run(); });
}

SidecarGenerator::~SidecarGenerator() {
  impl_->stopping.cancel();
  impl_->work.reset();
  impl_->thread.join();
}

std::string_view SidecarGenerator::name() const {
  return impl_->model.empty() ? std::string_view(impl_->base) : std::string_view(impl_->model);
}

Result<std::string> SidecarGenerator::probe() {
  ASSIGN_OR_RETURN(std::string listed, asio::co_spawn(impl_->ioc, impl_->list_models(), asio::use_future).get());
  if (impl_->model.empty()) impl_->model = listed;
  LOG_INFO(kTarget, "sidecar {} serves {}; using {}", impl_->base, listed, impl_->model);
  return impl_->model;
}

Cancellation SidecarGenerator::classify_async(std::vector<ChatMessage> messages, ClassifyOptions options,
                                              ClassifyCallback done) {
  Cancellation cancel;
  if (!impl_->admit()) {
    asio::post(impl_->ioc, [done = std::move(done)] {
      run_callback(done, Result<Label>(fail(ErrorCode::kOverloaded, "sidecar calls at their limit")));
    });
    return cancel;
  }
  asio::co_spawn(impl_->ioc, impl_->classify(std::move(messages), options, cancel, std::move(done)), asio::detached);
  return cancel;
}

Cancellation SidecarGenerator::generate_async(std::vector<ChatMessage> messages, GenerateOptions options,
                                              TokenCallback on_token, GenerateCallback done) {
  Cancellation cancel;
  if (!impl_->admit()) {
    asio::post(impl_->ioc, [done = std::move(done)] {
      run_callback(done, Result<Generation>(fail(ErrorCode::kOverloaded, "sidecar calls at their limit")));
    });
    return cancel;
  }
  asio::co_spawn(impl_->ioc,
                 impl_->generate(std::move(messages), std::move(options), cancel, std::move(on_token), std::move(done)),
                 asio::detached);
  return cancel;
}

}  // namespace isartor::inference
