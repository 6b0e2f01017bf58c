// The isartor command: a thin front over the gateway library.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "app/gateway.h"
#include "app/router_eval.h"
#include "app/stats_command.h"
#include "config/config.h"
#include "core/log.h"
#include "inference/model_manager.h"

namespace {

constexpr const char* kUsage = R"(isartor — prompt firewall between your applications and cloud LLM APIs

Usage: isartor [COMMAND] [--help]

Commands:
  up        Start the gateway (the default when no command is given)
  config    Print the effective configuration (secrets masked) and validate it
  stats     Print a running gateway's figures: deflection, tokens saved, latency per layer, caches
  models    Pre-download the models the configuration needs (pull), list cached ones (list), or
            evaluate the L2 model's routing on a labelled prompt set (eval)
  help      Show this help

Options:
  -h, --help     Show help for the command
  -V, --version  Print the version and the linked llama.cpp build

Configuration comes from built-in defaults < isartor.toml (or $ISARTOR_CONFIG) < ./.env <
environment variables named ISARTOR__* (nested keys with "__", e.g. ISARTOR__LAYER2__SIDECAR_URL).
Logs go to stderr, filtered by ISARTOR_LOG or RUST_LOG (e.g. "info", "isartor=debug").
)";

constexpr const char* kUpUsage = R"(isartor up — start the gateway

Usage: isartor up [--model-dir DIR]

Listens on ISARTOR__HOST_PORT (default 0.0.0.0:8080) and serves /v1/chat/completions,
/v1/messages, /v1/completions, /v1/embeddings, /api/chat, /v1/models, /metrics, /health and the
rest of the README's API table until SIGINT or SIGTERM; in-flight requests are finished first
(up to ISARTOR__SHUTDOWN_GRACE_SECS).

Options:
  --model-dir DIR  Take the models from DIR, never from the network (= ISARTOR__MODEL_DIR):
                   DIR/<ISARTOR__LAYER2__GGUF_FILENAME> for L2 and the embedding model's files
                   in DIR/<name>/ or DIR/ (as `huggingface-cli download ... --local-dir DIR`
                   leaves them), or a Hugging Face cache copied into DIR
)";

constexpr const char* kStatsUsage = R"(isartor stats — a running gateway's figures

Usage: isartor stats [--url URL] [--key KEY] [--json] [--watch [SECONDS]]

Reads URL/metrics and prints requests, errors, deflection, tokens saved, per layer what it
answered and its p50/p95 latency, per cache hits, misses, entries and bytes, and the upstream's
answers by status.

Options:
  --url URL          The gateway (default http://<ISARTOR__HOST_PORT>, 0.0.0.0 as 127.0.0.1)
  --key KEY          The gateway key (default ISARTOR__GATEWAY_API_KEY)
  --json             One JSON object instead of the table
  --watch [SECONDS]  Print again every SECONDS (default 2) until interrupted
)";

constexpr const char* kConfigUsage = R"(isartor config — print and validate the effective configuration

Usage: isartor config

Prints one ISARTOR__NAME=value line per setting with where it came from (default,
isartor.toml, .env, env); API keys are masked. Exits 1 with one line naming the variable
if a value is invalid.
)";

constexpr const char* kModelsUsage = R"(isartor models — manage model files

Usage: isartor models pull    Download every model the configuration needs into the HF cache
       isartor models list    List the model files in the HF cache
       isartor models eval --data FILE.jsonl [--model PATH.gguf] [--mode logits|grammar|both]
                           [--limit N] [--errors]
                              Measure how well the L2 model routes a labelled prompt set
                              (bench/data/l2_routing_eval.jsonl in the source tree): accuracy,
                              SIMPLE prompts it would answer, COMPLEX ones it would keep, latency

The cache is $ISARTOR__HF_CACHE_DIR, else $HF_HUB_CACHE, else $HF_HOME/hub, else
~/.cache/huggingface/hub (the layout huggingface_hub uses, so both share it). HF_ENDPOINT and
HF_TOKEN are honoured. Run `pull` on a connected machine and copy the cache folder to an
air-gapped one; there set HF_HUB_OFFLINE=1 (or ISARTOR__OFFLINE_MODE=true).
)";

bool wants_help(const std::vector<std::string_view>& args) {
  for (auto a : args) {
    if (a == "-h" || a == "--help") return true;
  }
  return false;
}

isartor::config::Config load_config() {
  auto config = isartor::config::load_from_process();
  for (const auto& key : config.unknown_keys) {
    LOG_WARN("isartor::config", "unknown configuration variable {} is ignored", key);
  }
  return config;
}

// `up` arguments (--model-dir DIR or --model-dir=DIR) applied to `config`; false after a message
// naming a bad one.
bool up_options(const std::vector<std::string_view>& args, isartor::config::Config& config) {
  constexpr std::string_view kJoined = "--model-dir=";
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--model-dir" && i + 1 < args.size()) {
      config.model_dir = std::string(args[++i]);
    } else if (arg.starts_with(kJoined) && arg.size() > kJoined.size()) {
      config.model_dir = std::string(arg.substr(kJoined.size()));
    } else {
      std::fprintf(stderr, "isartor up: bad argument '%.*s'\n\n%s", static_cast<int>(arg.size()), arg.data(),
                   kUpUsage);
      return false;
    }
    config.sources["ISARTOR__MODEL_DIR"] = "--model-dir";
  }
  return true;
}

// Reports one `models pull` result; false after logging its error.
bool pulled(const char* what, const isartor::Result<std::filesystem::path>& path) {
  if (!path) {
    LOG_ERROR("isartor::models", "{}: {}", what, path.error().message);
    return false;
  }
  std::printf("%s ready: %s\n", what, path->c_str());
  return true;
}

// `models eval` arguments; std::nullopt (after a message) when they are wrong.
std::optional<isartor::app::RouterEvalOptions> eval_options(const std::vector<std::string_view>& args,
                                                            isartor::config::Config& config) {
  using isartor::inference::ClassifyMode;
  isartor::app::RouterEvalOptions options;
  options.modes = {ClassifyMode::kLogits, ClassifyMode::kGrammar};
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    const bool has_value = i + 1 < args.size();
    if (flag == "--errors") {
      options.errors = true;
    } else if (flag == "--data" && has_value) {
      options.data = std::string(args[++i]);
    } else if (flag == "--model" && has_value) {
      config.layer2.model_path = std::string(args[++i]);
    } else if (flag == "--limit" && has_value) {
      options.limit = std::strtoul(std::string(args[++i]).c_str(), nullptr, 10);
    } else if (flag == "--mode" && has_value && (args[i + 1] == "logits" || args[i + 1] == "grammar")) {
      options.modes = {args[++i] == "logits" ? ClassifyMode::kLogits : ClassifyMode::kGrammar};
    } else if (flag == "--mode" && has_value && args[i + 1] == "both") {
      ++i;
    } else {
      std::fprintf(stderr, "isartor models eval: bad argument '%.*s'\n\n%s", static_cast<int>(flag.size()),
                   flag.data(), kModelsUsage);
      return std::nullopt;
    }
  }
  if (options.data.empty()) {
    std::fprintf(stderr, "isartor models eval: --data FILE.jsonl is required\n\n%s", kModelsUsage);
    return std::nullopt;
  }
  return options;
}

int models(const std::vector<std::string_view>& args) {
  std::string_view verb = args.empty() ? "" : args[0];
  if (wants_help(args) || (verb != "pull" && verb != "list" && verb != "eval")) {
    std::fputs(kModelsUsage, verb == "" || wants_help(args) ? stdout : stderr);
    return wants_help(args) ? 0 : 2;
  }
  auto config = load_config();
  if (verb == "eval") {
    auto options = eval_options(args, config);
    if (!options) return 2;
    auto report = isartor::app::run_router_eval(config, *options);
    if (!report) {
      LOG_ERROR("isartor::models", "{}", report.error().message);
      return 1;
    }
    std::fputs(report->c_str(), stdout);
    return 0;
  }
  auto hub = isartor::inference::hub_config_from_env(config);
  if (verb == "list") {
    auto files = isartor::inference::list_cached(hub);
    if (!files) {
      LOG_ERROR("isartor::models", "{}", files.error().message);
      return 1;
    }
    std::printf("cache: %s\n", hub.cache_dir.c_str());
    for (const auto& f : *files) {
      std::printf("%-45s %-10s %-28s %10.1f MB  %s\n", f.repo_id.c_str(), f.commit.substr(0, 10).c_str(),
                  f.filename.c_str(), static_cast<double>(f.size) / 1e6, f.path.c_str());
    }
    return 0;
  }
  const bool embedding = isartor::config::semantic_cache_enabled(config);
  const bool local = !isartor::inference::local_model_files(config).empty();
  if (embedding && !pulled("embedding model", isartor::inference::resolve_embedding_gguf(config, hub))) return 1;
  if (local && !pulled("local model", isartor::inference::resolve_local_model_gguf(config, hub))) return 1;
  if (!embedding && !local) std::printf("nothing to download: the configuration needs no model from the hub\n");
  return 0;
}

int stats(const std::vector<std::string_view>& args) {
  if (wants_help(args)) {
    std::fputs(kStatsUsage, stdout);
    return 0;
  }
  const auto config = load_config();
  // A wildcard listen address is reached on loopback; an IPv6 host goes in brackets.
  std::string host = config.host == "0.0.0.0" ? "127.0.0.1" : config.host == "::" ? "::1" : config.host;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  std::string url = "http://" + host + ":" + std::to_string(config.port);
  std::string key = config.gateway_api_key;
  bool json = false;
  int watch = 0;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const bool has_value = i + 1 < args.size() && !args[i + 1].starts_with("--");
    if (args[i] == "--url" && has_value) {
      url = std::string(args[++i]);
    } else if (args[i] == "--key" && has_value) {
      key = std::string(args[++i]);
    } else if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--watch") {
      watch = has_value ? std::atoi(std::string(args[++i]).c_str()) : 2;
      if (watch < 1) watch = 1;
    } else {
      std::fprintf(stderr, "isartor stats: unexpected '%.*s'\n\n%s", static_cast<int>(args[i].size()), args[i].data(),
                   kStatsUsage);
      return 2;
    }
  }
  while (url.ends_with('/')) url.pop_back();
  for (;;) {
    auto text = isartor::app::fetch_metrics(url, key);
    if (!text) {
      LOG_ERROR("isartor::stats", "{}", text.error().message);
      return 1;
    }
    const auto summary = isartor::app::summarize(isartor::app::parse_exposition(*text));
    if (watch > 0 && !json) std::fputs("\x1b[H\x1b[2J", stdout);  // a fresh screen each round
    std::fputs(json ? (summary.dump() + "\n").c_str() : isartor::app::format_summary(summary).c_str(), stdout);
    std::fflush(stdout);
    if (watch == 0) return 0;
    std::this_thread::sleep_for(std::chrono::seconds(watch));
  }
}

int run(const std::vector<std::string_view>& args) {
  std::string_view command = args.empty() ? "up" : args[0];
  if (command == "-V" || command == "--version") {
    std::printf("%s\n", isartor::app::version_string().c_str());
    return 0;
  }
  if (command == "-h" || command == "--help" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::vector<std::string_view> rest(args.empty() ? args.begin() : args.begin() + 1, args.end());
  if (command == "up") {
    if (wants_help(rest)) {
      std::fputs(kUpUsage, stdout);
      return 0;
    }
    auto config = load_config();
    if (!up_options(rest, config)) return 2;
    isartor::app::Gateway gateway(std::move(config));
    gateway.run();
    return 0;
  }
  if (command == "models") return models(rest);
  if (command == "stats") return stats(rest);
  if (command == "config") {
    if (wants_help(rest)) {
      std::fputs(kConfigUsage, stdout);
      return 0;
    }
    auto config = load_config();
    std::fputs(isartor::config::describe(config).c_str(), stdout);
    return 0;
  }
  std::fprintf(stderr, "isartor: unknown command '%.*s'\n\n%s", static_cast<int>(command.size()), command.data(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  isartor::log::init_from_env();
  std::vector<std::string_view> args(argv + 1, argv + argc);
  try {
    return run(args);
  } catch (const isartor::config::ConfigError& e) {
    LOG_ERROR("isartor::config", "{}", e.what());
    return 1;
  } catch (const std::exception& e) {
    LOG_ERROR("isartor", "{}", e.what());
    return 1;
  }
}
