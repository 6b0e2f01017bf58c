#include "pipeline/local_model_layer.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <string>
#include <utility>

#include "api/openai.h"
#include "core/log.h"
#include "pipeline/layer_support.h"

namespace isartor::pipeline {
namespace asio = boost::asio;

namespace {

constexpr const char* kTarget = "isartor::l2";
using Clock = std::chrono::steady_clock;

// Lower-cased, with typographic apostrophes as ASCII ones, so one list covers both spellings.
constexpr std::array<std::string_view, 11> kRefusals{
    "i don't know", "i do not know", "i'm sorry",  "i am sorry",  "sorry, i",     "as an ai",
    "i cannot",     "i can't",       "i'm unable", "i am unable", "i'm not able",
};

bool has_tools(const api::Json& body) {
  auto tools = body.find("tools");
  return tools != body.end() && !tools->is_null() && !(tools->is_array() && tools->empty());
}

// The answer's opening, lower-cased, without leading blanks, quotes or markdown emphasis, with
// U+2019 as '\''; long enough for the refusal list.
std::string opening(std::string_view text) {
  constexpr std::string_view kRightQuote = "\xE2\x80\x99";
  size_t i = 0;
  while (i < text.size() && (std::isspace(static_cast<unsigned char>(text[i])) || text[i] == '"' || text[i] == '*' ||
                             text[i] == '_' || text[i] == '\'')) {
    ++i;
  }
  std::string out;
  for (; i < text.size() && out.size() < 32; ++i) {
    if (text.substr(i, kRightQuote.size()) == kRightQuote) {
      out += '\'';
      i += kRightQuote.size() - 1;
      continue;
    }
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  }
  return out;
}

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A plain function, not part of the coroutine: g++ 12 mishandles braced initialisers in coroutines.
Answer make_answer(const inference::Generator& generator, const inference::Generation& generation) {
  const api::Usage usage{generation.prompt_tokens, generation.completion_tokens};
  // The model that actually answered, not the cloud model the client named.
  const std::string model(generator.name());
  Answer answer;
  answer.layer = LayerId::kL2;
  answer.completion =
      api::make_completion(api::new_completion_id(), model, now_seconds(), generation.text, "stop", usage);
  return answer;
}

// What a generation hands to the coroutine that streams it: a piece of text, or the end.
struct TokenEvent {
  std::string piece;
  std::optional<Result<inference::Generation>> done;
};
using TokenChannel = WorkerChannel<TokenEvent>;

// A local answer streamed as it is generated: the guarded opening first, then a chunk per piece,
// then the finish chunk with usage. Destroying it (the client went away) cancels the generation.
class LocalStream final : public providers::ChunkStream {
 public:
  LocalStream(std::shared_ptr<TokenChannel> channel, inference::Cancellation cancel, std::string opening,
              std::string model)
      : channel_(std::move(channel)),
        cancel_(std::move(cancel)),
        opening_(std::move(opening)),
        model_(std::move(model)),
        id_(api::new_completion_id()),
        created_(now_seconds()) {}
  ~LocalStream() override {
    if (!ended_) LOG_DEBUG(kTarget, "the client left before the local answer ended; generation cancelled");
    cancel_.cancel();
  }

  asio::awaitable<Result<std::optional<api::Json>>> next() override {
    if (!opened_) {
      opened_ = true;
      co_return std::optional<api::Json>(chunk(opening_delta(), ""));
    }
    if (ended_) co_return std::optional<api::Json>{};
    auto event = co_await channel_->next();
    if (!event) co_return fail(ErrorCode::kInternal, "the local model's stream ended without a result");
    if (!event->done) co_return std::optional<api::Json>(chunk(content_delta(event->piece), ""));
    ended_ = true;
    if (!*event->done) {
      co_return fail(ErrorCode::kUpstream, "the local model failed mid-answer: " + event->done->error().message);
    }
    co_return std::optional<api::Json>(finish_chunk(**event->done));
  }

  bool cacheable() const override { return finish_ == inference::FinishReason::kStop; }

 private:
  api::Json opening_delta() const { return {{"role", "assistant"}, {"content", opening_}}; }
  static api::Json content_delta(const std::string& piece) { return {{"content", piece}}; }
  api::Json chunk(const api::Json& delta, const std::string& finish_reason) const {
    return api::make_chunk(id_, model_, created_, delta, finish_reason);
  }
  // A cap or timeout after streaming began cannot send the request to L3 any more: it is reported
  // as "length", the reason a client knows for a cut-off answer.
  api::Json finish_chunk(const inference::Generation& generation) {
    finish_ = generation.finish;
    api::Json out = chunk(api::Json::object(), finish_ == inference::FinishReason::kStop ? "stop" : "length");
    out["usage"] = {{"prompt_tokens", generation.prompt_tokens},
                    {"completion_tokens", generation.completion_tokens},
                    {"total_tokens", generation.prompt_tokens + generation.completion_tokens}};
    return out;
  }

  std::shared_ptr<TokenChannel> channel_;
  inference::Cancellation cancel_;
  std::string opening_;
  std::string model_;
  std::string id_;
  int64_t created_;
  bool opened_ = false;
  bool ended_ = false;
  inference::FinishReason finish_ = inference::FinishReason::kCancelled;
};

// Cancels a generation when the coroutine that started it leaves before handing it on (guard
// rejection, client gone).
class CancelOnExit {
 public:
  explicit CancelOnExit(inference::Cancellation cancel) : cancel_(std::move(cancel)) {}
  ~CancelOnExit() {
    if (armed_) cancel_.cancel();
  }
  CancelOnExit(const CancelOnExit&) = delete;
  CancelOnExit& operator=(const CancelOnExit&) = delete;
  void release() { armed_ = false; }

 private:
  inference::Cancellation cancel_;
  bool armed_ = true;
};

inference::Cancellation start_streaming(inference::Generator& generator, std::vector<inference::ChatMessage> messages,
                                        inference::GenerateOptions options,
                                        const std::shared_ptr<TokenChannel>& channel) {
  auto on_token = [channel](std::string_view piece) { channel->push(TokenEvent{std::string(piece), std::nullopt}); };
  auto done = [channel](Result<inference::Generation> result) {
    channel->push(TokenEvent{std::string(), std::move(result)});
    channel->close();
  };
  return generator.generate_async(std::move(messages), std::move(options), std::move(on_token), std::move(done));
}

Answer streamed_answer(std::shared_ptr<TokenChannel> channel, inference::Cancellation cancel, std::string opening,
                       const inference::Generator& generator) {
  Answer answer;
  answer.layer = LayerId::kL2;
  answer.stream = std::make_unique<LocalStream>(std::move(channel), std::move(cancel), std::move(opening),
                                                std::string(generator.name()));
  return answer;
}

asio::awaitable<Result<inference::Label>> classify(inference::Generator& generator,
                                                   std::vector<inference::ChatMessage> messages,
                                                   inference::ClassifyOptions options) {
  auto start = [&generator, messages = std::move(messages), options](auto done) mutable {
    return generator.classify_async(std::move(messages), options, done);
  };
  co_return co_await await_worker<inference::Label>(std::move(start));
}

asio::awaitable<Result<inference::Generation>> generate(inference::Generator& generator,
                                                        std::vector<inference::ChatMessage> messages,
                                                        inference::GenerateOptions options) {
  auto start = [&generator, messages = std::move(messages), options = std::move(options)](auto done) mutable {
    return generator.generate_async(std::move(messages), std::move(options), {}, done);
  };
  co_return co_await await_worker<inference::Generation>(std::move(start));
}

// The request's deadline in L2; max() without a budget.
Clock::time_point deadline_after(std::chrono::milliseconds budget) {
  return budget.count() > 0 ? Clock::now() + budget : Clock::time_point::max();
}

// What is left of the budget, for the next model call (0: none set; at least 1 ms otherwise).
std::chrono::milliseconds remaining(Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) return std::chrono::milliseconds(0);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max(left, std::chrono::milliseconds(1));
}

}  // namespace

std::optional<std::vector<inference::ChatMessage>> local_model_messages(const ChatRequest& request,
                                                                        std::size_t max_prompt_chars,
                                                                        bool single_turn_only) {
  const auto& body = request.body;
  if (!body.is_object() || has_tools(body)) return std::nullopt;
  auto messages = body.find("messages");
  if (messages == body.end() || !messages->is_array()) return std::nullopt;
  std::vector<inference::ChatMessage> out;
  std::size_t chars = 0;
  int users = 0;
  for (const auto& m : *messages) {
    if (!m.is_object() || !m.contains("content")) return std::nullopt;
    auto role_member = m.find("role");
    const std::string role = role_member != m.end() && role_member->is_string() ? role_member->get<std::string>() : "";
    auto text = message_text(m["content"]);
    if (!text) return std::nullopt;
    chars += text->size();
    // The role this turn must have: the user's first and after each answer, then the assistant's.
    const std::string expected = !out.empty() && out.back().role == "user" ? "assistant" : "user";
    if (role == "system" || role == "developer") {
      if (users > 0) return std::nullopt;  // a system message after the conversation started
      out.push_back({"system", std::move(*text)});
    } else if (role == expected && (users == 0 || !single_turn_only)) {
      if (role == "user" && text->empty()) return std::nullopt;
      if (role == "user") ++users;
      out.push_back({role, std::move(*text)});
    } else {
      return std::nullopt;  // tool turns, two turns of one role in a row, or multi-turn when not allowed
    }
  }
  if (users == 0 || out.back().role != "user" || chars > max_prompt_chars) return std::nullopt;
  return out;
}

std::optional<std::string_view> opening_reject_reason(std::string_view text) {
  const std::string start = opening(text);
  if (start.empty()) return "empty answer";
  for (std::string_view refusal : kRefusals) {
    if (start.starts_with(refusal)) return "refusal-style answer";
  }
  return std::nullopt;
}

std::optional<std::string_view> reject_reason(const inference::Generation& generation) {
  if (generation.finish == inference::FinishReason::kLength) return "truncated at the token limit";
  if (generation.finish != inference::FinishReason::kStop) return "generation did not finish";
  return opening_reject_reason(generation.text);
}

LocalModelLayer::LocalModelLayer(LocalModelOptions options, std::string pending)
    : options_(std::move(options)), pending_(std::move(pending)) {}

LocalModelLayer::LocalModelLayer(std::shared_ptr<inference::Generator> generator, LocalModelOptions options)
    : options_(std::move(options)), generator_(std::move(generator)) {}

void LocalModelLayer::set_generator(std::shared_ptr<inference::Generator> generator) {
  std::lock_guard lock(mutex_);
  generator_ = std::move(generator);
}

void LocalModelLayer::set_pending(std::string detail) {
  std::lock_guard lock(mutex_);
  pending_ = std::move(detail);
}

std::shared_ptr<inference::Generator> LocalModelLayer::generator() const {
  std::lock_guard lock(mutex_);
  return generator_;
}

LayerStatus LocalModelLayer::status() const {
  std::lock_guard lock(mutex_);
  if (!generator_) return {true, false, pending_};
  return {true, true, std::string(generator_->name())};
}

namespace {

// Model failures are the gateway's problem, not the client's: L3 can still answer. Only an
// overload with nothing behind L2 is answered, as 503 + Retry-After.
Result<std::optional<Answer>> pass_after_failure(std::string_view step, const Error& error,
                                                 const LocalModelOptions& options) {
  if (error.code != ErrorCode::kOverloaded) {
    LOG_WARN(kTarget, "local model {} failed, passing the request to L3: {}", step, error.message);
    return std::nullopt;
  }
  if (options.fallback_ready && !options.fallback_ready()) {
    LOG_WARN(kTarget, "local model overloaded during {} and no cloud provider to pass to: {}", step, error.message);
    return fail(ErrorCode::kOverloaded, "the local model is busy and no cloud provider is configured; retry shortly");
  }
  LOG_WARN(kTarget, "local model overloaded during {}, passing the request to L3: {}", step, error.message);
  return std::nullopt;
}

// A finished generation: served when the quality guard accepts it, else passed on.
Result<std::optional<Answer>> judge_whole(const inference::Generator& generator,
                                          const Result<inference::Generation>& generation,
                                          const LocalModelOptions& options) {
  if (!generation) return pass_after_failure("generation", generation.error(), options);
  if (auto why = reject_reason(*generation)) {
    LOG_INFO(kTarget, "quality guard rejected the local answer ({}), passing the request to L3", *why);
    return std::nullopt;
  }
  return make_answer(generator, *generation);
}

// The start of a generation: its first kOpeningBytes of text, or all of it when it ended sooner.
struct Opening {
  std::string text;
  std::optional<Result<inference::Generation>> ended;
};

asio::awaitable<Opening> read_opening(TokenChannel& channel) {
  Opening opening;
  while (opening.text.size() < kOpeningBytes && !opening.ended) {
    std::optional<TokenEvent> event = co_await channel.next();
    if (!event) {
      opening.ended = fail(ErrorCode::kInternal, "the local model's stream ended without a result");
    } else if (event->done) {
      opening.ended = std::move(event->done);
    } else {
      opening.text += event->piece;
    }
  }
  co_return opening;
}

// Streams a SIMPLE request's answer: waits for the opening, judges it, then hands the rest of the
// generation to the client as it comes. A whole short answer is returned as a completion.
asio::awaitable<Result<std::optional<Answer>>> stream_local(inference::Generator& generator,
                                                            std::vector<inference::ChatMessage> messages,
                                                            inference::GenerateOptions generate_options,
                                                            const LocalModelOptions& options) {
  auto channel = std::make_shared<TokenChannel>();
  inference::Cancellation cancel =
      start_streaming(generator, std::move(messages), std::move(generate_options), channel);
  CancelOnExit cancel_on_exit(cancel);
  Opening opening = co_await read_opening(*channel);
  // The whole answer came before the opening was long enough: judge it as a whole.
  if (opening.ended) co_return judge_whole(generator, *opening.ended, options);
  if (auto why = opening_reject_reason(opening.text)) {
    LOG_INFO(kTarget, "quality guard rejected the local answer's opening ({}), passing the request to L3", *why);
    co_return std::optional<Answer>{};
  }
  cancel_on_exit.release();
  co_return std::optional<Answer>(
      streamed_answer(std::move(channel), std::move(cancel), std::move(opening.text), generator));
}

}  // namespace

asio::awaitable<Result<std::optional<Answer>>> LocalModelLayer::answer(ChatRequest& request) {
  auto generator = this->generator();
  if (!generator) co_return std::optional<Answer>{};
  auto messages = local_model_messages(request, options_.max_prompt_chars, options_.single_turn_only);
  if (!messages) co_return std::optional<Answer>{};
  const Clock::time_point deadline = deadline_after(options_.timeout);
  inference::ClassifyOptions classify_options;
  classify_options.timeout = remaining(deadline);
  auto label = co_await classify(*generator, *messages, classify_options);
  if (!label) co_return pass_after_failure("classification", label.error(), options_);
  if (*label != inference::Label::kSimple) {
    LOG_DEBUG(kTarget, "classified COMPLEX, passing the request to L3");
    co_return std::optional<Answer>{};
  }
  inference::GenerateOptions generate_options = options_.generate;
  generate_options.timeout = remaining(deadline);
  if (request.stream) {
    co_return co_await stream_local(*generator, std::move(*messages), std::move(generate_options), options_);
  }
  auto generation = co_await generate(*generator, std::move(*messages), std::move(generate_options));
  co_return judge_whole(*generator, generation, options_);
}

}  // namespace isartor::pipeline
