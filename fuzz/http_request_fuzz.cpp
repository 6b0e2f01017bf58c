// The HTTP/1.1 request path of http::Server (src/http/server.*), which only reads from sockets:
// each input is the raw bytes a client sends on one loopback connection (pipelined requests
// included); the client then shuts its sending side and reads until the server closes. Request
// parsing, the framing checks, header and body limits, error rendering, keep-alive and both
// response kinds run: the handler answers a path under /stream as SSE, anything else as JSON,
// echoing what it was given. One server per process, on an ephemeral port, stopped at exit.
// Its idle timeout is 1 s: a request with a body followed at once by the client's half-close
// sometimes leaves the connection in CLOSE_WAIT until that timeout (found by this target, about
// 1 run in 150; see README "Fuzzing and sanitizers"); a connection still open after 10 s is a hang.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>

#include <boost/asio/awaitable.hpp>

#include "api/errors.h"
#include "core/log.h"
#include "http/server.h"

using namespace isartor;

namespace {

// Values are built outside the coroutine and named before co_await: g++ 12 rejects braced
// string-literal pairs inside one and destroys some temporaries in a co_await expression twice.
http::Headers echo_headers() { return {{"X-Echo", "1"}}; }

boost::asio::awaitable<void> echo(const http::Request& request, http::Responder& responder) {
  const std::string summary = request.method + " " + request.path + "?" + request.query + " host=" +
                              std::string(request.header("host")) + " headers=" +
                              std::to_string(request.headers.size()) + " body=" + std::to_string(request.body.size());
  if (request.path.starts_with("/stream")) {
    if (!co_await responder.begin_stream(200, echo_headers())) co_return;
    const std::string event = "data: " + summary + "\n\n";
    if (!co_await responder.write(event)) co_return;
    co_await responder.end_stream();
  } else {
    http::Response response{200, "application/json", echo_headers(), summary};
    co_await responder.send(std::move(response));
  }
}

http::Response render(std::string_view, const Error& error) {
  const auto rendered = api::render_error(api::WireFormat::kOpenAI, error);
  return http::Response{rendered.status, "application/json", {}, rendered.body};
}

// Started on the first input; atexit sends the SIGTERM the server stops on and joins it.
uint16_t server_port() {
  static http::Server* server = nullptr;
  static std::thread thread;
  if (server == nullptr) {
    log::init("off");
    http::ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.threads = 1;
    options.max_body_bytes = 64 * 1024;
    options.header_timeout = std::chrono::seconds(5);
    options.idle_timeout = std::chrono::seconds(1);
    options.write_timeout = std::chrono::seconds(5);
    options.shutdown_grace = std::chrono::seconds(1);
    server = new http::Server(options, echo, render);
    thread = std::thread([] { server->run(); });
    while (server->port() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::atexit([] {
      ::kill(::getpid(), SIGTERM);
      thread.join();
      delete server;
    });
  }
  return server->port();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint16_t port = server_port();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::perror("connect to the fuzzed server");
    std::abort();
  }
  for (size_t sent = 0; sent < size;) {
    const ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server closed early (a refused request)
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) {
  }
  // A server that never closes (the receive timeout) is a hang; a reset is a refusal.
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) std::abort();
  ::close(fd);
  return 0;
}
