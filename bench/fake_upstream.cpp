// A fast OpenAI-compatible fake upstream for load tests. The Python fake (tests/fakes/) is the
// protocol reference but tops out near a thousand requests/s; this one runs on the project's own
// HTTP server so the gateway, not the upstream, is what a benchmark measures.
//
//   fake_upstream [--host 127.0.0.1] [--port 0] [--threads 1] [--latency-ms 0] [--chunks 8]
//
// Serves POST /v1/chat/completions (and /chat/completions): a fixed small answer as one JSON
// completion, or with "stream": true as SSE: a role chunk, --chunks content chunks, a finish
// chunk (and a usage chunk when stream_options.include_usage), then "data: [DONE]".
// --latency-ms delays every answer before its first byte. GET /v1/models and /health answer too;
// GET /stats counts the chat requests served, so a benchmark can check that cache hits never
// reached the upstream.
// Prints the bound port on stdout once listening, then serves until SIGINT/SIGTERM.
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/log.h"
#include "http/server.h"

namespace {

namespace asio = boost::asio;
using isartor::http::Request;
using isartor::http::Responder;
using isartor::http::Response;
using Json = nlohmann::json;

constexpr std::string_view kAnswer = "Paris is the capital of France, on the Seine.";

std::atomic<uint64_t> g_chat_requests{0};

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  int threads = 1;
  int latency_ms = 0;
  int chunks = 8;
};

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fake_upstream [--host H] [--port P] [--threads N] [--latency-ms MS] [--chunks N]\n"
               "  a fast OpenAI-compatible upstream for benchmarks (fixed answer, SSE with N chunks);\n"
               "  prints the bound port on stdout\n");
}

std::optional<int> parse_int(std::string_view text, int min, int max) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) return std::nullopt;
  return value;
}

// Returns the options, or nullopt after printing what was wrong.
std::optional<Options> parse_args(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "fake_upstream: %s needs a value (or is unknown)\n", argv[i]);
      return std::nullopt;
    }
    std::string_view value = argv[++i];
    std::optional<int> number;
    if (arg == "--host") {
      options.host = value;
      continue;
    }
    if (arg == "--port") {
      number = parse_int(value, 0, 65535);
      if (number) options.port = static_cast<uint16_t>(*number);
    } else if (arg == "--threads") {
      number = parse_int(value, 1, 256);
      if (number) options.threads = *number;
    } else if (arg == "--latency-ms") {
      number = parse_int(value, 0, 600000);
      if (number) options.latency_ms = *number;
    } else if (arg == "--chunks") {
      number = parse_int(value, 1, 100000);
      if (number) options.chunks = *number;
    } else {
      std::fprintf(stderr, "fake_upstream: unknown option %s\n", argv[i - 1]);
      usage(stderr);
      return std::nullopt;
    }
    if (!number) {
      std::fprintf(stderr, "fake_upstream: bad value '%s' for %s\n", argv[i], argv[i - 1]);
      return std::nullopt;
    }
  }
  return options;
}

Response json_response(int status, const Json& body) {
  Response r;
  r.status = status;
  r.body = body.dump();
  return r;
}

Response error_response(int status, std::string_view message) {
  return json_response(status, Json{{"error", {{"message", message}, {"type", "invalid_request_error"},
                                               {"param", nullptr}, {"code", nullptr}}}});
}

Json usage_json() { return Json{{"prompt_tokens", 12}, {"completion_tokens", 10}, {"total_tokens", 22}}; }

Json completion(const std::string& model) {
  return Json{{"id", "chatcmpl-fakeupstream"},
              {"object", "chat.completion"},
              {"created", 1764000000},
              {"model", model},
              {"choices", Json::array({Json{{"index", 0},
                                            {"message", {{"role", "assistant"}, {"content", kAnswer}}},
                                            {"logprobs", nullptr},
                                            {"finish_reason", "stop"}}})},
              {"usage", usage_json()}};
}

std::string sse_event(const Json& payload) { return "data: " + payload.dump() + "\n\n"; }

// Cuts the answer into `n` non-empty pieces (fewer if the answer is shorter than n characters).
std::vector<std::string_view> split_answer(int n) {
  std::vector<std::string_view> pieces;
  size_t step = std::max<size_t>(1, (kAnswer.size() + n - 1) / n);
  for (size_t at = 0; at < kAnswer.size(); at += step) pieces.push_back(kAnswer.substr(at, step));
  return pieces;
}

// The whole SSE body; content chunks beyond the answer's length repeat its last character so
// that --chunks is honoured exactly.
std::vector<std::string> stream_events(const std::string& model, int chunks, bool include_usage) {
  Json base{{"id", "chatcmpl-fakeupstream"}, {"object", "chat.completion.chunk"}, {"created", 1764000000},
            {"model", model}};
  auto chunk = [&](Json delta, Json finish) {
    Json payload = base;
    payload["choices"] =
        Json::array({Json{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr}, {"finish_reason", finish}}});
    if (include_usage) payload["usage"] = nullptr;
    return sse_event(payload);
  };
  std::vector<std::string> events;
  events.push_back(chunk(Json{{"role", "assistant"}, {"content", ""}}, nullptr));
  auto pieces = split_answer(chunks);
  for (int i = 0; i < chunks; ++i) {
    std::string_view piece = i < static_cast<int>(pieces.size()) ? pieces[i] : kAnswer.substr(kAnswer.size() - 1);
    events.push_back(chunk(Json{{"content", piece}}, nullptr));
  }
  events.push_back(chunk(Json::object(), "stop"));
  if (include_usage) {
    Json last = base;
    last["choices"] = Json::array();
    last["usage"] = usage_json();
    events.push_back(sse_event(last));
  }
  events.push_back("data: [DONE]\n\n");
  return events;
}

// What a chat request asks for. Parsing lives outside the coroutines: g++ 12 rejects string
// literals and braced JSON initialisers inside co_await expressions ("array used as initializer").
struct ChatPlan {
  std::string model;
  bool stream = false;
  bool include_usage = false;
};

std::expected<ChatPlan, Response> plan_chat(const Request& request) {
  Json body = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("messages") || !body["messages"].is_array()) {
    return std::unexpected(error_response(400, "body must be a JSON object with a messages array"));
  }
  ChatPlan plan;
  plan.model = body.contains("model") && body["model"].is_string() ? body["model"].get<std::string>() : "gpt-4o-mini";
  plan.stream = body.contains("stream") && body["stream"].is_boolean() && body["stream"].get<bool>();
  if (auto it = body.find("stream_options"); it != body.end() && it->is_object()) {
    auto flag = it->find("include_usage");
    plan.include_usage = flag != it->end() && flag->is_boolean() && flag->get<bool>();
  }
  return plan;
}

bool is_chat_route(const Request& request) {
  return request.path == "/v1/chat/completions" || request.path == "/chat/completions";
}

// The answer to every request except a chat POST.
Response simple_route(const Request& request) {
  if (is_chat_route(request)) return error_response(405, "use POST");
  if (request.path == "/v1/models" || request.path == "/models") {
    return json_response(
        200, Json{{"object", "list"}, {"data", Json::array({Json{{"id", "gpt-4o-mini"}, {"object", "model"}}})}});
  }
  if (request.path == "/stats") return json_response(200, Json{{"chat_requests", g_chat_requests.load()}});
  if (request.path == "/health" || request.path == "/healthz") return json_response(200, Json{{"status", "ok"}});
  return error_response(404, "no such route");
}

asio::awaitable<void> handle(const Request& request, Responder& responder, const Options& options) {
  if (!is_chat_route(request) || request.method != "POST") {
    co_await responder.send(simple_route(request));
    co_return;
  }
  g_chat_requests.fetch_add(1, std::memory_order_relaxed);
  auto plan = plan_chat(request);
  if (!plan) {
    co_await responder.send(std::move(plan.error()));
    co_return;
  }
  if (options.latency_ms > 0) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(std::chrono::milliseconds(options.latency_ms));
    co_await timer.async_wait(asio::use_awaitable);
  }
  if (!plan->stream) {
    co_await responder.send(json_response(200, completion(plan->model)));
    co_return;
  }
  const auto events = stream_events(plan->model, options.chunks, plan->include_usage);
  if (!co_await responder.begin_stream(200, isartor::http::Headers{})) co_return;
  for (const auto& event : events) {
    if (!co_await responder.write(event)) co_return;
  }
  co_await responder.end_stream();
}

}  // namespace

int main(int argc, char** argv) {
  auto options = parse_args(argc, argv);
  if (!options) return 2;
  isartor::log::init("warn");

  isartor::http::ServerOptions server_options;
  server_options.host = options->host;
  server_options.port = options->port;
  server_options.threads = options->threads;
  server_options.shutdown_grace = std::chrono::seconds(1);
  isartor::http::Server server(
      server_options,
      [&options](const Request& request, Responder& responder) { return handle(request, responder, *options); },
      [](std::string_view, const isartor::Error& error) { return error_response(400, error.message); });

  // run() blocks while serving, so a watcher announces the port once it is bound.
  std::atomic<bool> done{false};
  std::thread announcer([&] {
    while (!done.load() && server.port() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (server.port() != 0) {
      std::printf("%u\n", static_cast<unsigned>(server.port()));
      std::fflush(stdout);
    }
  });
  int rc = 0;
  try {
    server.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fake_upstream: %s\n", e.what());
    rc = 1;
  }
  done.store(true);
  announcer.join();
  return rc;
}
