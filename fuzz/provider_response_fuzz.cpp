// An upstream's answer as the providers read it (src/providers over the real HttpClient and a
// loopback server that sends the input): the first byte picks the provider (OpenAI-compatible
// or Anthropic), whole answer or stream, and the HTTP status (200, 400, 429, 503); the rest is
// the response body. Covers the error-body parser of non-2xx answers, the JSON answer and its
// translation, and the SSE stream decoders to their end. Checks the redaction contract: no error
// a provider returns contains the gateway's provider key, whatever the upstream echoed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "config/config.h"
#include "core/log.h"
#include "fakes/canned_http_server.h"
#include "providers/http_client.h"
#include "providers/openai_provider.h"
#include "providers/provider_client.h"
#include "support/run_coroutine.h"

using namespace isartor;

namespace {

constexpr std::string_view kKey = "sk-fuzz-provider-key-0123456789abcdef";

void check_redacted(const Error& error) {
  if (error.message.find(kKey) != std::string::npos) std::abort();
}

// The answer's chunks are read inside the coroutine: a call's timer belongs to its io_context.
boost::asio::awaitable<void> ask(providers::ProviderClient& provider, bool stream) {
  const api::Json body = {{"model", "m"}, {"max_tokens", 8}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  if (!stream) {
    auto answer = co_await provider.complete(body);
    if (!answer) check_redacted(answer.error());
    co_return;
  }
  auto chunks = co_await provider.stream(body);
  if (!chunks) co_return check_redacted(chunks.error());
  for (;;) {
    auto chunk = co_await (*chunks)->next();
    if (!chunk) co_return check_redacted(chunk.error());
    if (!*chunk) co_return;
  }
}

struct Upstream {
  testing::CannedHttpServer server{""};
  providers::HttpClient http;
  std::unique_ptr<providers::ProviderClient> openai;
  std::unique_ptr<providers::ProviderClient> anthropic;

  Upstream() {
    log::init("off");
    config::Config config;
    config.l3_timeout_secs = 10;
    config::UpstreamTarget target;
    target.name = "openai";
    target.url = server.url("");
    openai = providers::make_openai_provider({target, std::string(kKey), config}, http);
    target.name = "anthropic";
    target.provider = config::Provider::kAnthropic;
    anthropic = providers::make_anthropic_provider({target, std::string(kKey), config}, http);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Upstream upstream;
  if (size == 0) return 0;
  const bool anthropic = data[0] & 1;
  const bool stream = data[0] & 2;
  static constexpr const char* kStatus[] = {"200 OK", "400 Bad Request", "429 Too Many Requests",
                                            "503 Service Unavailable"};
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  upstream.server.set_response(std::string("HTTP/1.1 ") + kStatus[(data[0] >> 2) & 3] +
                               "\r\nContent-Type: " + (stream ? "text/event-stream" : "application/json") +
                               "\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n" + body);
  testing::run_coroutine(ask(anthropic ? *upstream.anthropic : *upstream.openai, stream));
  return 0;
}
