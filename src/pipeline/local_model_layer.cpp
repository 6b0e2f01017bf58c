#include "pipeline/local_model_layer.h"

#include <array>
#include <cctype>
#include <chrono>
#include <string>

#include "api/openai.h"
#include "core/log.h"
#include "pipeline/layer_support.h"

namespace isartor::pipeline {
namespace asio = boost::asio;

namespace {

constexpr const char* kTarget = "isartor::l2";

// Lower-cased, with typographic apostrophes as ASCII ones, so one list covers both spellings.
constexpr std::array<std::string_view, 11> kRefusals{
    "i don't know", "i do not know", "i'm sorry",  "i am sorry", "sorry, i", "as an ai",
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

// A plain function, not part of the coroutine: g++ 12 mishandles braced initialisers in coroutines.
Answer make_answer(const inference::Generator& generator,
                   const inference::Generation& generation) {
  const auto created = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  const api::Usage usage{generation.prompt_tokens, generation.completion_tokens};
  // The model that actually answered, not the cloud model the client named.
  const std::string model(generator.name());
  Answer answer;
  answer.layer = "l2";
  answer.completion = api::make_completion(api::new_completion_id(), model, created, generation.text, "stop", usage);
  return answer;
}

asio::awaitable<Result<inference::Label>> classify(inference::Generator& generator,
                                                    std::vector<inference::ChatMessage> messages) {
  auto start = [&generator, messages = std::move(messages)](auto done) mutable {
    generator.classify_async(std::move(messages), done);
  };
  co_return co_await await_worker<inference::Label>(std::move(start));
}

asio::awaitable<Result<inference::Generation>> generate(inference::Generator& generator,
                                                         std::vector<inference::ChatMessage> messages,
                                                         inference::GenerateOptions options) {
  auto start = [&generator, messages = std::move(messages), options = std::move(options)](auto done) mutable {
    generator.generate_async(std::move(messages), std::move(options), {}, done);
  };
  co_return co_await await_worker<inference::Generation>(std::move(start));
}

// Model failures are the gateway's problem, not the client's: L3 can still answer.
void log_failure(std::string_view step, const Error& error) {
  if (error.code == ErrorCode::kOverloaded) {
    LOG_WARN(kTarget, "local model overloaded during {}, passing the request to L3: {}", step, error.message);
  } else {
    LOG_WARN(kTarget, "local model {} failed, passing the request to L3: {}", step, error.message);
  }
}

}  // namespace

std::optional<std::vector<inference::ChatMessage>> local_model_messages(const ChatRequest& request,
                                                                        std::size_t max_prompt_chars) {
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
    if (role == "system" || role == "developer") {
      if (users > 0) return std::nullopt;  // a system message after the user's is not a plain single turn
      out.push_back({"system", std::move(*text)});
    } else if (role == "user" && users == 0) {
      if (text->empty()) return std::nullopt;
      ++users;
      out.push_back({"user", std::move(*text)});
    } else {
      return std::nullopt;  // assistant or tool turns, or a second user message: multi-turn
    }
  }
  if (users != 1 || chars > max_prompt_chars) return std::nullopt;
  return out;
}

std::optional<std::string_view> reject_reason(const inference::Generation& generation) {
  if (generation.finish == inference::FinishReason::kLength) return "truncated at the token limit";
  if (generation.finish != inference::FinishReason::kStop) return "generation did not finish";
  const std::string start = opening(generation.text);
  if (start.empty()) return "empty answer";
  for (std::string_view refusal : kRefusals) {
    if (start.starts_with(refusal)) return "refusal-style answer";
  }
  return std::nullopt;
}

LocalModelLayer::LocalModelLayer(std::shared_ptr<inference::Generator> generator, LocalModelOptions options)
    : generator_(std::move(generator)), options_(std::move(options)) {}

LayerStatus LocalModelLayer::status() const { return {true, true, std::string(generator_->name())}; }

asio::awaitable<Result<std::optional<Answer>>> LocalModelLayer::answer(ChatRequest& request) {
  auto messages = local_model_messages(request, options_.max_prompt_chars);
  if (!messages) co_return std::optional<Answer>{};
  std::vector<inference::ChatMessage> to_classify = *messages;
  auto label = co_await classify(*generator_, std::move(to_classify));
  if (!label) {
    log_failure("classification", label.error());
    co_return std::optional<Answer>{};
  }
  if (*label != inference::Label::kSimple) {
    LOG_DEBUG(kTarget, "classified COMPLEX, passing the request to L3");
    co_return std::optional<Answer>{};
  }
  inference::GenerateOptions options = options_.generate;
  auto generation = co_await generate(*generator_, std::move(*messages), std::move(options));
  if (!generation) {
    log_failure("generation", generation.error());
    co_return std::optional<Answer>{};
  }
  if (auto why = reject_reason(*generation)) {
    LOG_INFO(kTarget, "quality guard rejected the local answer ({}), passing the request to L3", *why);
    co_return std::optional<Answer>{};
  }
  co_return std::optional<Answer>(make_answer(*generator_, *generation));
}

}  // namespace isartor::pipeline
