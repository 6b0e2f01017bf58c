#pragma once
// Runs an Asio coroutine to completion on a private io_context, for tests of async code.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace isartor::testing {

template <class T>
T run_coroutine(boost::asio::awaitable<T> work) {
  boost::asio::io_context ioc;
  auto future = boost::asio::co_spawn(ioc, std::move(work), boost::asio::use_future);
  ioc.run();
  return future.get();
}

}  // namespace isartor::testing
