#pragma once
// What every provider does with the HTTP client: open a call and turn a non-2xx answer into an
// Error carrying the provider's own message (keys redacted), and read an SSE body as a
// ChunkStream. Shared by the provider files so they only hold what differs.
#include <boost/asio/awaitable.hpp>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "api/sse.h"
#include "providers/http_client.h"
#include "providers/provider_client.h"

namespace isartor::providers {

struct UpstreamSettings {
  std::string provider;   // for messages: "openai", ...
  std::string url;        // full endpoint URL
  std::vector<std::string> headers;  // auth and version headers, "Name: value"
  std::string api_key;    // to redact from anything the provider echoes back
  std::chrono::seconds timeout{120};
  bool key_required = true;  // false: calls go out without a key (a local sidecar)
  std::string method = "POST";
  // The client header fields this provider's API takes, by name prefix ("openai-"); "" for none.
  std::string client_header_prefix;
};

// Sends `body` as JSON and waits for a 2xx status. A non-2xx status becomes an Error that keeps
// its meaning: 429 kRateLimited, another 4xx kUpstreamRejected (that status), 408/504
// kUpstreamTimeout, the rest kUpstream (502); with the provider's message (redacted), type and
// code, and its Retry-After / rate-limit headers. Must run on the caller's executor.
boost::asio::awaitable<Result<std::unique_ptr<HttpCall>>> open_upstream(
    HttpClient& http, const UpstreamSettings& settings, std::string body, bool streaming);

// open_upstream + read + parse the JSON body (garbage -> kUpstream).
boost::asio::awaitable<Result<api::Json>> post_json(HttpClient& http, const UpstreamSettings& settings,
                                                    const api::Json& body);

// Reads an SSE body and yields chunks that `decode` makes of each event, until `decode` reports
// the terminal event. A body that ends before it is an error: an interrupted stream.
class SseChunkStream : public ChunkStream {
 public:
  // Errors it returns have the provider's key redacted, so no sink (client, log) ever sees it.
  SseChunkStream(std::unique_ptr<HttpCall> call, const UpstreamSettings& settings)
      : call_(std::move(call)), provider_(settings.provider), api_key_(settings.api_key) {}
  boost::asio::awaitable<Result<std::optional<api::Json>>> next() final;

 protected:
  // Appends the chunks made of one event to `out`; returns true when it was the terminal event.
  virtual Result<bool> decode(const api::SseEvent& event, std::vector<api::Json>& out) = 0;

 private:
  std::unique_ptr<HttpCall> call_;
  std::string provider_;
  std::string api_key_;
  api::SseParser parser_;
  std::deque<api::Json> ready_;
  bool ended_ = false;
};

}  // namespace isartor::providers
