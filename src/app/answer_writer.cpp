#include "app/answer_writer.h"

#include <fmt/format.h>

#include "api/anthropic_inbound.h"
#include "api/completions.h"
#include "api/errors.h"
#include "api/native.h"
#include "api/openai.h"
#include "api/responses.h"
#include "api/sse.h"
#include "app/cache_control.h"
#include "core/log.h"

namespace isartor::app {
namespace asio = boost::asio;

namespace {

std::string body_for(const api::Json& completion, const pipeline::Answer& answer, const WriteOptions& options) {
  switch (options.format) {
    case api::WireFormat::kAnthropic:
      return api::dump_json(api::openai_response_to_anthropic(completion));
    case api::WireFormat::kNative:
      return api::dump_json(api::chat_to_native(completion, pipeline::to_string(answer.layer), options.model));
    case api::WireFormat::kCompletions:
      return api::dump_json(api::chat_to_text_completion(completion));
    case api::WireFormat::kResponses:
      return api::dump_json(api::chat_to_response(completion, options.echo));
    case api::WireFormat::kOpenAI:
      break;
  }
  return api::dump_json(completion);
}

// A usage-only chunk (empty choices) the gateway asked for on its own behalf.
bool is_unrequested_usage_chunk(const api::Json& chunk, const WriteOptions& options) {
  if (options.include_usage_chunk) return false;
  auto it = chunk.find("choices");
  return it != chunk.end() && it->is_array() && it->empty();
}

// Renders one chunk of an answer as SSE text in the route's format ("" when nothing is sent).
class EventRenderer {
 public:
  explicit EventRenderer(const WriteOptions& options) : options_(options) {
    if (options.format == api::WireFormat::kAnthropic) anthropic_.emplace(options.model);
    if (options.format == api::WireFormat::kResponses) responses_.emplace(options.echo, options.model);
  }

  void chunk(const api::Json& chunk, std::string& out) {
    if (anthropic_) {
      for (const auto& e : anthropic_->on_chunk(chunk)) out += api::format_sse(e);
    } else if (responses_) {
      for (const auto& e : responses_->on_chunk(chunk)) out += api::format_sse(e);
    } else if (is_unrequested_usage_chunk(chunk, options_)) {
      return;
    } else if (options_.format == api::WireFormat::kCompletions) {
      out += api::format_sse({"", api::dump_json(api::chat_chunk_to_text_completion(chunk))});
    } else {
      out += api::format_sse({"", chunk.dump()});
    }
  }

  void finish(std::string& out) {
    if (anthropic_) {
      for (const auto& e : anthropic_->finish()) out += api::format_sse(e);
    } else if (responses_) {
      for (const auto& e : responses_->finish()) out += api::format_sse(e);
    } else {
      out += "data: [DONE]\n\n";
    }
  }

  // The event(s) that end a stream which failed after it started.
  std::string error(const Error& error) {
    if (!responses_) return api::render_stream_error(options_.format, error);
    std::string out;
    for (const auto& e : responses_->fail(error)) out += api::format_sse(e);
    return out;
  }

 private:
  const WriteOptions& options_;
  std::optional<api::AnthropicStreamEncoder> anthropic_;
  std::optional<api::ResponsesStreamEncoder> responses_;
};

// `native`: a pass-through stream, whose own events go out instead of rendered chunks.
asio::awaitable<bool> stream_answer(providers::ChunkStream& source, bool native, const WriteOptions& options,
                                    http::Responder& responder) {
  EventRenderer render(options);
  std::string out;
  for (;;) {
    auto chunk = co_await source.next();
    if (native && chunk) {
      // Events that made no chunk of their own (ping) go out with the next one.
      out = source.take_native();
      if (!out.empty() && !co_await responder.write(out)) co_return false;
      if (!*chunk) co_return co_await responder.end_stream();
      continue;
    }
    if (!chunk) {
      LOG_WARN("isartor::stream", "stream failed after it started: {}", chunk.error().message);
      Error error = chunk.error();
      error.message = api::redact(error.message, options.secrets);
      std::string event = render.error(error);
      co_await responder.write(event);
      co_await responder.end_stream();
      co_return false;
    }
    out.clear();
    if (!*chunk) {
      render.finish(out);
      if (!co_await responder.write(out)) co_return false;
      co_return co_await responder.end_stream();
    }
    render.chunk(**chunk, out);
    if (!co_await responder.write(out)) co_return false;
  }
}

// A whole completion asked for as a stream (a cache hit) as the SSE text of its replay. It is all
// known up front, so it goes out as one response with a length: one write instead of one per event.
std::string replay_events(const api::Json& completion, const WriteOptions& options) {
  EventRenderer render(options);
  std::string out;
  for (const api::Json& chunk : api::completion_to_chunks(completion)) render.chunk(chunk, out);
  render.finish(out);
  return out;
}

}  // namespace

http::Headers layer_headers(const pipeline::Answer& answer, const WriteOptions& options) {
  http::Headers headers{{"X-Isartor-Layer", std::string(pipeline::to_string(answer.layer))},
                        {"X-Isartor-Deflected", answer.deflected() ? "true" : "false"},
                        {"X-Isartor-Cache", std::string(cache_outcome(options.cache_looked_up, answer.layer))}};
  if (!answer.provider.empty()) headers.emplace_back("X-Isartor-Provider", answer.provider);
  if (answer.similarity) headers.emplace_back("X-Isartor-Similarity", fmt::format("{:.4f}", *answer.similarity));
  return headers;
}

asio::awaitable<bool> write_answer(pipeline::Answer answer, const WriteOptions& options,
                                   http::Responder& responder) {
  http::Headers headers = layer_headers(answer, options);
  // The provider's own answer to a pass-through request goes out as it came.
  if (!options.stream && !answer.native_json.empty()) {
    http::Response response{200, "application/json", std::move(headers), std::move(answer.native_json)};
    co_return co_await responder.send(std::move(response));
  }
  // A cache hit in the route's own format goes out as the stored text, parsed by nobody.
  if (!options.stream && options.format == api::WireFormat::kOpenAI && !answer.completion_json.empty()) {
    http::Response response{200, "application/json", std::move(headers), std::move(answer.completion_json)};
    co_return co_await responder.send(std::move(response));
  }
  // A hit already rendered in this route's form (L1a keeps it): sent as it is.
  if (!answer.rendered.empty()) {
    http::Response response{200, options.stream ? "text/event-stream" : "application/json", std::move(headers),
                            std::move(answer.rendered)};
    co_return co_await responder.send(std::move(response));
  }
  if (!answer.stream && !answer.parse_completion()) {
    auto rendered = api::render_error(options.format, Error(ErrorCode::kInternal, "a cached answer is corrupt"));
    http::Response response{rendered.status, "application/json", {}, std::move(rendered.body)};
    co_return co_await responder.send(std::move(response));
  }
  if (!options.stream) {
    // Only a streaming request gets a live stream from the pipeline, so a completion is here.
    const api::Json completion = answer.completion ? std::move(*answer.completion) : api::Json::object();
    http::Response response{200, "application/json", std::move(headers), body_for(completion, answer, options)};
    if (answer.keep_rendered) answer.keep_rendered(response.body);
    co_return co_await responder.send(std::move(response));
  }
  if (!answer.stream) {
    http::Response response{200, "text/event-stream", std::move(headers), replay_events(*answer.completion, options)};
    if (answer.keep_rendered) answer.keep_rendered(response.body);
    co_return co_await responder.send(std::move(response));
  }
  if (!co_await responder.begin_stream(200, std::move(headers))) co_return false;
  co_return co_await stream_answer(*answer.stream, answer.native_stream, options, responder);
}

}  // namespace isartor::app
