#include "providers/upstream.h"

#include "api/errors.h"
#include "core/log.h"

namespace isartor::providers {
namespace asio = boost::asio;

namespace {

constexpr const char* kTarget = "isartor::providers";

// The provider's own explanation: OpenAI and Anthropic both put it in error.message, with a type
// (and OpenAI a code and param) beside it.
struct ProviderError {
  std::string message;
  std::string type;
  std::string code;
  std::string param;
};

std::string string_field(const api::Json& object, const char* name) {
  const auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

ProviderError provider_error(const std::string& body) {
  auto json = api::parse_json(body);
  if (json.is_object() && json.contains("error")) {
    const auto& error = json["error"];
    if (error.is_object() && error.contains("message") && error["message"].is_string()) {
      return {error["message"].get<std::string>(), string_field(error, "type"), string_field(error, "code"),
              string_field(error, "param")};
    }
    if (error.is_string()) return {error.get<std::string>(), {}, {}, {}};
  }
  constexpr std::size_t kMaxShown = 300;
  return {body.size() > kMaxShown ? body.substr(0, kMaxShown) + "..." : body, {}, {}, {}};
}

// What the client needs to pace itself: when to retry and how much of the limit is left.
bool forwarded_header(std::string_view name) {
  return name == "retry-after" || name == "retry-after-ms" || name == "x-should-retry" ||
         name.starts_with("x-ratelimit-") || name.starts_with("anthropic-ratelimit-");
}

// A non-2xx status as an Error that keeps its meaning: the provider's 4xx stays that 4xx with
// its message, type and code (a client's mistake must not be retried as a 502); 429 keeps its
// pacing headers; 408/504 are timeouts; anything else is the provider failing (502).
Error upstream_error(long status, const ProviderError& detail, const HttpHeaders& headers,
                     const UpstreamSettings& settings) {
  ErrorCode code = ErrorCode::kUpstream;
  if (status == 408 || status == 504) code = ErrorCode::kUpstreamTimeout;
  else if (status == 429) code = ErrorCode::kRateLimited;
  else if (status >= 400 && status < 500) code = ErrorCode::kUpstreamRejected;
  std::string message = detail.message;
  if (status == 401 || status == 403) {
    // Not the client's key: the gateway's own key for the provider (the client cannot fix it).
    message = "upstream provider " + settings.provider + " refused the gateway's API key (HTTP " +
              std::to_string(status) + "): " + message;
  } else if (code == ErrorCode::kUpstream || code == ErrorCode::kUpstreamTimeout) {
    message = "upstream provider " + settings.provider + " returned HTTP " + std::to_string(status) + ": " + message;
  }
  Error error(code, api::redact(std::move(message), {settings.api_key}), detail.param);
  error.upstream_status = static_cast<int>(status);
  error.upstream_type = detail.type;
  error.upstream_code = detail.code;
  for (const auto& [name, value] : headers) {
    if (forwarded_header(name)) error.headers.emplace_back(name, value);
  }
  return error;
}

}  // namespace

asio::awaitable<Result<std::unique_ptr<HttpCall>>> open_upstream(HttpClient& http,
                                                                 const UpstreamSettings& settings,
                                                                 std::string body, bool streaming) {
  HttpRequest request;
  request.url = settings.url;
  request.headers = settings.headers;
  request.headers.push_back("Content-Type: application/json");
  request.headers.push_back(streaming ? "Accept: text/event-stream" : "Accept: application/json");
  request.headers.push_back("User-Agent: isartor/" ISARTOR_VERSION);
  request.body = std::move(body);
  request.method = settings.method;
  request.streaming = streaming;
  request.total_timeout = settings.timeout;
  request.idle_timeout = settings.timeout;

  auto call = http.start(std::move(request), co_await asio::this_coro::executor);
  auto status = co_await call->status();
  if (!status) {
    status.error().message = api::redact(status.error().message, {settings.api_key});
    co_return std::unexpected(status.error());
  }
  if (*status >= 200 && *status < 300) co_return std::move(call);

  auto error_body = co_await call->read_all();
  const ProviderError detail = error_body ? provider_error(*error_body) : ProviderError{error_body.error().message, {}, {}, {}};
  Error error = upstream_error(*status, detail, call->headers(), settings);
  LOG_WARN(kTarget, "upstream provider {} returned HTTP {}: {}", settings.provider, *status,
           api::redact(detail.message, {settings.api_key}));
  co_return std::unexpected(std::move(error));
}

asio::awaitable<Result<api::Json>> post_json(HttpClient& http, const UpstreamSettings& settings,
                                             const api::Json& body) {
  std::string payload = body.dump();
  CO_ASSIGN_OR_RETURN(auto call, co_await open_upstream(http, settings, std::move(payload), false));
  CO_ASSIGN_OR_RETURN(auto text, co_await call->read_all());
  auto json = api::parse_json(text);
  if (!json.is_object()) {
    co_return fail(ErrorCode::kUpstream,
                   "upstream provider " + settings.provider + " returned a body that is not a JSON object");
  }
  co_return json;
}

asio::awaitable<Result<std::optional<api::Json>>> SseChunkStream::next() {
  for (;;) {
    if (!ready_.empty()) {
      api::Json chunk = std::move(ready_.front());
      ready_.pop_front();
      co_return std::optional<api::Json>(std::move(chunk));
    }
    if (ended_) co_return std::optional<api::Json>{};
    CO_ASSIGN_OR_RETURN(auto bytes, co_await call_->read());
    auto events = bytes ? parser_.feed(*bytes) : parser_.finish();
    std::vector<api::Json> out;
    for (const auto& event : events) {
      auto terminal = decode(event, out);
      if (!terminal) {
        // In-band errors may echo the key (OpenAI's "Incorrect API key provided: sk-...").
        Error error = terminal.error();
        error.message = api::redact(std::move(error.message), {api_key_});
        co_return std::unexpected(std::move(error));
      }
      if (*terminal) {
        ended_ = true;
        break;
      }
    }
    for (auto& chunk : out) ready_.push_back(std::move(chunk));
    if (ended_) {
      // The terminal event ends the answer: an upstream that keeps the response open after it
      // must not hold the client's end back. The body's own end (the last chunk) usually follows
      // at once; given a moment for it the connection is kept for reuse.
      call_->release(std::chrono::seconds(1));
      call_.reset();
    } else if (!bytes) {
      co_return fail(ErrorCode::kUpstream,
                     "upstream provider " + provider_ + " closed the stream before it finished");
    }
  }
}

}  // namespace isartor::providers
