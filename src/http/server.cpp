#include "http/server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/log.h"
#include "core/strings.h"

namespace isartor::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr const char* kTarget = "isartor::http";
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

}  // namespace

std::string_view Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (core::iequals(k, name)) return v;
  }
  return {};
}

// A connection's registration, so shutdown can wake connections idling in keep-alive, and the
// state of its close watch. Touched only on the connection's I/O thread (the registry's set is
// guarded by connections_mu).
struct Connection {
  beast::tcp_stream* stream = nullptr;
  asio::any_io_executor executor;
  bool idle = true;
  std::chrono::steady_clock::time_point idle_since = std::chrono::steady_clock::now();
  // The session coroutine's cancellation: emitted when the client hangs up mid-request, it
  // cancels whatever the handler awaits (an upstream call, a local model).
  asio::cancellation_signal cancel;
  bool handling = false;      // a handler is running
  bool client_gone = false;   // the watch saw the client hang up during a handler
  bool cut = false;           // the handler was cancelled because the shutdown grace ended
  // The close watch: armed for a handler, cancelled when it returns (peek_cancel), so it never
  // sits in the socket's read queue in front of the session's next read.
  asio::cancellation_signal peek_cancel;
  bool peek_pending = false;
  unsigned peek_generation = 0;  // a cancelled watch's late callback sees it changed
  char peek_byte = 0;
};

struct Server::Impl {
  ServerOptions options;
  Handler handler;
  ErrorRenderer render_error;
  // Declared before the contexts: sessions still in them when they are destroyed unregister here.
  std::atomic<bool> stopping{false};
  std::atomic<int> in_flight{0};
  std::atomic<uint16_t> bound_port{0};
  std::atomic<std::size_t> open_connections{0};  // accepted and not yet closed
  std::mutex connections_mu;
  std::unordered_set<std::shared_ptr<Connection>> connections;
  // One io_context per I/O thread, each run by one thread; a connection lives on one of them.
  // A single context shared by all threads made every completion a cross-thread hand-off
  // (eventfd wake-up, mutex contention: 3-4 system calls per cache hit).
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
  std::size_t next_context = 0;  // round-robin, touched by the accept loop only
  std::unique_ptr<tcp::acceptor> acceptor;

  asio::awaitable<void> accept_loop();
  // Closes the connections waiting at least `idle_for` for a next request. Any thread.
  void close_idle_connections(std::chrono::steady_clock::duration idle_for);
  asio::awaitable<void> session(tcp::socket socket, std::shared_ptr<Connection> conn);
  asio::awaitable<void> shutdown_on_signal();
  // At the end of the shutdown grace: cancels the running handlers (their sessions then write
  // a terminal error) and gives them a second; false once that second is over. Accept thread.
  bool cut_requests();
  std::optional<std::chrono::steady_clock::time_point> cut_deadline;
};

namespace {

// A handler's header line is written only if neither its name nor its value could split the
// head, and if it is not one of the fields the server itself sets for the framing.
bool safe_header(std::string_view name, std::string_view value) {
  const auto bad = [](char c) { return c == '\r' || c == '\n' || c == '\0'; };
  if (name.empty() || std::any_of(name.begin(), name.end(), bad) || std::any_of(value.begin(), value.end(), bad)) {
    return false;
  }
  for (std::string_view framing : {"Content-Length", "Transfer-Encoding", "Connection", "Content-Type", "Server"}) {
    if (core::iequals(name, framing)) return false;
  }
  return true;
}

// 1xx, 204 and 304 responses have no body, so no Content-Length either (RFC 9110 8.6).
bool bodiless(int status) { return status < 200 || status == 204 || status == 304; }

// Renders a response head in one string. Beast's serializer walks a buffers_cat_view of every
// field on each write; rendering the few fields we send directly cost a tenth of that.
// Without a content length the body is chunked (HTTP/1.1) or ends with the connection (1.0).
std::string render_head(int status, unsigned version, bool keep_alive, std::string_view content_type,
                        const Headers& headers, std::optional<std::size_t> content_length) {
  std::string head;
  head.reserve(256);
  head += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  head += std::to_string(status);
  head += ' ';
  // A code Beast does not know (a provider's 529, say) goes out with an empty reason phrase.
  if (bhttp::int_to_status(static_cast<unsigned>(status)) != bhttp::status::unknown) {
    head += bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  }
  head += "\r\nServer: isartor/" ISARTOR_VERSION "\r\nContent-Type: ";
  head += content_type;
  head += "\r\n";
  if (content_type == "text/event-stream") {
    // Whole or chunked, events must reach the client as they are written: no caching, and
    // proxies in front of us (nginx) must not buffer them.
    head += "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n";
  }
  for (const auto& [name, value] : headers) {
    if (!safe_header(name, value)) {
      LOG_WARN(kTarget, "dropped a response header that could break the framing ({})", name.substr(0, 64));
      continue;
    }
    head.append(name).append(": ").append(value).append("\r\n");
  }
  // HTTP/1.1 connections persist unless told otherwise; 1.0 ones close unless told otherwise.
  if (version >= 11 && !keep_alive) head += "Connection: close\r\n";
  if (version < 11 && keep_alive) head += "Connection: keep-alive\r\n";
  if (content_length && bodiless(status)) {
    head += "\r\n";
  } else if (content_length) {
    head += "Content-Length: ";
    head += std::to_string(*content_length);
    head += "\r\n\r\n";
  } else {
    head += version >= 11 ? "Transfer-Encoding: chunked\r\n\r\n" : "\r\n";
  }
  return head;
}

class BeastResponder final : public Responder {
 public:
  // head_only: a HEAD request, answered with the head a GET would get and no body.
  BeastResponder(beast::tcp_stream& stream, std::chrono::seconds write_timeout, unsigned version, bool keep_alive,
                 bool head_only = false)
      : stream_(stream), write_timeout_(write_timeout), version_(version), keep_alive_(keep_alive), head_only_(head_only) {}

  bool closed() const { return closed_; }
  bool answered() const { return answered_; }
  bool mid_stream() const { return streaming_ && !closed_; }
  bool keep_alive() const { return keep_alive_; }

  asio::awaitable<bool> send(Response r) override {
    answered_ = true;
    std::string head = render_head(r.status, version_, keep_alive_, r.content_type, r.headers, r.body.size());
    if (head_only_ || bodiless(r.status)) co_return co_await write_all(std::array<asio::const_buffer, 1>{asio::buffer(head)});
    // One gather write: head and body leave in one sendmsg.
    std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(r.body)};
    co_return co_await write_all(buffers);
  }

  asio::awaitable<bool> begin_stream(int status, Headers headers) override {
    answered_ = true;
    // An HTTP/1.0 client cannot read chunks: the stream then ends with the connection.
    if (version_ < 11) keep_alive_ = false;
    chunked_ = version_ >= 11;
    streaming_ = true;
    std::string head = render_head(status, version_, keep_alive_, "text/event-stream", headers, std::nullopt);
    co_return co_await write_all(std::array<asio::const_buffer, 1>{asio::buffer(head)});
  }

  asio::awaitable<bool> write(std::string_view data) override {
    if (closed_) co_return false;
    if (data.empty() || head_only_) co_return true;  // an empty chunk would end the stream
    if (!chunked_) co_return co_await write_all(std::array<asio::const_buffer, 1>{asio::buffer(data)});
    char size[20];
    auto size_end = std::to_chars(size, size + sizeof(size) - 2, data.size(), 16).ptr;
    *size_end++ = '\r';
    *size_end++ = '\n';
    std::array<asio::const_buffer, 3> buffers{asio::buffer(size, static_cast<std::size_t>(size_end - size)),
                                              asio::buffer(data), asio::buffer("\r\n", 2)};
    co_return co_await write_all(buffers);
  }

  asio::awaitable<bool> end_stream() override {
    if (closed_) co_return false;
    streaming_ = false;
    if (!chunked_ || head_only_) co_return true;
    co_return co_await write_all(std::array<asio::const_buffer, 1>{asio::buffer("0\r\n\r\n", 5)});
  }

 private:
  // Most writes fit the socket's send buffer and complete at once (the socket is non-blocking),
  // with no timer. The rest goes out piece by piece, each piece within the write timeout: a
  // client that stops reading is dropped instead of holding its connection and buffers forever,
  // one that reads a long answer slowly but steadily is not (like nginx's send_timeout).
  template <typename Buffers>
  asio::awaitable<bool> write_all(const Buffers& buffers) {
    beast::error_code ec;
    const std::size_t sent = stream_.socket().write_some(buffers, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
    beast::buffers_suffix<Buffers> rest(buffers);
    rest.consume(sent);
    if (!ec && asio::buffer_size(rest) > 0) {
      // Closed until the rest is out: a cancellation thrown mid-chunk must not let anyone write
      // into the middle of it.
      closed_ = true;
      do {
        stream_.expires_after(write_timeout_);
        std::size_t n = 0;
        std::tie(ec, n) = co_await stream_.async_write_some(rest, kAwait);
        rest.consume(n);
      } while (!ec && asio::buffer_size(rest) > 0);
      stream_.expires_never();
    }
    closed_ = static_cast<bool>(ec);
    co_return !ec;
  }

  beast::tcp_stream& stream_;
  std::chrono::seconds write_timeout_;
  unsigned version_;
  bool keep_alive_;
  bool head_only_;
  bool chunked_ = true;
  bool streaming_ = false;
  bool closed_ = false;
  bool answered_ = false;
};

// Notices a client that hangs up while its request is being handled and cancels the handler
// (and the upstream call it awaits). Reads nothing: a pipelined next request stays in the socket.
//
// A 1-byte MSG_PEEK receive with a plain callback: Asio queues it on the descriptor's existing
// EPOLLIN registration (no epoll_ctl), so a request answered quickly costs one non-blocking recv
// that finds nothing (EAGAIN). Earlier designs cost more than the cache hit they guarded: a
// readiness wait (async_wait) re-armed epoll on every request and woke on stale edge events;
// racing the handler against a watcher coroutine (awaitable operator ||) spawned two coroutines
// per request, 15 % of a hit. Everything here runs on the connection's I/O thread, which is
// what cancellation signals require.
void watch_for_close(tcp::socket& socket, const std::shared_ptr<Connection>& conn) {
  conn->peek_pending = true;
  const unsigned generation = ++conn->peek_generation;
  socket.async_receive(asio::buffer(&conn->peek_byte, 1), tcp::socket::message_peek,
                       asio::bind_cancellation_slot(
                           conn->peek_cancel.slot(), [conn, generation](const beast::error_code& ec, std::size_t n) {
                             if (generation != conn->peek_generation) return;  // a cancelled watch
                             conn->peek_pending = false;
                             // Data: a pipelined request, the client is still there.
                             if (!conn->handling || ec == asio::error::operation_aborted || (!ec && n > 0)) return;
                             conn->client_gone = true;
                             conn->cancel.emit(asio::cancellation_type::terminal);
                           }));
}

// Ends the watch once the handler returned. Left pending, it would be first in the socket's read
// queue: when the idle client later closes, the peek takes the (edge-triggered) EOF event and the
// session's read behind it never runs, leaving the connection in CLOSE_WAIT until the idle timeout.
void end_watch(const std::shared_ptr<Connection>& conn) {
  if (!conn->peek_pending) return;
  conn->peek_pending = false;
  ++conn->peek_generation;
  conn->peek_cancel.emit(asio::cancellation_type::total);
}

Request to_request(bhttp::request<bhttp::string_body>& req) {
  Request r;
  r.method = std::string(req.method_string());
  std::string_view target = req.target();
  auto q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
  for (const auto& field : req) r.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  r.body = std::move(req.body());
  return r;
}

// Errors found while reading a request: parse-level, before any route runs.
std::optional<Error> read_error(const beast::error_code& ec) {
  if (ec == bhttp::error::body_limit) {
    return Error(ErrorCode::kPayloadTooLarge, "request body is larger than the limit (ISARTOR__MAX_BODY_BYTES)");
  }
  if (ec == bhttp::error::header_limit) return Error(ErrorCode::kInvalidRequest, "request headers are too large");
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() && ec != bhttp::error::end_of_stream &&
      ec != bhttp::error::partial_message) {
    return Error(ErrorCode::kInvalidRequest, "malformed HTTP request: " + ec.message());
  }
  return std::nullopt;
}

// The deadline of a request once its first byte arrived. It cancels the read rather than closing
// the socket (what beast's own timeout does), so that the client can still be told 408. Lives in
// the session's frame; the timer's handler holds only the shared state, which outlives both.
class RequestDeadline {
 public:
  explicit RequestDeadline(tcp::socket& socket) : timer_(socket.get_executor()), state_(std::make_shared<State>()) {
    state_->socket = &socket;
  }
  ~RequestDeadline() { state_->socket = nullptr; }
  RequestDeadline(const RequestDeadline&) = delete;
  RequestDeadline& operator=(const RequestDeadline&) = delete;

  void arm(std::chrono::steady_clock::duration after) {
    state_->expired = false;
    timer_.expires_after(after);
    timer_.async_wait([state = state_, generation = ++state_->generation](const beast::error_code& ec) {
      // A late handler of an earlier arm() or of a disarmed deadline finds the generation moved.
      if (ec || generation != state->generation || state->socket == nullptr) return;
      state->expired = true;
      // cancel() stops a read that is waiting; the receive shutdown also ends one whose handler is
      // already queued, or the next one (it sees EOF). The send side stays open for the 408.
      beast::error_code ignored;
      state->socket->shutdown(tcp::socket::shutdown_receive, ignored);
      state->socket->cancel(ignored);
    });
  }
  void disarm() {
    ++state_->generation;
    timer_.cancel();
  }
  bool expired() const { return state_->expired; }

 private:
  struct State {
    tcp::socket* socket = nullptr;
    unsigned generation = 0;
    bool expired = false;
  };
  asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

// Framing the parser accepts but RFC 9112 does not: answered, then the connection is closed, so
// that no proxy in front can read the body differently (request smuggling).
std::optional<Error> framing_error(const bhttp::request<bhttp::string_body>& req) {
  const auto codings = req.count(bhttp::field::transfer_encoding);
  if (codings > 0) {
    if (req.count(bhttp::field::content_length) > 0) {
      return Error(ErrorCode::kInvalidRequest, "a request must not carry both Transfer-Encoding and Content-Length");
    }
    const std::string_view coding = core::trim(req[bhttp::field::transfer_encoding]);
    if (codings > 1 || !core::iequals(coding, "chunked")) {
      return Error(ErrorCode::kNotImplemented, "Transfer-Encoding other than chunked is not supported");
    }
  }
  if (req.version() >= 11 && req.count(bhttp::field::host) == 0) {
    return Error(ErrorCode::kInvalidRequest, "an HTTP/1.1 request needs a Host header");
  }
  if (req.count(bhttp::field::host) > 1) return Error(ErrorCode::kInvalidRequest, "a request may carry one Host header");
  return std::nullopt;
}

}  // namespace

asio::awaitable<void> Server::Impl::session(tcp::socket socket, std::shared_ptr<Connection> conn) {
  beast::tcp_stream stream(std::move(socket));
  conn->stream = &stream;
  conn->executor = co_await asio::this_coro::executor;
  {
    std::lock_guard lock(connections_mu);
    connections.insert(conn);
  }
  // Unregistered however the session ends, an exception included: shutdown and the connection
  // cap post to every registered connection's stream.
  struct Registration {
    Impl& server;
    std::shared_ptr<Connection> conn;
    ~Registration() {
      {
        std::lock_guard lock(server.connections_mu);
        server.connections.erase(conn);
      }
      conn->stream = nullptr;  // a wake-up posted before the erase may still run
    }
  } registration{*this, conn};
  // For BeastResponder's immediate writes and the keep-alive read's first try, which would block
  // the I/O thread without it.
  beast::error_code nb_ec;
  stream.socket().non_blocking(true, nb_ec);
  if (nb_ec) {
    LOG_WARN(kTarget, "closing a connection whose socket cannot be made non-blocking: {}", nb_ec.message());
    co_return;
  }
  RequestDeadline deadline(stream.socket());
  beast::flat_buffer buffer;
  bool linger = false;  // refused with request bytes possibly unread
  for (;;) {
    if (stopping.load()) break;
    conn->idle = true;
    conn->idle_since = std::chrono::steady_clock::now();
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(options.max_body_bytes);
    parser.header_limit(64 * 1024);
    beast::error_code ec;
    if (buffer.size() == 0) {
      // The keep-alive wait for a request's first byte: at its end the connection closes quietly.
      constexpr std::size_t kReadSize = 16 * 1024;
      // Once a read drained the socket, Asio waits for the next readiness edge; a FIN that came
      // with the last request makes none. So try once without waiting, or a client that sent its
      // request and half-closed would sit in CLOSE_WAIT until the idle timeout.
      std::size_t n = stream.socket().read_some(buffer.prepare(kReadSize), ec);
      if (ec == asio::error::would_block) {
        stream.expires_after(options.idle_timeout);
        std::tie(ec, n) = co_await stream.async_read_some(buffer.prepare(kReadSize), kAwait);
        stream.expires_never();
      }
      buffer.commit(n);
    }
    if (ec) break;
    // From its first byte the request, head and body, has the header timeout (slowloris).
    deadline.arm(options.header_timeout);
    std::tie(ec, std::ignore) = co_await bhttp::async_read_header(stream, buffer, parser, kAwait);
    // Until the head is in, shutdown and the connection cap may close the connection.
    conn->idle = false;
    std::optional<Error> error = ec ? std::nullopt : framing_error(parser.get());
    if (!ec && !error && parser.get()[bhttp::field::expect] == "100-continue") {
      // curl and others wait for this before sending a body; refuse early if it is too large.
      auto length = parser.content_length();
      if (!length || *length <= options.max_body_bytes) {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, parser.get().version()};
        co_await bhttp::async_write(stream, cont, kAwait);
      }
    }
    if (!ec && !error) std::tie(ec, std::ignore) = co_await bhttp::async_read(stream, buffer, parser, kAwait);
    deadline.disarm();
    if (ec && deadline.expired()) {
      error = Error(ErrorCode::kRequestTimeout, "the request did not arrive within ISARTOR__HEADER_TIMEOUT_SECS (" +
                                                    std::to_string(options.header_timeout.count()) + " s)");
    } else if (ec) {
      error = read_error(ec);
      if (!error) break;  // the client went away
    }
    if (error) {
      // The request line is parsed before the body limit is checked, so the target is known
      // even when the header stage failed; the route's error format depends on it.
      std::string_view target = parser.get().target();
      if (target.empty()) target = "/";
      Response r = render_error(target.substr(0, target.find('?')), *error);
      BeastResponder responder(stream, options.write_timeout, 11, false);
      co_await responder.send(std::move(r));
      LOG_DEBUG(kTarget, "rejected request: {}", error->message);
      linger = true;
      break;
    }
    auto& req = parser.get();
    bool keep_alive = req.keep_alive() && !stopping.load();
    Request request = to_request(req);
    BeastResponder responder(stream, options.write_timeout, req.version(), keep_alive,
                             req.method() == bhttp::verb::head);
    in_flight.fetch_add(1);
    bool threw = false;
    bool client_gone = false;
    try {
      conn->handling = true;
      watch_for_close(stream.socket(), conn);
      co_await handler(request, responder);
    } catch (const boost::system::system_error& e) {
      // Cancellation surfaces as operation_aborted inside the handler: the client went away.
      client_gone = e.code() == asio::error::operation_aborted;
      threw = !client_gone;
      if (threw) LOG_ERROR(kTarget, "handler failed for {} {}: {}", request.method, request.path, e.what());
    } catch (const std::exception& e) {
      // Handlers return errors as values; this is the last line of defence for a bug.
      LOG_ERROR(kTarget, "handler threw for {} {}: {}", request.method, request.path, e.what());
      threw = true;
    }
    conn->handling = false;
    end_watch(conn);
    if (conn->cut) {
      // Cancelled at the end of the shutdown grace: say so in the route's format, then close.
      co_await asio::this_coro::reset_cancellation_state();
      const Error error(ErrorCode::kUnavailable, "the gateway is shutting down");
      if (responder.mid_stream()) {
        if (options.render_stream_error) co_await responder.write(options.render_stream_error(request.path, error));
        co_await responder.end_stream();
      } else if (!responder.answered()) {
        co_await responder.send(render_error(request.path, error));
      }
      in_flight.fetch_sub(1);
      break;
    }
    client_gone = client_gone || conn->client_gone;
    if (client_gone) {
      LOG_DEBUG(kTarget, "client closed the connection during {} {}; request cancelled", request.method, request.path);
      in_flight.fetch_sub(1);
      break;
    }
    if (threw) {
      if (!responder.answered()) {
        Response response = render_error(request.path, Error(ErrorCode::kInternal, "internal error"));
        co_await responder.send(std::move(response));
      }
      keep_alive = false;
    }
    in_flight.fetch_sub(1);
    if (!keep_alive || !responder.keep_alive() || responder.closed() || !responder.answered()) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  if (linger) {
    // Closing with unread bytes makes the kernel send a reset, which can destroy the error
    // response before the client read it: read and drop the rest first, 2 s at most (nginx's
    // lingering close).
    std::array<char, 4096> scratch;
    stream.expires_after(std::chrono::seconds(2));
    for (;;) {
      auto [read_ec, n] = co_await stream.async_read_some(asio::buffer(scratch), kAwait);
      if (read_ec) break;
    }
  }
}

bool Server::Impl::cut_requests() {
  const auto now = std::chrono::steady_clock::now();
  if (!cut_deadline) {
    LOG_WARN("isartor", "shutdown grace period over with {} request(s) in flight: ending them with an error",
             in_flight.load());
    cut_deadline = now + std::chrono::seconds(1);
    std::lock_guard lock(connections_mu);
    for (const auto& conn : connections) {
      asio::post(conn->executor, [conn] {
        if (!conn->handling) return;
        conn->cut = true;
        conn->cancel.emit(asio::cancellation_type::terminal);
      });
    }
  }
  return now < *cut_deadline;
}

void Server::Impl::close_idle_connections(std::chrono::steady_clock::duration idle_for) {
  const auto before = std::chrono::steady_clock::now() - idle_for;
  std::lock_guard lock(connections_mu);
  for (const auto& conn : connections) {
    asio::post(conn->executor, [conn, before] {
      if (conn->idle && conn->idle_since <= before && conn->stream != nullptr) conn->stream->cancel();
    });
  }
}

namespace {

// accept() failures that another try at once would only repeat (nginx pauses on the same).
bool out_of_resources(const beast::error_code& ec) {
  return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space || ec == asio::error::no_memory ||
         ec == beast::error_code(ENFILE, boost::system::system_category());
}

}  // namespace

asio::awaitable<void> Server::Impl::accept_loop() {
  constexpr auto kReportEvery = std::chrono::seconds(5);
  log::Throttle failures(kReportEvery);
  log::Throttle at_cap(kReportEvery);
  log::Throttle drains(std::chrono::seconds(1));
  asio::steady_timer pause(acceptor->get_executor());
  const auto wait = [&](std::chrono::milliseconds period) -> asio::awaitable<void> {
    pause.expires_after(period);
    co_await pause.async_wait(kAwait);
  };
  for (;;) {
    if (stopping.load()) co_return;
    if (options.max_connections != 0 && open_connections.load() >= options.max_connections) {
      if (auto held = at_cap.allow()) {
        LOG_WARN(kTarget, "{} connections open, the limit: new connections wait; closing idle keep-alive ones ({} more times since the last report)",
                 open_connections.load(), *held);
      }
      if (drains.allow()) close_idle_connections(std::chrono::seconds(1));
      co_await wait(std::chrono::milliseconds(10));
      continue;
    }
    auto& context = *contexts[next_context++ % contexts.size()];
    beast::error_code ec;
    tcp::socket socket(context);
    try {
      std::tie(ec, socket) = co_await acceptor->async_accept(context, kAwait);
    } catch (const boost::system::system_error& e) {
      ec = e.code();  // creating what the accepted socket needs can fail too (no descriptors)
    }
    if (ec) {
      if (stopping.load() || ec == asio::error::operation_aborted) co_return;
      const bool exhausted = out_of_resources(ec);
      if (auto held = failures.allow()) {
        LOG_WARN(kTarget, "accept failed: {}{} ({} more since the last report)", ec.message(),
                 exhausted ? "; pausing new connections 100 ms, closing idle keep-alive ones" : "", *held);
      }
      if (exhausted) {
        if (drains.allow()) close_idle_connections(std::chrono::seconds(1));
        co_await wait(std::chrono::milliseconds(100));
      }
      continue;
    }
    open_connections.fetch_add(1);
    socket.set_option(tcp::no_delay(true), ec);
    auto ex = socket.get_executor();
    auto conn = std::make_shared<Connection>();
    auto slot = conn->cancel.slot();
    // The completion handler holds the connection too: the signal behind the slot must outlive
    // the session's frame and its cancellation state.
    asio::co_spawn(ex, session(std::move(socket), conn),
                   asio::bind_cancellation_slot(slot, [this, conn](std::exception_ptr e) {
                     open_connections.fetch_sub(1);
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       LOG_ERROR(kTarget, "connection ended by an exception: {}", ex.what());
                     }
                   }));
  }
}

asio::awaitable<void> Server::Impl::shutdown_on_signal() {
  asio::signal_set signals(*contexts.front(), SIGINT, SIGTERM);
  auto [ec, sig] = co_await signals.async_wait(kAwait);
  if (ec) co_return;
  LOG_INFO("isartor", "received {}, shutting down: finishing {} in-flight request(s)",
           sig == SIGINT ? "SIGINT" : "SIGTERM", in_flight.load());
  stopping.store(true);
  beast::error_code ignored;
  acceptor->close(ignored);
  asio::steady_timer timer(*contexts.front());
  auto deadline = std::chrono::steady_clock::now() + options.shutdown_grace;
  for (;;) {
    // Connections waiting for a next request are woken so they see `stopping` and close.
    close_idle_connections(std::chrono::seconds(0));
    {
      std::lock_guard lock(connections_mu);
      if (connections.empty()) break;
    }
    if (std::chrono::steady_clock::now() >= deadline && !cut_requests()) break;
    timer.expires_after(std::chrono::milliseconds(50));
    co_await timer.async_wait(kAwait);
  }
  for (auto& context : contexts) context->stop();
}

Server::Server(ServerOptions options, Handler handler, ErrorRenderer render_error)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->render_error = std::move(render_error);
}

Server::~Server() = default;

uint16_t Server::port() const { return impl_->bound_port.load(); }

void Server::run() {
  auto& impl = *impl_;
  int threads = impl.options.threads > 0 ? impl.options.threads
                                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < threads; ++i) {
    impl.contexts.push_back(std::make_unique<asio::io_context>(1));
    impl.keep_running.push_back(asio::make_work_guard(*impl.contexts.back()));
    // A context's reactor (epoll, eventfd and timerfd descriptors) is made with its first socket:
    // now, not when the first connection arrives and descriptors may have run out.
    tcp::socket warm_up(*impl.contexts.back());
  }
  auto& first = *impl.contexts.front();
  impl.acceptor = std::make_unique<tcp::acceptor>(first);
  beast::error_code ec;
  auto address = asio::ip::make_address(impl.options.host, ec);
  if (ec) throw std::runtime_error("invalid listen address '" + impl.options.host + "'");
  tcp::endpoint endpoint(address, impl.options.port);
  impl.acceptor->open(endpoint.protocol());
  impl.acceptor->set_option(asio::socket_base::reuse_address(true));
  impl.acceptor->bind(endpoint, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + impl.options.host + ":" + std::to_string(impl.options.port) +
                             ": " + ec.message());
  }
  impl.acceptor->listen(asio::socket_base::max_listen_connections);
  impl.bound_port.store(impl.acceptor->local_endpoint().port());
  std::string shown = address.is_v6() ? "[" + impl.options.host + "]" : impl.options.host;
  LOG_INFO("isartor", "Listening on {}:{}", shown, impl.bound_port.load());

  asio::co_spawn(first, impl.accept_loop(), asio::detached);
  asio::co_spawn(first, impl.shutdown_on_signal(), asio::detached);

  std::vector<std::thread> pool;
  for (std::size_t i = 1; i < impl.contexts.size(); ++i) {
    pool.emplace_back([context = impl.contexts[i].get()] { context->run(); });
  }
  first.run();
  for (auto& t : pool) t.join();
}

}  // namespace isartor::http
