#pragma once
// A Responder that passes every call on to the client's and notes what went out, for metrics:
// the status, the body bytes, and (told by the chat route) the layer that answered.
#include <cstdint>
#include <optional>

#include "http/server.h"
#include "pipeline/layer.h"
#include "policy/clients.h"

namespace isartor::app {

// One per exchange, used by that exchange's coroutine only (not thread-safe).
class MeteredResponder final : public http::Responder {
 public:
  explicit MeteredResponder(http::Responder& inner) : inner_(inner) {}

  boost::asio::awaitable<bool> send(http::Response response) override {
    status_ = response.status;
    bytes_ += response.body.size();
    co_return co_await inner_.send(std::move(response));
  }
  boost::asio::awaitable<bool> begin_stream(int status, http::Headers headers) override {
    status_ = status;
    co_return co_await inner_.begin_stream(status, std::move(headers));
  }
  boost::asio::awaitable<bool> write(std::string_view data) override {
    bytes_ += data.size();
    co_return co_await inner_.write(data);
  }
  boost::asio::awaitable<bool> end_stream() override { co_return co_await inner_.end_stream(); }

  void set_layer(pipeline::LayerId layer) { layer_ = layer; }
  void set_client(const policy::Client* client) { client_ = client; }
  // The gateway key's client; null until identified (or for an unknown key).
  const policy::Client* client() const { return client_; }
  // 0 until a response or stream began.
  int status() const { return status_; }
  uint64_t bytes() const { return bytes_; }
  std::optional<pipeline::LayerId> layer() const { return layer_; }

 private:
  http::Responder& inner_;
  int status_ = 0;
  uint64_t bytes_ = 0;
  std::optional<pipeline::LayerId> layer_;
  const policy::Client* client_ = nullptr;
};

}  // namespace isartor::app
