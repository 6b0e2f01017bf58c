#pragma once
// Gateway configuration: every ISARTOR__* variable of the Level 1 spec plus ours.
// Sources, lowest to highest precedence: built-in defaults < isartor.toml < .env < environment.
// Nested keys use "__": ISARTOR__LAYER2__SIDECAR_URL <-> [layer2] sidecar_url in TOML.
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/sha256.h"

namespace isartor::config {

enum class CacheMode { kBoth, kExact, kSemantic, kNone };
enum class CacheBackendKind { kMemory, kRedis };
enum class CacheScope { kGlobal, kSession };
enum class RouterBackend { kEmbedded, kVllm };
enum class Provider { kOpenAI, kAzure, kAnthropic, kXai };
enum class SemanticIndex { kAuto, kFlat, kHnsw };
enum class ClassifyMode { kLogits, kGrammar };
enum class KeyStrategy { kRoundRobin, kPriority };
enum class QuotaAction { kBlock, kWarn, kFallback };

struct Layer2Config {
  // ISARTOR__LAYER2__SIDECAR_URL: an OpenAI-compatible server (llama-server, vLLM) to use instead
  // of the in-process model; required with ISARTOR__ROUTER_BACKEND=vllm.
  std::string sidecar_url;
  std::string sidecar_model;    // ISARTOR__LAYER2__SIDECAR_MODEL: model to ask for; empty = the server's first
  std::string sidecar_api_key;  // ISARTOR__LAYER2__SIDECAR_API_KEY: Bearer key of the sidecar; empty = none
  std::string repo_id = "mradermacher/gemma-2-2b-it-GGUF";  // ISARTOR__LAYER2__REPO_ID
  std::string gguf_filename = "gemma-2-2b-it.Q4_K_M.gguf";  // ISARTOR__LAYER2__GGUF_FILENAME
  std::string revision = "main";                            // ISARTOR__LAYER2__REVISION
  std::string model_path;  // ISARTOR__LAYER2__MODEL_PATH: a local GGUF; skips the hub
  // ISARTOR__LAYER2__CHAT_TEMPLATE: a llama.cpp built-in template name ("gemma", "chatml", ...)
  // for a GGUF without one (or to override it); empty = the GGUF's own.
  std::string chat_template;
  ClassifyMode classify_mode = ClassifyMode::kLogits;       // ISARTOR__LAYER2__CLASSIFY_MODE
  int max_classify_tokens = 20;                             // ISARTOR__LAYER2__MAX_CLASSIFY_TOKENS
  int max_generate_tokens = 256;                            // ISARTOR__LAYER2__MAX_GENERATE_TOKENS
  double temperature = 0.0;                                 // ISARTOR__LAYER2__TEMPERATURE
  double repetition_penalty = 1.1;                          // ISARTOR__LAYER2__REPETITION_PENALTY
  int gpu_layers = 0;                                       // ISARTOR__LAYER2__GPU_LAYERS
  // ISARTOR__LAYER2__MAX_PROMPT_CHARS: longer prompts (all message text) skip L2 and go to L3.
  int max_prompt_chars = 4000;
  bool single_turn_only = true;  // ISARTOR__LAYER2__SINGLE_TURN_ONLY: false offers multi-turn chats to L2 too
  int timeout_secs = 30;       // ISARTOR__LAYER2__TIMEOUT_SECS: one request's budget in L2; 0 = none
  int context_tokens = 2048;   // ISARTOR__LAYER2__CONTEXT_TOKENS: per sequence, prompt + answer
  int max_sequences = 4;       // ISARTOR__LAYER2__MAX_SEQUENCES: requests decoded together
  int max_queued = 64;         // ISARTOR__LAYER2__MAX_QUEUED: waiting requests beyond it are refused
  int threads = 0;             // ISARTOR__LAYER2__THREADS: ggml threads; 0 = hardware cores
};

struct EmbeddingConfig {
  std::string repo_id = "sentence-transformers/all-MiniLM-L6-v2";  // ISARTOR__EMBEDDING__REPO_ID
  std::string model_path;  // ISARTOR__EMBEDDING__MODEL_PATH: a .gguf file or a checkout folder
  std::string revision = "main";  // ISARTOR__EMBEDDING__REVISION
  bool required = false;  // ISARTOR__EMBEDDING__REQUIRED: no model = start-up error, else L1b off
  // ISARTOR__EMBEDDING__THREADS: ggml threads of the embedding worker; 1 by default because
  // llama.cpp's OpenMP threads spin-wait, which costs more than it gains on small shared machines.
  int threads = 1;
  std::string sidecar_url;  // ISARTOR__EMBEDDING_SIDECAR__SIDECAR_URL
};

// One provider of the L3 chain: the primary (ISARTOR__LLM_PROVIDER and its variables) or an
// entry of ISARTOR__FALLBACK_PROVIDERS.
struct UpstreamTarget {
  std::string name;                   // X-Isartor-Provider, /health, metrics; unique in the chain
  Provider provider = Provider::kOpenAI;
  std::string url;                    // base URL; empty = the provider's default
  std::vector<std::string> api_keys;  // the key pool, in priority order; empty = calls fail (503)
  std::string model;                  // the model this provider is asked for; empty = the request's
  std::string azure_deployment_id;    // azure only (required there)
  uint64_t tokens_per_day = 0;        // quota of this provider's answers (UTC windows); 0 = none
  uint64_t tokens_per_month = 0;
};

// How L3 keeps answering when a provider or key fails (README "Resilience").
struct ResilienceConfig {
  std::vector<UpstreamTarget> fallback_providers;  // ISARTOR__FALLBACK_PROVIDERS: a JSON list, tried in order
  std::vector<std::string> more_api_keys;  // ISARTOR__EXTERNAL_LLM_API_KEYS: the primary's pool beyond its key
  KeyStrategy key_strategy = KeyStrategy::kRoundRobin;  // ISARTOR__KEY_STRATEGY
  int key_cooldown_secs = 60;    // ISARTOR__KEY_COOLDOWN_SECS: a key's rest after a 429/401/403 without Retry-After
  // ISARTOR__RETRY__MAX_ATTEMPTS: calls to one provider per request (as nginx: each provider
  // once, the SDKs retry on their own); another key after a refused one is free.
  int max_attempts = 1;
  int initial_backoff_ms = 200;  // ISARTOR__RETRY__INITIAL_BACKOFF_MS: full jitter, doubling per attempt
  int max_backoff_ms = 5000;     // ISARTOR__RETRY__MAX_BACKOFF_MS
  int deadline_secs = 180;       // ISARTOR__RETRY__DEADLINE_SECS: no attempt or wait starts past it
  // ISARTOR__CIRCUIT_BREAKER__FAILURES: consecutive failures that open a provider's breaker;
  // 0 = off. Only with a fallback: alone, skipping the provider would only fail faster.
  int breaker_failures = 5;
  int breaker_open_secs = 30;    // ISARTOR__CIRCUIT_BREAKER__OPEN_SECS: open this long, then one probe
  // ISARTOR__EXTERNAL_LLM_TOKENS_PER_DAY / _PER_MONTH: the primary's quota (a fallback's is in its entry).
  uint64_t primary_tokens_per_day = 0;
  uint64_t primary_tokens_per_month = 0;
  // ISARTOR__PROVIDER_QUOTA_ACTION: a provider past its quota is skipped (fallback), refuses (block,
  // 429) or is only logged (warn).
  QuotaAction provider_quota_action = QuotaAction::kFallback;
};

// Per gateway key: 0 = no limit. Days and months are UTC calendar ones.
struct RateLimits {
  uint64_t requests_per_minute = 0;
  uint64_t tokens_per_minute = 0;
  uint64_t tokens_per_day = 0;
  uint64_t tokens_per_month = 0;
};

// A client of the gateway, told apart by its key (logs, metrics, limits).
struct GatewayKey {
  std::string name;
  Sha256Digest digest{};  // of the key; a key given in clear is kept only as its digest
  RateLimits limits;       // a zero falls back to ISARTOR__RATE_LIMIT__*
  bool admin = false;      // may use the /admin/ routes (ISARTOR__GATEWAY_API_KEY always may)
};

struct RateLimitConfig {
  // ISARTOR__RATE_LIMIT__REQUESTS_PER_MINUTE / __TOKENS_PER_MINUTE, ISARTOR__QUOTA__TOKENS_PER_DAY /
  // __TOKENS_PER_MONTH: for every key without its own.
  RateLimits defaults;
  bool count_cache_hits = true;   // ISARTOR__RATE_LIMIT__COUNT_CACHE_HITS: false = cache hits are free
  QuotaAction quota_action = QuotaAction::kBlock;  // ISARTOR__QUOTA__ACTION: block (429) or warn (log)
};

struct Config {
  // Server
  std::string host = "0.0.0.0";                // from ISARTOR__HOST_PORT
  uint16_t port = 8080;                        // from ISARTOR__HOST_PORT
  std::string gateway_api_key;                 // ISARTOR__GATEWAY_API_KEY; empty = auth off
  // ISARTOR__GATEWAY_API_KEYS: a JSON list [{"name", "key" | "key_sha256", "requests_per_minute",
  // "tokens_per_minute"}]; with GATEWAY_API_KEY (named "default") the keys the gateway accepts.
  std::vector<GatewayKey> gateway_api_keys;
  RateLimitConfig rate_limit;
  uint64_t max_body_bytes = 4 * 1024 * 1024;   // ISARTOR__MAX_BODY_BYTES
  uint64_t max_response_bytes = 16 * 1024 * 1024;  // ISARTOR__MAX_RESPONSE_BYTES (upstream answers)
  int header_timeout_secs = 30;                // ISARTOR__HEADER_TIMEOUT_SECS
  int idle_timeout_secs = 60;                  // ISARTOR__IDLE_TIMEOUT_SECS (keep-alive)
  int write_timeout_secs = 60;                 // ISARTOR__WRITE_TIMEOUT_SECS
  int shutdown_grace_secs = 30;                // ISARTOR__SHUTDOWN_GRACE_SECS
  int worker_threads = 0;                      // ISARTOR__WORKER_THREADS; 0 = hardware cores
  uint64_t max_connections = 0;            // ISARTOR__MAX_CONNECTIONS; 0 = from the open-files limit
  uint64_t max_upstream_connections = 0;   // ISARTOR__MAX_UPSTREAM_CONNECTIONS; 0 = likewise

  // Caches
  CacheMode cache_mode = CacheMode::kBoth;                  // ISARTOR__CACHE_MODE
  CacheBackendKind cache_backend = CacheBackendKind::kMemory;  // ISARTOR__CACHE_BACKEND
  std::string redis_url = "redis://127.0.0.1:6379";         // ISARTOR__REDIS_URL
  uint64_t cache_ttl_secs = 300;                            // ISARTOR__CACHE_TTL_SECS
  CacheScope cache_scope = CacheScope::kGlobal;             // ISARTOR__CACHE_SCOPE (session: per session header)
  uint64_t cache_max_capacity = 10000;                      // ISARTOR__CACHE_MAX_CAPACITY
  uint64_t cache_max_bytes = 256 * 1024 * 1024;             // ISARTOR__CACHE_MAX_BYTES (each cache)
  double similarity_threshold = 0.85;                       // ISARTOR__SIMILARITY_THRESHOLD
  bool semantic_single_turn_only = true;   // ISARTOR__SEMANTIC_SINGLE_TURN_ONLY
  bool semantic_guard = true;              // ISARTOR__SEMANTIC_GUARD: numbers/negation cross-check
  SemanticIndex semantic_index = SemanticIndex::kAuto;  // ISARTOR__SEMANTIC_INDEX

  // Local model (L2)
  RouterBackend router_backend = RouterBackend::kEmbedded;  // ISARTOR__ROUTER_BACKEND
  bool enable_slm_router = true;                            // ISARTOR__ENABLE_SLM_ROUTER
  Layer2Config layer2;
  EmbeddingConfig embedding;
  std::string hf_cache_dir;   // ISARTOR__HF_CACHE_DIR (or ISARTOR_HF_CACHE_DIR)
  bool offline_mode = false;  // ISARTOR__OFFLINE_MODE
  // ISARTOR__MODEL_DIR (`isartor up --model-dir DIR`): a local folder holding the configured
  // models by file name (see inference/model_manager.h); set, the hub is never asked for them.
  std::string model_dir;

  // Cloud (L3)
  Provider llm_provider = Provider::kOpenAI;     // ISARTOR__LLM_PROVIDER
  std::string external_llm_api_key;              // ISARTOR__EXTERNAL_LLM_API_KEY (or _FILE)
  std::string external_llm_api_key_file;         // ISARTOR__EXTERNAL_LLM_API_KEY_FILE
  std::string external_llm_model = "gpt-4o-mini";  // ISARTOR__EXTERNAL_LLM_MODEL
  std::string external_llm_url;                  // ISARTOR__EXTERNAL_LLM_URL; empty = provider default
  int l3_timeout_secs = 120;                     // ISARTOR__L3_TIMEOUT_SECS
  std::string azure_deployment_id;               // ISARTOR__AZURE_DEPLOYMENT_ID
  std::string azure_api_version = "2024-10-21";  // ISARTOR__AZURE_API_VERSION
  int anthropic_max_tokens = 4096;               // ISARTOR__ANTHROPIC_MAX_TOKENS (OpenAI->Anthropic default)
  ResilienceConfig resilience;

  // Observability
  bool enable_monitoring = false;  // ISARTOR__ENABLE_MONITORING

  // Where each value came from, for `isartor config` ("default", "isartor.toml", ".env", "env";
  // "ISARTOR__EXTERNAL_LLM_API_KEY_FILE" for a key read from that file). Keyed by ISARTOR__ name.
  std::map<std::string, std::string> sources;
  // ISARTOR__* names that were set but are not known; warned about at start-up.
  std::vector<std::string> unknown_keys;
};

// Thrown at start-up only; what() is one line naming the variable, the bad value and the accepted ones.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Inputs to load(), so tests need not touch the process environment or the file system.
struct Sources {
  std::map<std::string, std::string> toml;  // flattened: "ISARTOR__LAYER2__SIDECAR_URL" -> "..."
  std::map<std::string, std::string> dotenv;
  std::map<std::string, std::string> env;
};

// Builds and validates a Config. Throws ConfigError on the first bad value. Thread-safe; pure
// except that it reads ISARTOR__EXTERNAL_LLM_API_KEY_FILE when that is set and the key is empty.
// Names are matched case-insensitively; ISARTOR_HF_CACHE_DIR is accepted for ISARTOR__HF_CACHE_DIR.
Config load(const Sources& sources);

// Reads isartor.toml (path from ISARTOR_CONFIG, else ./isartor.toml if present), ./.env if present
// and the process environment, then calls load(). Throws ConfigError (also for unreadable files).
Config load_from_process();

// Parses TOML 1.0 (toml++) into flattened ISARTOR__SECTION__KEY names: scalars as their text,
// arrays (of tables too) as JSON text. Throws ConfigError with the line number on bad syntax
// and for dates and times, which no variable takes.
std::map<std::string, std::string> parse_toml(const std::string& text);

// Parses KEY=VALUE lines (optional `export `, quotes, # comments). Throws ConfigError on bad lines.
std::map<std::string, std::string> parse_dotenv(const std::string& text);

// The effective configuration as "ISARTOR__NAME=value  # source" lines sorted by name, secrets
// masked ("sk-…(51 chars)"). Thread-safe (pure).
std::string describe(const Config& config);

// Masks a secret for display: empty is "(empty)", otherwise the first 3 chars and the length
// ("sk-…(51 chars)"); under 8 chars only the length ("…(5 chars)"). Pure.
std::string mask_secret(const std::string& secret);

// The L3 chain in order: the primary (named after its provider, its pool the key and then
// ISARTOR__EXTERNAL_LLM_API_KEYS) and then each fallback. Pure.
std::vector<UpstreamTarget> upstream_targets(const Config& config);

// Whether the cache mode turns on the exact (L1a) / semantic (L1b) cache. Pure.
bool exact_cache_enabled(const Config& config);
bool semantic_cache_enabled(const Config& config);
// Whether L2 runs on a sidecar (ISARTOR__ROUTER_BACKEND=vllm or a sidecar URL) rather than in-process. Pure.
bool local_model_on_sidecar(const Config& config);

// The lower-case config spelling ("both", "redis", "vllm", "azure"). Pure.
const char* to_string(CacheMode);
const char* to_string(CacheBackendKind);
const char* to_string(CacheScope);
const char* to_string(RouterBackend);
const char* to_string(Provider);
const char* to_string(SemanticIndex);
const char* to_string(ClassifyMode);
const char* to_string(KeyStrategy);
const char* to_string(QuotaAction);

}  // namespace isartor::config
