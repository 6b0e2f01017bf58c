#pragma once
// Helpers shared by the layers that run a model: reading message text and awaiting a worker
// thread's callback from a coroutine.
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "api/wire_format.h"
#include "core/result.h"

namespace isartor::pipeline {

// Text of an OpenAI message content: a string, or the text parts of an array joined by '\n';
// std::nullopt for anything else (images, audio, malformed parts). Pure.
std::optional<std::string> message_text(const api::Json& content);

// Calls `start(done)`, where `start` hands `done` (a copyable void(Result<T>)) to a worker that
// calls it once on its own thread, and resumes the awaiting coroutine on its own executor with that
// result. Must be awaited from a coroutine with an executor.
template <class T, class Start>
boost::asio::awaitable<Result<T>> await_worker(Start start) {
  namespace asio = boost::asio;
  auto initiate = [start = std::move(start)](auto handler) mutable {
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    start([shared](Result<T> result) {
      auto executor = asio::get_associated_executor(*shared);
      asio::post(executor, [shared, result = std::move(result)]() mutable { (*shared)(std::move(result)); });
    });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result<T>)>(std::move(initiate),
                                                                                       asio::use_awaitable);
}

}  // namespace isartor::pipeline
