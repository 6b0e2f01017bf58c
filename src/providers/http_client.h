#pragma once
// Upstream HTTP client: one libcurl multi handle driven by one dedicated thread. Connections are
// pooled by the multi handle (keep-alive, HTTP/2 over TLS), TLS peers are verified, proxies come
// from the usual environment variables. Responses reach the caller's Asio executor through a
// bounded channel; when the caller reads slower than the upstream sends, the transfer is paused
// (CURL_WRITEFUNC_PAUSE), so a slow client applies backpressure instead of growing memory.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace isartor::providers {

// Header fields of a response, names lower-cased, in the order received.
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // POST body; empty with method GET
  std::string method = "POST";
  std::chrono::milliseconds total_timeout{120000};  // whole transfer (non-streaming)
  std::chrono::milliseconds idle_timeout{120000};   // max silence between bytes (streaming)
  bool streaming = false;  // true: idle_timeout applies instead of total_timeout
};

class HttpClient;

// One transfer. Owned by the caller; destroying it (or cancel()) aborts the transfer, which is
// how a client disconnect cancels the upstream call. Methods are called from one coroutine at a time.
class HttpCall {
 public:
  virtual ~HttpCall() = default;
  // Waits for the response status (after headers); errors for connect/TLS/timeout failures.
  virtual boost::asio::awaitable<Result<long>> status() = 0;
  // The final response's header fields; filled once status() returned a status.
  virtual const HttpHeaders& headers() const = 0;
  // Next body bytes; std::nullopt when the body ended normally.
  virtual boost::asio::awaitable<Result<std::optional<std::string>>> read() = 0;
  // Reads the rest of the body.
  boost::asio::awaitable<Result<std::string>> read_all();
  virtual void cancel() = 0;
  // The caller needs nothing more of the body: the transfer may run to its end for up to `grace`
  // (its data dropped), so that its connection is kept for reuse; then it is aborted. Cancelling
  // or destroying the call afterwards changes nothing.
  virtual void release(std::chrono::milliseconds grace) = 0;
};

struct HttpClientLimits {
  // Upstream connections open at once (0 = no cap); transfers beyond it wait in libcurl's queue
  // for a free connection, their timeouts running.
  long max_connections = 0;
  // Bytes of one whole (non-streaming) response body after content decoding (0 = no cap): a
  // larger one (or a gzip bomb) ends in kUpstream as soon as it passes the cap. Streams are
  // relayed under backpressure and not capped.
  std::size_t max_response_bytes = 0;
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientLimits limits = {});
  ~HttpClient();  // stops the thread, aborting transfers still running
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts a transfer whose events are delivered on `executor`. Thread-safe.
  std::unique_ptr<HttpCall> start(HttpRequest request, boost::asio::any_io_executor executor);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace isartor::providers
