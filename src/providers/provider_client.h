#pragma once
// L3: a cloud LLM provider. Every provider takes and returns the canonical OpenAI form; the
// ones with another wire format (Anthropic) translate inside, and pass a request that arrived in
// their own format through unchanged. One file per provider.
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/wire_format.h"
#include "config/config.h"
#include "core/result.h"

namespace isartor::providers {

class HttpClient;

// A streamed answer as OpenAI chat.completion.chunk objects. Used from one coroutine.
class ChunkStream {
 public:
  virtual ~ChunkStream() = default;
  // The next chunk; std::nullopt when the stream ended normally (after [DONE] / message_stop).
  // An upstream that closes before its terminal event yields an Error (kUpstream).
  virtual boost::asio::awaitable<Result<std::optional<api::Json>>> next() = 0;
  // Whether the answer of a stream that ended normally may be cached; false when the gateway's
  // own limits cut it short (a local model's token cap or timeout).
  virtual bool cacheable() const { return true; }
  // A pass-through stream (ProviderClient::stream_native): the provider's own events as SSE text,
  // as received since the last call (keys redacted); "" for every other stream. The chunks of
  // next() are their canonical form, for the caches; an event without one (ping, thinking) yields
  // an empty object, so that its text is taken at once.
  virtual std::string take_native() { return {}; }
};

// A provider's endpoints besides chat, which the gateway passes on as they are.
enum class NativeEndpoint {
  kEmbeddings,   // POST, OpenAI-compatible providers
  kCountTokens,  // POST /v1/messages/count_tokens, Anthropic
  kModels,       // GET the model list (OpenAI, xAI: /models; Anthropic: /v1/models), no body
};

// A request for a native endpoint: the client's JSON body, unchanged but for the model default.
struct NativeRequest {
  NativeEndpoint endpoint = NativeEndpoint::kEmbeddings;
  api::Json body;
  // Client header fields that change the provider's behaviour, "name: value" (anthropic-beta).
  std::vector<std::string> headers;
};

// A chat request in the provider's own wire format, sent as the client wrote it (model resolved).
struct PassThrough {
  api::Json body;
  std::vector<std::string> headers;  // allow-listed client headers, "name: value" (anthropic-beta)
};

// The provider's own answer to a pass-through request, and the same in the canonical form.
struct NativeCompletion {
  api::Json native;
  api::Json completion;
};

// Client header fields a request carries to the provider, "name: value", allow-listed by the
// gateway per route (never auth): OpenAI-Organization / OpenAI-Project on the OpenAI routes,
// anthropic-beta / anthropic-version on the Anthropic route.
using ClientHeaders = std::vector<std::string>;

class ProviderClient {
 public:
  virtual ~ProviderClient() = default;
  // "openai", "azure", "anthropic", "xai".
  virtual std::string_view name() const = 0;
  // True when a key is configured; otherwise calls fail with kUnavailable naming the variable.
  virtual bool ready() const = 0;
  // A whole chat.completion for an OpenAI-form body (model already resolved). `headers`: the
  // client's fields; a provider sends those of its own API and ignores the rest. Must be awaited
  // on the caller's executor; safe to call concurrently from many coroutines.
  virtual boost::asio::awaitable<Result<api::Json>> complete(const api::Json& body, const ClientHeaders& headers) = 0;
  // Starts a streamed answer; returns once the upstream accepted (2xx status), so errors before
  // the first byte are reported as values, not as a broken stream. `headers` as for complete().
  virtual boost::asio::awaitable<Result<std::unique_ptr<ChunkStream>>> stream(const api::Json& body,
                                                                              const ClientHeaders& headers) = 0;
  // The same without client header fields (the gateway's own calls: a sidecar, a probe).
  boost::asio::awaitable<Result<api::Json>> complete(const api::Json& body) { return complete(body, no_headers()); }
  boost::asio::awaitable<Result<std::unique_ptr<ChunkStream>>> stream(const api::Json& body) {
    return stream(body, no_headers());
  }
  // Sends `request` to the provider's own endpoint and returns its JSON answer; kNotFound when
  // this provider has no such endpoint, errors as for complete(). Awaited on the caller's
  // executor; safe to call concurrently.
  virtual boost::asio::awaitable<Result<api::Json>> call_native(const NativeRequest& request) = 0;
  // Whether a chat request that arrived in `format` goes to this provider unchanged (the
  // *_native calls below); false by default.
  virtual bool speaks(api::WireFormat format) const;
  // As complete() and stream(), for a request in the provider's own format: the body goes
  // upstream as it is, the answer (and each event) comes back as the provider gave it, beside its
  // canonical form. Only where speaks() said so; kInternal otherwise.
  virtual boost::asio::awaitable<Result<NativeCompletion>> complete_native(const PassThrough& request);
  virtual boost::asio::awaitable<Result<std::unique_ptr<ChunkStream>>> stream_native(const PassThrough& request);

 private:
  static const ClientHeaders& no_headers() {
    static const ClientHeaders kNone;
    return kNone;
  }
};

// What one provider client is built from: an entry of the L3 chain, one key of its pool ("" for
// none: the client is not ready()), and the settings all providers share (timeouts, API versions).
struct ProviderSpec {
  const config::UpstreamTarget& target;
  std::string api_key;
  const config::Config& config;
};

// A client of spec.target's provider that calls with spec.api_key; its name() is the target's name.
std::unique_ptr<ProviderClient> make_provider(const ProviderSpec& spec, HttpClient& http);

}  // namespace isartor::providers
