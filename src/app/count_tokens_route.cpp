#include "app/count_tokens_route.h"

#include "api/anthropic_inbound.h"

namespace isartor::app {
namespace asio = boost::asio;

namespace {

// Anthropic wraps every message in a few tokens of its own (role markers).
constexpr int64_t kTokensPerMessage = 3;

// The texts a model reads of one OpenAI-form message: its content's text parts, and the names and
// arguments of its tool calls.
void message_texts(const api::Json& message, std::vector<std::string>& out) {
  const auto content = message.find("content");
  if (content != message.end()) {
    if (content->is_string()) out.push_back(content->get<std::string>());
    if (content->is_array()) {
      for (const auto& part : *content) {
        if (part.is_object() && part.contains("type") && part["type"] == "text" && part.contains("text") && part["text"].is_string()) {
          out.push_back(part["text"].get<std::string>());
        }
      }
    }
  }
  const auto calls = message.find("tool_calls");
  if (calls == message.end() || !calls->is_array()) return;
  for (const auto& call : *calls) {
    if (call.is_object() && call.contains("function")) out.push_back(api::dump_json(call["function"]));
  }
}

// Kept out of the coroutine: g++ 12 miscompiles initializer lists inside coroutine frames.
RouteAnswer provider_count(const api::Json& counted) {
  return {api::dump_json(counted), {{"X-Isartor-Token-Count", "provider"}}};
}

RouteAnswer estimated_count(int64_t tokens, std::string tokenizer) {
  return {api::dump_json(api::Json{{"input_tokens", tokens}}),
          {{"X-Isartor-Token-Count", "estimate"}, {"X-Isartor-Tokenizer", std::move(tokenizer)}}};
}

}  // namespace

Result<int64_t> estimate_input_tokens(const api::Json& body, const inference::Embedder* tokenizer) {
  // Validated and brought into one form as /v1/messages does; count_tokens takes no max_tokens.
  api::Json request = body;
  if (!request.contains("max_tokens")) request["max_tokens"] = 1;
  ASSIGN_OR_RETURN(api::Json canonical, api::anthropic_request_to_openai(request));
  std::vector<std::string> texts;
  int64_t tokens = 0;
  for (const auto& message : canonical["messages"]) {
    message_texts(message, texts);
    tokens += kTokensPerMessage;
  }
  if (const auto tools = canonical.find("tools"); tools != canonical.end() && tools->is_array()) {
    for (const auto& tool : *tools) texts.push_back(api::dump_json(tool));
  }
  for (const auto& text : texts) {
    tokens += tokenizer ? static_cast<int64_t>(tokenizer->count_tokens(text)) : static_cast<int64_t>(text.size() + 3) / 4;
  }
  return tokens;
}

asio::awaitable<Result<RouteAnswer>> answer_count_tokens(const CountTokensRoute& route, api::Json body,
                                                         std::vector<std::string> headers) {
  const auto model = body.find("model");
  if (model == body.end() || !model->is_string() || model->get_ref<const std::string&>().empty()) {
    body["model"] = route.default_model;
  }
  if (route.provider_counts) {
    // A named request: g++ 12 destroys a braced temporary in a co_await expression twice.
    providers::NativeRequest native;
    native.endpoint = providers::NativeEndpoint::kCountTokens;
    native.body = std::move(body);
    native.headers = std::move(headers);
    CO_ASSIGN_OR_RETURN(auto counted, co_await route.upstream->call_native(native));
    co_return provider_count(counted);
  }
  CO_ASSIGN_OR_RETURN(int64_t tokens, estimate_input_tokens(body, route.tokenizer));
  co_return estimated_count(tokens, route.tokenizer ? route.tokenizer_name : "utf-8 bytes / 4");
}

}  // namespace isartor::app
