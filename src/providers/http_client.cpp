#include "providers/http_client.h"

#include <curl/curl.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "core/log.h"
#include "core/strings.h"

namespace isartor::providers {
namespace asio = boost::asio;

namespace {

constexpr const char* kTarget = "isartor::providers::http";
// Above this many buffered bytes the transfer pauses until the reader catches up to below half.
constexpr std::size_t kMaxBufferedBytes = 1 << 20;

struct Event {
  enum class Kind { kStatus, kData, kDone } kind;
  long status = 0;
  std::string data;
  CURLcode code = CURLE_OK;
  HttpHeaders headers;  // with kStatus
};

Error curl_error(CURLcode code, const std::string& detail, const std::string& url) {
  std::string what = detail.empty() ? curl_easy_strerror(code) : detail;
  if (code == CURLE_OPERATION_TIMEDOUT) {
    return Error(ErrorCode::kUpstreamTimeout, "upstream provider timed out: " + what);
  }
  if (code == CURLE_FILESIZE_EXCEEDED) return Error(ErrorCode::kUpstream, "upstream provider at " + url + ": " + what);
  // The URL has no credentials (keys travel in headers), so it is safe to show.
  return Error(ErrorCode::kUpstream, "could not reach upstream provider at " + url + ": " + what);
}

}  // namespace

// State shared by the curl thread (producer) and the caller's coroutine (consumer).
struct Transfer {
  Transfer(HttpRequest req, asio::any_io_executor ex, HttpClient::Impl* owner)
      : request(std::move(req)), executor(std::move(ex)), client(owner) {}
  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);
    if (header_list) curl_slist_free_all(header_list);
  }

  HttpRequest request;
  asio::any_io_executor executor;
  HttpClient::Impl* client;
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  char error_buffer[CURL_ERROR_SIZE] = {};
  bool status_sent = false;  // curl thread only
  HttpHeaders response_headers;  // of the response being received; curl thread only
  std::size_t received = 0;  // decoded body bytes taken so far; curl thread only
  bool curl_paused = false;  // on_write asked curl to pause and resume() has not run; curl thread only
  bool connected = false;    // out of libcurl's queue, a connection made; curl thread only
  bool too_large = false;    // the body passed max_response_bytes; curl thread only
  // Streams: when bytes last arrived (or the transfer started or resumed). Curl thread only.
  std::chrono::steady_clock::time_point last_data = std::chrono::steady_clock::now();

  // Released by the caller (HttpCall::release): aborted at this time unless it ended. Curl thread only.
  std::optional<std::chrono::steady_clock::time_point> release_deadline;

  std::mutex mu;  // guards the fields below
  std::deque<Event> events;
  std::size_t buffered_bytes = 0;
  bool paused = false;
  bool released = false;  // nobody reads any more: events are dropped, nothing is posted
  // The consumer's wake-up timer, owned by its CurlCall (whose io_context may be gone when the
  // curl thread lets go of the transfer); null once the call is destroyed.
  asio::steady_timer* signal = nullptr;

  // Curl thread: queues an event unless it is data over the buffer limit (then returns false).
  bool push(Event event, bool may_refuse) {
    {
      std::lock_guard lock(mu);
      if (released) return true;
      if (may_refuse && buffered_bytes >= kMaxBufferedBytes) {
        paused = true;
        return false;
      }
      buffered_bytes += event.data.size();
      events.push_back(std::move(event));
    }
    asio::post(executor, [keep = self_ref.lock()] {
      if (!keep) return;
      std::lock_guard lock(keep->mu);
      if (keep->signal != nullptr) keep->signal->cancel();
    });
    return true;
  }
  // Curl thread: the status and header fields, once the headers are complete.
  void push_status() {
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    push(Event{Event::Kind::kStatus, status, {}, CURLE_OK, std::move(response_headers)}, false);
    status_sent = true;
  }
  std::weak_ptr<Transfer> self_ref;
};

struct HttpClient::Impl {
  CURLM* multi = nullptr;
  std::size_t max_response_bytes = 0;  // 0 = no cap; set before the thread starts
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::mutex commands_mu;
  std::vector<std::function<void()>> commands;
  std::unordered_map<CURL*, std::shared_ptr<Transfer>> active;  // curl thread only

  void post_command(std::function<void()> fn) {
    {
      std::lock_guard lock(commands_mu);
      commands.push_back(std::move(fn));
    }
    curl_multi_wakeup(multi);
  }

  // Ends streams silent for longer than their idle timeout and released transfers past their
  // grace; returns how long until the next could be due (at most a second). Our own clock for
  // silence: curl's low-speed check averages over a window and fired at 1.6-2.4 times the
  // configured value. Paused streams are silent because the client reads slowly, not the
  // upstream, and are not timed. Curl thread only.
  std::chrono::milliseconds expire_transfers() {
    const auto now = std::chrono::steady_clock::now();
    auto next = std::chrono::milliseconds(1000);
    std::vector<CURL*> silent;
    std::vector<std::shared_ptr<Transfer>> overdue;
    for (const auto& [easy, t] : active) {
      if (t->release_deadline) {
        if (*t->release_deadline <= now) overdue.push_back(t);
        else next = std::min(next, std::chrono::ceil<std::chrono::milliseconds>(*t->release_deadline - now));
        continue;
      }
      if (!t->request.streaming || t->curl_paused || !t->connected) continue;
      const auto deadline = t->last_data + t->request.idle_timeout;
      if (deadline <= now) {
        silent.push_back(easy);
      } else {
        next = std::min(next, std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
      }
    }
    for (CURL* easy : silent) {
      auto& t = *active.at(easy);
      std::snprintf(t.error_buffer, sizeof(t.error_buffer), "no data for %lld ms",
                    static_cast<long long>(t.request.idle_timeout.count()));
      finish(easy, CURLE_OPERATION_TIMEDOUT);
    }
    for (const auto& t : overdue) remove(t);
    return next;
  }

  void run() {
    while (!stopping.load()) {
      std::vector<std::function<void()>> todo;
      {
        std::lock_guard lock(commands_mu);
        todo.swap(commands);
      }
      for (auto& fn : todo) fn();
      int running = 0;
      curl_multi_perform(multi, &running);
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
        if (msg->msg == CURLMSG_DONE) finish(msg->easy_handle, msg->data.result);
      }
      const auto wait = expire_transfers();
      curl_multi_poll(multi, nullptr, 0, static_cast<int>(wait.count()), nullptr);
    }
    for (auto& [easy, transfer] : active) {
      curl_multi_remove_handle(multi, easy);
      transfer->push(Event{Event::Kind::kDone, 0, {}, CURLE_ABORTED_BY_CALLBACK, {}}, false);
    }
    active.clear();
  }

  void finish(CURL* easy, CURLcode code) {
    auto it = active.find(easy);
    if (it == active.end()) return;
    auto transfer = it->second;
    active.erase(it);
    curl_multi_remove_handle(multi, easy);
    if (code == CURLE_OK && !transfer->status_sent) transfer->push_status();
    if (transfer->too_large) {
      code = CURLE_FILESIZE_EXCEEDED;
      std::snprintf(transfer->error_buffer, sizeof(transfer->error_buffer),
                    "the answer is larger than ISARTOR__MAX_RESPONSE_BYTES (%zu bytes)", max_response_bytes);
    }
    Event done{Event::Kind::kDone, 0, {}, code, {}};
    if (code != CURLE_OK) done.data = transfer->error_buffer;
    transfer->push(std::move(done), false);
  }

  // A connection is made and the request about to go: a stream's silence is timed from here, not
  // while it waited in libcurl's queue for a connection (ISARTOR__MAX_UPSTREAM_CONNECTIONS).
  static int on_connected(void* user, char*, char*, int, int) {
    auto* t = static_cast<Transfer*>(user);
    t->connected = true;
    t->last_data = std::chrono::steady_clock::now();
    return CURL_PREREQFUNC_OK;
  }

  // One header line; a status line starts a new response (after a 100 Continue or a redirect).
  static size_t on_header(char* ptr, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const std::string_view line(ptr, size * count);
    if (line.starts_with("HTTP/")) {
      t->response_headers.clear();
    } else if (const auto colon = line.find(':'); colon != std::string_view::npos) {
      t->response_headers.emplace_back(core::to_lower(core::trim(line.substr(0, colon))),
                                       std::string(core::trim(line.substr(colon + 1))));
    }
    return size * count;
  }

  static size_t on_write(char* ptr, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    t->last_data = std::chrono::steady_clock::now();
    const std::size_t n = size * count;
    if (!t->request.streaming && t->client->max_response_bytes != 0 && t->received + n > t->client->max_response_bytes) {
      t->too_large = true;
      return 0;  // curl ends the transfer (CURLE_WRITE_ERROR); finish() reports why
    }
    if (!t->status_sent) t->push_status();
    if (!t->push(Event{Event::Kind::kData, 0, std::string(ptr, n), CURLE_OK, {}}, true)) {
      t->curl_paused = true;  // curl hands the same bytes again after the resume
      return CURL_WRITEFUNC_PAUSE;
    }
    t->received += n;
    return n;
  }

  void add(const std::shared_ptr<Transfer>& t) {
    CURL* easy = curl_easy_init();
    t->easy = easy;
    const HttpRequest& r = t->request;
    for (const auto& h : r.headers) t->header_list = curl_slist_append(t->header_list, h.c_str());
    // Without this curl sends "Expect: 100-continue" for large bodies and waits a second.
    t->header_list = curl_slist_append(t->header_list, "Expect:");
    curl_easy_setopt(easy, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->header_list);
    if (r.method == "POST") {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, r.body.data());
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    }
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Impl::on_write);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Impl::on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, &Impl::on_connected);
    curl_easy_setopt(easy, CURLOPT_PREREQDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error_buffer);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");  // gzip/br when the upstream offers it
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    // A stream may legitimately last long; what must not happen is silence (expire_silent_streams).
    if (!r.streaming) curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(r.total_timeout.count()));
    t->last_data = std::chrono::steady_clock::now();
    active.emplace(easy, t);
    curl_multi_add_handle(multi, easy);
  }

  void remove(const std::shared_ptr<Transfer>& t) {
    auto it = active.find(t->easy);
    if (it == active.end()) return;
    curl_multi_remove_handle(multi, t->easy);
    active.erase(it);
  }

  void release(const std::shared_ptr<Transfer>& t, std::chrono::milliseconds grace) {
    if (!active.count(t->easy)) return;
    t->release_deadline = std::chrono::steady_clock::now() + grace;
    bool was_paused = false;
    {
      std::lock_guard lock(t->mu);
      t->released = true;
      was_paused = std::exchange(t->paused, false);
    }
    if (was_paused) {
      t->curl_paused = false;
      curl_easy_pause(t->easy, CURLPAUSE_CONT);
    }
  }

  void resume(const std::shared_ptr<Transfer>& t) {
    if (!active.count(t->easy)) return;
    t->last_data = std::chrono::steady_clock::now();
    t->curl_paused = false;
    curl_easy_pause(t->easy, CURLPAUSE_CONT);
  }
};

namespace {

class CurlCall final : public HttpCall {
 public:
  explicit CurlCall(std::shared_ptr<Transfer> t) : t_(std::move(t)), signal_(t_->executor) {
    std::lock_guard lock(t_->mu);
    t_->signal = &signal_;
  }
  ~CurlCall() override {
    cancel();
    std::lock_guard lock(t_->mu);
    t_->signal = nullptr;
    t_->released = true;
  }

  asio::awaitable<Result<long>> status() override {
    for (;;) {
      Event e = co_await next();
      if (e.kind == Event::Kind::kStatus) {
        headers_ = std::move(e.headers);
        co_return e.status;
      }
      if (e.kind == Event::Kind::kDone) {
        done_ = true;
        co_return std::unexpected(curl_error(e.code, e.data, t_->request.url));
      }
    }
  }

  asio::awaitable<Result<std::optional<std::string>>> read() override {
    if (done_) co_return std::optional<std::string>{};
    for (;;) {
      Event e = co_await next();
      if (e.kind == Event::Kind::kData) co_return std::optional<std::string>(std::move(e.data));
      if (e.kind == Event::Kind::kDone) {
        done_ = true;
        if (e.code != CURLE_OK) co_return std::unexpected(curl_error(e.code, e.data, t_->request.url));
        co_return std::optional<std::string>{};
      }
    }
  }

  const HttpHeaders& headers() const override { return headers_; }

  void cancel() override {
    if (cancelled_) return;
    cancelled_ = true;
    if (!done_) t_->client->post_command([t = t_, client = t_->client] { client->remove(t); });
  }

  void release(std::chrono::milliseconds grace) override {
    if (cancelled_) return;
    cancelled_ = true;
    if (!done_) t_->client->post_command([t = t_, client = t_->client, grace] { client->release(t, grace); });
  }

 private:
  asio::awaitable<Event> next() {
    for (;;) {
      bool resume = false;
      {
        std::lock_guard lock(t_->mu);
        if (!t_->events.empty()) {
          Event e = std::move(t_->events.front());
          t_->events.pop_front();
          t_->buffered_bytes -= e.data.size();
          if (t_->paused && t_->buffered_bytes < kMaxBufferedBytes / 2) {
            t_->paused = false;
            resume = true;
          }
          if (resume) t_->client->post_command([t = t_, c = t_->client] { c->resume(t); });
          co_return e;
        }
      }
      signal_.expires_at(asio::steady_timer::time_point::max());
      co_await signal_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  std::shared_ptr<Transfer> t_;
  HttpHeaders headers_;
  asio::steady_timer signal_;  // woken by the curl thread's posts (Transfer::push)
  bool done_ = false;
  bool cancelled_ = false;
};

}  // namespace

asio::awaitable<Result<std::string>> HttpCall::read_all() {
  std::string body;
  for (;;) {
    CO_ASSIGN_OR_RETURN(auto part, co_await read());
    if (!part) co_return body;
    body += *part;
  }
}

HttpClient::HttpClient(HttpClientLimits limits) : impl_(std::make_unique<Impl>()) {
  impl_->max_response_bytes = limits.max_response_bytes;
  static std::once_flag curl_global;
  std::call_once(curl_global, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->multi = curl_multi_init();
  curl_multi_setopt(impl_->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  if (limits.max_connections > 0) {
    curl_multi_setopt(impl_->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, limits.max_connections);
  }
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

HttpClient::~HttpClient() {
  impl_->stopping.store(true);
  curl_multi_wakeup(impl_->multi);
  impl_->thread.join();
  curl_multi_cleanup(impl_->multi);
}

std::unique_ptr<HttpCall> HttpClient::start(HttpRequest request, asio::any_io_executor executor) {
  LOG_DEBUG(kTarget, "upstream {} {}", request.method, request.url);
  auto t = std::make_shared<Transfer>(std::move(request), std::move(executor), impl_.get());
  t->self_ref = t;
  impl_->post_command([t, impl = impl_.get()] { impl->add(t); });
  return std::make_unique<CurlCall>(t);
}

}  // namespace isartor::providers
