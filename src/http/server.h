#pragma once
// Asynchronous HTTP/1.1 server (Boost.Beast over Asio, C++20 coroutines). Each connection is a
// coroutine pinned to one of the I/O threads (one io_context per thread, connections dealt
// round-robin), so thousands of idle keep-alive or long SSE connections cost memory, not
// threads, and a request's completions never hop between threads. The server knows nothing of routes or wire formats: it hands each
// request to a Handler and gives it a Responder for a whole response or a chunked SSE stream.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace isartor::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // target without the query string
  std::string query;   // after '?', may be empty
  Headers headers;     // as received
  std::string body;

  // Value of the first header with this name (case-insensitive); empty when absent.
  std::string_view header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;
  std::string body;
};

// One per request, used from the handler's coroutine only. Every call returns false once the
// client is gone; the handler should then stop work (which cancels upstream calls).
class Responder {
 public:
  virtual ~Responder() = default;
  virtual boost::asio::awaitable<bool> send(Response response) = 0;
  // Starts a chunked text/event-stream response with these extra headers.
  virtual boost::asio::awaitable<bool> begin_stream(int status, Headers headers) = 0;
  // Writes one chunk (already SSE-formatted) and flushes it to the socket.
  virtual boost::asio::awaitable<bool> write(std::string_view data) = 0;
  virtual boost::asio::awaitable<bool> end_stream() = 0;
};

using Handler = std::function<boost::asio::awaitable<void>(const Request&, Responder&)>;
// Renders errors found before a handler runs (body too large, malformed HTTP) for a path.
using ErrorRenderer = std::function<Response(std::string_view path, const Error&)>;
// Renders the SSE error event that ends a stream the server has to cut (shutdown) for a path.
using StreamErrorRenderer = std::function<std::string(std::string_view path, const Error&)>;

struct ServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8080;
  uint64_t max_body_bytes = 4 * 1024 * 1024;
  std::chrono::seconds header_timeout{30};  // to receive a request from its first byte (then 408)
  std::chrono::seconds idle_timeout{60};    // keep-alive wait for the next request
  std::chrono::seconds write_timeout{60};   // a write the client does not take; then it is dropped
  std::chrono::seconds shutdown_grace{30};  // in-flight requests get this long after SIGTERM
  int threads = 0;                          // 0 = hardware concurrency
  // Client connections open at once; 0 = no cap. At the cap new connections wait in the listen
  // backlog and keep-alive connections idle for a second or more are closed to make room.
  std::size_t max_connections = 0;
  // When the shutdown grace ends, requests still running are cancelled: a stream gets this event
  // (then its end), a request not yet answered the 503 of the ErrorRenderer. Empty: streams are
  // only ended.
  StreamErrorRenderer render_stream_error;
};

class Server {
 public:
  Server(ServerOptions options, Handler handler, ErrorRenderer render_error);
  ~Server();
  // Binds (throws std::runtime_error naming the address if it cannot), then serves until
  // SIGINT/SIGTERM; returns after in-flight requests finished or the grace period ran out. When
  // accept() fails for want of descriptors or memory it pauses 100 ms instead of spinning, closes
  // idle keep-alive connections and logs one line per 5 s with the count held back.
  void run();
  // The bound port (useful with port 0). Valid after run() started listening.
  uint16_t port() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace isartor::http
