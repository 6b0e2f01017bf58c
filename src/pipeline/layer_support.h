#pragma once
// Helpers shared by the layers that run a model: reading message text, and awaiting a worker
// thread's callback or its stream of items from a coroutine.
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "api/wire_format.h"
#include "core/result.h"
#include "inference/embedder.h"

namespace isartor::pipeline {

// Text of an OpenAI message content: a string, or the text parts of an array joined by '\n';
// std::nullopt for anything else (images, audio, malformed parts). Pure.
std::optional<std::string> message_text(const api::Json& content);

// Calls `start(done)`, where `start` hands `done` (a copyable void(Result<T>)) to a worker that
// calls it once on its own thread, and resumes the awaiting coroutine on its own executor with that
// result. When `start` returns a canceller (an object with cancel(), e.g. inference::Cancellation),
// cancelling the awaiting coroutine (the client went away) calls it; the worker then still calls
// `done`, early. Must be awaited from a coroutine with an executor.
template <class T, class Start>
boost::asio::awaitable<Result<T>> await_worker(Start start) {
  namespace asio = boost::asio;
  auto initiate = [start = std::move(start)](auto handler) mutable {
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    auto slot = asio::get_associated_cancellation_slot(*shared);
    auto done = [shared, slot](Result<T> result) mutable {
      auto executor = asio::get_associated_executor(*shared);
      asio::post(executor, [shared, slot, result = std::move(result)]() mutable {
        // On the coroutine's executor, where cancellation is emitted: the canceller is not called
        // once the result is in.
        if (slot.is_connected()) slot.clear();
        (*shared)(std::move(result));
      });
    };
    if constexpr (std::is_void_v<decltype(start(done))>) {
      start(std::move(done));
    } else {
      auto canceller = start(std::move(done));
      if (slot.is_connected()) slot.assign([canceller](asio::cancellation_type) mutable { canceller.cancel(); });
    }
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result<T>)>(std::move(initiate),
                                                                                       asio::use_awaitable);
}

// `texts` embedded on the embedder's workers, awaited from a coroutine (which resumes on its own
// executor). Must be awaited from a coroutine with an executor.
boost::asio::awaitable<Result<std::vector<inference::Embedding>>> embed_on_worker(inference::Embedder& embedder,
                                                                                  std::vector<std::string> texts);

// Items a worker thread hands to one coroutine, in order: the worker push()es and then close()s
// from its thread; the coroutine awaits next(). Unbounded: the producer bounds what it sends
// (a generation's tokens). Thread-safe; one coroutine awaits at a time.
template <class T>
class WorkerChannel : public std::enable_shared_from_this<WorkerChannel<T>> {
 public:
  void push(T item) {
    std::function<void()> wake;
    {
      std::lock_guard lock(mutex_);
      items_.push_back(std::move(item));
      wake = std::exchange(wake_, nullptr);
    }
    if (wake) wake();
  }

  // No more items after those pushed.
  void close() {
    std::function<void()> wake;
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      wake = std::exchange(wake_, nullptr);
    }
    if (wake) wake();
  }

  // The next item; std::nullopt once closed and drained. Cancelling the awaiting coroutine wakes
  // it (Asio then ends the coroutine with operation_aborted at its next wait).
  boost::asio::awaitable<std::optional<T>> next() {
    namespace asio = boost::asio;
    // The initiation captures a plain pointer (the awaiting caller holds the channel): g++ 12 may
    // destroy a temporary in a co_await expression twice, which must cost nothing.
    while (!ready()) {
      co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
          [this](auto handler) { wait(std::move(handler)); }, asio::use_awaitable);
    }
    co_return take();
  }

 private:
  bool ready() {
    std::lock_guard lock(mutex_);
    return !items_.empty() || closed_;
  }

  std::optional<T> take() {
    std::lock_guard lock(mutex_);
    if (items_.empty()) return std::nullopt;
    std::optional<T> item(std::move(items_.front()));
    items_.pop_front();
    return item;
  }

  template <class Handler>
  void wait(Handler handler) {
    namespace asio = boost::asio;
    auto shared = std::make_shared<Handler>(std::move(handler));
    auto slot = asio::get_associated_cancellation_slot(*shared);
    auto resume = [shared, slot]() mutable {
      asio::post(asio::get_associated_executor(*shared), [shared, slot]() mutable {
        if (slot.is_connected()) slot.clear();
        (*shared)();
      });
    };
    {
      std::lock_guard lock(mutex_);
      if (items_.empty() && !closed_) {
        wake_ = resume;
        if (slot.is_connected()) {
          slot.assign([self = this->shared_from_this()](asio::cancellation_type) {
            std::function<void()> wake;
            {
              std::lock_guard lock(self->mutex_);
              wake = std::exchange(self->wake_, nullptr);
            }
            if (wake) wake();
          });
        }
        return;
      }
    }
    resume();
  }

  std::mutex mutex_;
  std::deque<T> items_;
  bool closed_ = false;
  std::function<void()> wake_;  // resumes the waiting coroutine; empty when none waits
};

}  // namespace isartor::pipeline
