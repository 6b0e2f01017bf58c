#pragma once
// Writes a pipeline Answer to the client in the wire format of the route: a whole body, or SSE
// (OpenAI data chunks ending in [DONE]; the Anthropic event sequence). A whole completion asked
// for as a stream (a cache hit) is replayed as the same events in one text/event-stream body with
// a Content-Length; a live stream is forwarded chunk by chunk (chunked encoding).
#include <boost/asio/awaitable.hpp>

#include "http/server.h"
#include "pipeline/layer.h"

namespace isartor::app {

struct WriteOptions {
  api::WireFormat format = api::WireFormat::kOpenAI;
  bool stream = false;
  bool include_usage_chunk = false;  // OpenAI: the client asked for stream_options.include_usage
  std::string model;                 // as the client named it
  std::vector<std::string> secrets;  // redacted from any error text
  bool cache_looked_up = true;       // false: the request bypassed the cache lookup
  api::Json echo;                    // Responses: the request fields a response repeats
};

// Headers every chat answer carries: X-Isartor-Layer, X-Isartor-Deflected, X-Isartor-Cache,
// X-Isartor-Similarity.
http::Headers layer_headers(const pipeline::Answer& answer, const WriteOptions& options);

// Returns false when the client went away (the stream, and its upstream call, are dropped).
boost::asio::awaitable<bool> write_answer(pipeline::Answer answer, const WriteOptions& options,
                                          http::Responder& responder);

}  // namespace isartor::app
