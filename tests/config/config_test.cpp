#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace isartor::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

Config load_env(std::map<std::string, std::string> env) {
  Sources sources;
  sources.env = std::move(env);
  return load(sources);
}

// what() of the ConfigError that load() throws, or "(no error)".
std::string error_of(const Sources& sources) {
  try {
    load(sources);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string env_error(std::map<std::string, std::string> env) {
  Sources sources;
  sources.env = std::move(env);
  return error_of(sources);
}

// A scratch directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "isartor-config-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::string& content) const {
    const std::filesystem::path file = path_ / name;
    std::ofstream(file, std::ios::binary) << content;
    return file.string();
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(ConfigLoad, DefaultsMatchTheSpec) {
  const Config c = load({});
  EXPECT_EQ(c.host, "0.0.0.0");
  EXPECT_EQ(c.port, 8080);
  EXPECT_EQ(c.gateway_api_key, "");
  EXPECT_EQ(c.max_body_bytes, 4u * 1024 * 1024);
  EXPECT_EQ(c.cache_mode, CacheMode::kBoth);
  EXPECT_EQ(c.cache_backend, CacheBackendKind::kMemory);
  EXPECT_EQ(c.cache_ttl_secs, 300u);
  EXPECT_EQ(c.cache_max_capacity, 10000u);
  EXPECT_DOUBLE_EQ(c.similarity_threshold, 0.85);
  EXPECT_EQ(c.router_backend, RouterBackend::kEmbedded);
  EXPECT_TRUE(c.enable_slm_router);
  EXPECT_EQ(c.layer2.repo_id, "mradermacher/gemma-2-2b-it-GGUF");
  EXPECT_EQ(c.llm_provider, Provider::kOpenAI);
  EXPECT_EQ(c.external_llm_model, "gpt-4o-mini");
  EXPECT_EQ(c.l3_timeout_secs, 120);
  EXPECT_FALSE(c.enable_monitoring);
  EXPECT_TRUE(c.unknown_keys.empty());
  ASSERT_FALSE(c.sources.empty());
  for (const auto& [name, source] : c.sources) EXPECT_EQ(source, "default") << name;
}

TEST(ConfigLoad, PrecedenceIsTomlThenDotenvThenEnv) {
  Sources s;
  s.toml = {{"ISARTOR__CACHE_MODE", "exact"},
            {"ISARTOR__CACHE_TTL_SECS", "10"},
            {"ISARTOR__EXTERNAL_LLM_MODEL", "from-toml"}};
  s.dotenv = {{"ISARTOR__CACHE_MODE", "semantic"}, {"ISARTOR__CACHE_TTL_SECS", "20"}};
  s.env = {{"ISARTOR__CACHE_MODE", "none"}};
  const Config c = load(s);
  EXPECT_EQ(c.cache_mode, CacheMode::kNone);
  EXPECT_EQ(c.cache_ttl_secs, 20u);
  EXPECT_EQ(c.external_llm_model, "from-toml");
  EXPECT_EQ(c.sources.at("ISARTOR__CACHE_MODE"), "env");
  EXPECT_EQ(c.sources.at("ISARTOR__CACHE_TTL_SECS"), ".env");
  EXPECT_EQ(c.sources.at("ISARTOR__EXTERNAL_LLM_MODEL"), "isartor.toml");
  EXPECT_EQ(c.sources.at("ISARTOR__REDIS_URL"), "default");
}

TEST(ConfigLoad, OverriddenValuesAreNotValidated) {
  Sources s;
  s.toml = {{"ISARTOR__CACHE_MODE", "bogus"}};
  s.env = {{"ISARTOR__CACHE_MODE", "exact"}};
  // The overridden value is never parsed: the effective one is what counts.
  EXPECT_EQ(load(s).cache_mode, CacheMode::kExact);
}

TEST(ConfigLoad, NamesAreCaseInsensitive) {
  const Config c = load_env(
      {{"isartor__cache_mode", "exact"}, {"Isartor__Layer2__Sidecar_Url", "http://l2:8081"}});
  EXPECT_EQ(c.cache_mode, CacheMode::kExact);
  EXPECT_EQ(c.layer2.sidecar_url, "http://l2:8081");
  EXPECT_EQ(c.sources.at("ISARTOR__LAYER2__SIDECAR_URL"), "env");
}

TEST(ConfigLoad, NestedNames) {
  const Config c = load_env({{"ISARTOR__LAYER2__SIDECAR_URL", "http://127.0.0.1:8081"},
                             {"ISARTOR__LAYER2__MAX_GENERATE_TOKENS", "64"},
                             {"ISARTOR__LAYER2__TEMPERATURE", "0.7"},
                             {"ISARTOR__EMBEDDING__MODEL_PATH", "/models/minilm.gguf"},
                             {"ISARTOR__EMBEDDING_SIDECAR__SIDECAR_URL", "http://127.0.0.1:8082"}});
  EXPECT_EQ(c.layer2.sidecar_url, "http://127.0.0.1:8081");
  EXPECT_EQ(c.layer2.max_generate_tokens, 64);
  EXPECT_DOUBLE_EQ(c.layer2.temperature, 0.7);
  EXPECT_EQ(c.embedding.model_path, "/models/minilm.gguf");
  EXPECT_EQ(c.embedding.sidecar_url, "http://127.0.0.1:8082");
}

TEST(ConfigLoad, HfCacheDirAcceptsTheSpecSpellingAndIgnoresHfHome) {
  Config c = load_env({{"ISARTOR_HF_CACHE_DIR", "/cache/hf"}, {"HF_HOME", "/elsewhere"}});
  EXPECT_EQ(c.hf_cache_dir, "/cache/hf");
  EXPECT_EQ(c.sources.at("ISARTOR__HF_CACHE_DIR"), "env");
  EXPECT_TRUE(c.unknown_keys.empty());

  c = load_env({{"ISARTOR_HF_CACHE_DIR", "/alias"}, {"ISARTOR__HF_CACHE_DIR", "/canonical"}});
  EXPECT_EQ(c.hf_cache_dir, "/canonical");

  Sources s;
  s.dotenv = {{"ISARTOR__HF_CACHE_DIR", "/from-dotenv"}};
  s.env = {{"ISARTOR_HF_CACHE_DIR", "/from-env"}};
  EXPECT_EQ(load(s).hf_cache_dir, "/from-env");
  EXPECT_TRUE(load_env({{"HF_HOME", "/x"}}).hf_cache_dir.empty());
}

TEST(ConfigLoad, ModelDirIsAPlainPathUnsetByDefault) {
  EXPECT_EQ(load_env({}).model_dir, "");
  Config c = load_env({{"ISARTOR__MODEL_DIR", "/var/cache/isartor/models"}});
  EXPECT_EQ(c.model_dir, "/var/cache/isartor/models");
  EXPECT_EQ(c.sources.at("ISARTOR__MODEL_DIR"), "env");
}

TEST(ConfigLoad, UnknownIsartorKeysAreCollectedNotFatal) {
  Sources s;
  s.toml = {{"ISARTOR__LAYER2__NOPE", "1"}};
  s.env = {{"ISARTOR__CACHE_MOED", "exact"},
           {"isartor__lower_typo", "x"},
           {"ISARTOR_LOG", "debug"},
           {"ISARTOR_CONFIG", "/x.toml"},
           {"PATH", "/usr/bin"}};
  const Config c = load(s);
  EXPECT_THAT(c.unknown_keys,
              ElementsAre("ISARTOR__CACHE_MOED", "ISARTOR__LAYER2__NOPE", "ISARTOR__LOWER_TYPO"));
  EXPECT_EQ(c.cache_mode, CacheMode::kBoth);
}

TEST(ConfigLoad, EnumsAcceptEveryValueInAnyCase) {
  EXPECT_EQ(load_env({{"ISARTOR__CACHE_MODE", "SEMANTIC"}}).cache_mode, CacheMode::kSemantic);
  EXPECT_EQ(load_env({{"ISARTOR__CACHE_MODE", "exact"}}).cache_mode, CacheMode::kExact);
  EXPECT_EQ(load_env({{"ISARTOR__CACHE_MODE", "None"}}).cache_mode, CacheMode::kNone);
  EXPECT_EQ(load_env({{"ISARTOR__CACHE_BACKEND", "Redis"}}).cache_backend,
            CacheBackendKind::kRedis);
  EXPECT_EQ(load_env({{"ISARTOR__ROUTER_BACKEND", "vLLM"}, {"ISARTOR__LAYER2__SIDECAR_URL", "http://127.0.0.1:8081"}})
                .router_backend,
            RouterBackend::kVllm);
  EXPECT_EQ(load_env({{"ISARTOR__LAYER2__CLASSIFY_MODE", "Grammar"}}).layer2.classify_mode, ClassifyMode::kGrammar);
  EXPECT_EQ(load_env({{"ISARTOR__LLM_PROVIDER", "Anthropic"}}).llm_provider, Provider::kAnthropic);
  EXPECT_EQ(load_env({{"ISARTOR__LLM_PROVIDER", "XAI"}}).llm_provider, Provider::kXai);
  EXPECT_EQ(load_env({{"ISARTOR__LLM_PROVIDER", "openai"}}).llm_provider, Provider::kOpenAI);
}

TEST(ConfigLoad, SemanticCacheSettings) {
  Config defaults = load_env({});
  EXPECT_TRUE(defaults.semantic_single_turn_only);
  EXPECT_TRUE(defaults.semantic_guard);
  EXPECT_EQ(defaults.semantic_index, SemanticIndex::kAuto);
  EXPECT_FALSE(defaults.embedding.required);
  EXPECT_EQ(defaults.embedding.revision, "main");
  EXPECT_EQ(load_env({{"ISARTOR__SEMANTIC_INDEX", "HNSW"}}).semantic_index, SemanticIndex::kHnsw);
  EXPECT_EQ(load_env({}).cache_scope, CacheScope::kGlobal);
  EXPECT_EQ(load_env({{"ISARTOR__CACHE_SCOPE", "session"}}).cache_scope, CacheScope::kSession);
  EXPECT_EQ(env_error({{"ISARTOR__CACHE_SCOPE", "user"}}),
            "invalid ISARTOR__CACHE_SCOPE=\"user\": expected one of global, session");
  EXPECT_FALSE(load_env({{"ISARTOR__SEMANTIC_GUARD", "off"}}).semantic_guard);
  EXPECT_TRUE(load_env({{"ISARTOR__EMBEDDING__REQUIRED", "yes"}}).embedding.required);
  EXPECT_EQ(env_error({{"ISARTOR__SEMANTIC_INDEX", "faiss"}}),
            "invalid ISARTOR__SEMANTIC_INDEX=\"faiss\": expected one of auto, flat, hnsw");
}

TEST(ConfigLoad, BadEnumErrorsAreOneLineNamingVariableValueAndChoices) {
  EXPECT_EQ(env_error({{"ISARTOR__CACHE_MODE", "foo"}}),
            "invalid ISARTOR__CACHE_MODE=\"foo\": expected one of both, exact, semantic, none");
  EXPECT_EQ(env_error({{"ISARTOR__CACHE_BACKEND", "disk"}}),
            "invalid ISARTOR__CACHE_BACKEND=\"disk\": expected one of memory, redis");
  EXPECT_EQ(env_error({{"ISARTOR__ROUTER_BACKEND", "ollama"}}),
            "invalid ISARTOR__ROUTER_BACKEND=\"ollama\": expected one of embedded, vllm");
  EXPECT_EQ(
      env_error({{"ISARTOR__LLM_PROVIDER", "gemini"}}),
      "invalid ISARTOR__LLM_PROVIDER=\"gemini\": expected one of openai, azure, anthropic, xai");
}

TEST(ConfigLoad, ErrorTextStaysOnOneLineForHostileValues) {
  const std::string error = env_error({{"ISARTOR__CACHE_MODE", "a\nb\"c"}});
  EXPECT_EQ(
      error,
      "invalid ISARTOR__CACHE_MODE=\"a\\nb\\\"c\": expected one of both, exact, semantic, none");
  EXPECT_EQ(error.find('\n'), std::string::npos);
}

TEST(ConfigLoad, BooleanSpellings) {
  const std::pair<const char*, bool> cases[] = {{"true", true}, {"false", false}, {"1", true},
                                                {"0", false},   {"yes", true},    {"no", false},
                                                {"on", true},   {"off", false},   {"TRUE", true},
                                                {"Off", false}, {" yes ", true}};
  for (const auto& [text, expected] : cases) {
    EXPECT_EQ(load_env({{"ISARTOR__ENABLE_MONITORING", text}}).enable_monitoring, expected) << text;
    EXPECT_EQ(load_env({{"ISARTOR__OFFLINE_MODE", text}}).offline_mode, expected) << text;
  }
  EXPECT_EQ(
      env_error({{"ISARTOR__ENABLE_SLM_ROUTER", "maybe"}}),
      "invalid ISARTOR__ENABLE_SLM_ROUTER=\"maybe\": expected one of true, false, 1, 0, yes, no, "
      "on, off");
  EXPECT_THAT(env_error({{"ISARTOR__OFFLINE_MODE", ""}}), HasSubstr("ISARTOR__OFFLINE_MODE=\"\""));
}

TEST(ConfigLoad, LocalModelSettings) {
  Config defaults = load_env({});
  EXPECT_EQ(defaults.layer2.classify_mode, ClassifyMode::kLogits);
  EXPECT_EQ(defaults.layer2.timeout_secs, 30);
  EXPECT_EQ(defaults.layer2.context_tokens, 2048);
  EXPECT_EQ(defaults.layer2.max_sequences, 4);
  EXPECT_EQ(defaults.layer2.max_queued, 64);
  EXPECT_EQ(defaults.layer2.revision, "main");
  EXPECT_EQ(load_env({{"ISARTOR__LAYER2__MAX_SEQUENCES", "256"}}).layer2.max_sequences, 256);
  EXPECT_EQ(env_error({{"ISARTOR__LAYER2__MAX_SEQUENCES", "0"}}),
            "invalid ISARTOR__LAYER2__MAX_SEQUENCES=\"0\": expected an integer in 1..256");
  // A queue of 0 would refuse every request before a slot could take it.
  EXPECT_EQ(env_error({{"ISARTOR__LAYER2__MAX_QUEUED", "0"}}),
            "invalid ISARTOR__LAYER2__MAX_QUEUED=\"0\": expected an integer >= 1");
  EXPECT_EQ(env_error({{"ISARTOR__ROUTER_BACKEND", "vllm"}}),
            "missing ISARTOR__LAYER2__SIDECAR_URL: required when ISARTOR__ROUTER_BACKEND=vllm");
  EXPECT_EQ(env_error({{"ISARTOR__LAYER2__CLASSIFY_MODE", "vibes"}}),
            "invalid ISARTOR__LAYER2__CLASSIFY_MODE=\"vibes\": expected one of logits, grammar");
  // The sidecar key is a secret: never echoed back.
  EXPECT_EQ(env_error({{"ISARTOR__LAYER2__SIDECAR_API_KEY", "a b"}}),
            "invalid ISARTOR__LAYER2__SIDECAR_API_KEY (value hidden, 3 chars): expected printable ASCII without spaces");
}

TEST(ConfigLoad, IntegersAcceptRangeLimits) {
  EXPECT_EQ(load_env({{"ISARTOR__CACHE_TTL_SECS", "0"}}).cache_ttl_secs, 0u);
  EXPECT_EQ(load_env({{"ISARTOR__CACHE_TTL_SECS", "18446744073709551615"}}).cache_ttl_secs,
            18446744073709551615u);
  EXPECT_EQ(load_env({{"ISARTOR__MAX_BODY_BYTES", "1"}}).max_body_bytes, 1u);
  EXPECT_EQ(load_env({{"ISARTOR__L3_TIMEOUT_SECS", "1"}}).l3_timeout_secs, 1);
  EXPECT_EQ(load_env({{"ISARTOR__L3_TIMEOUT_SECS", "2147483647"}}).l3_timeout_secs, 2147483647);
  EXPECT_EQ(load_env({{"ISARTOR__WORKER_THREADS", "0"}}).worker_threads, 0);
  EXPECT_EQ(load_env({{"ISARTOR__LAYER2__GPU_LAYERS", "99"}}).layer2.gpu_layers, 99);
  EXPECT_EQ(load_env({{"ISARTOR__LAYER2__MAX_PROMPT_CHARS", "120"}}).layer2.max_prompt_chars, 120);
}

TEST(ConfigLoad, IntegersRejectNegativesGarbageAndOverflow) {
  EXPECT_EQ(env_error({{"ISARTOR__CACHE_TTL_SECS", "-5"}}),
            "invalid ISARTOR__CACHE_TTL_SECS=\"-5\": expected an integer >= 0");
  EXPECT_EQ(env_error({{"ISARTOR__CACHE_TTL_SECS", "18446744073709551616"}}),
            "invalid ISARTOR__CACHE_TTL_SECS=\"18446744073709551616\": expected an integer >= 0");
  EXPECT_EQ(env_error({{"ISARTOR__L3_TIMEOUT_SECS", "0"}}),
            "invalid ISARTOR__L3_TIMEOUT_SECS=\"0\": expected an integer >= 1");
  EXPECT_EQ(env_error({{"ISARTOR__L3_TIMEOUT_SECS", "2147483648"}}),
            "invalid ISARTOR__L3_TIMEOUT_SECS=\"2147483648\": expected an integer >= 1");
  EXPECT_EQ(env_error({{"ISARTOR__MAX_BODY_BYTES", "0"}}),
            "invalid ISARTOR__MAX_BODY_BYTES=\"0\": expected an integer >= 1");
  EXPECT_EQ(env_error({{"ISARTOR__WORKER_THREADS", "5000"}}),
            "invalid ISARTOR__WORKER_THREADS=\"5000\": expected an integer in 0..1024");
  for (const char* bad : {"12abc", "", "1.5", "+3", "0x10", " ", "ten"}) {
    EXPECT_THAT(env_error({{"ISARTOR__CACHE_MAX_CAPACITY", bad}}),
                HasSubstr("invalid ISARTOR__CACHE_MAX_CAPACITY=\""))
        << bad;
  }
  EXPECT_THAT(env_error({{"ISARTOR__LAYER2__GPU_LAYERS", "-1"}}),
              HasSubstr("expected an integer >= 0"));
  EXPECT_THAT(env_error({{"ISARTOR__LAYER2__MAX_PROMPT_CHARS", "0"}}),
              HasSubstr("expected an integer >= 1"));
}

TEST(ConfigLoad, Numbers) {
  EXPECT_DOUBLE_EQ(load_env({{"ISARTOR__SIMILARITY_THRESHOLD", "0"}}).similarity_threshold, 0.0);
  EXPECT_DOUBLE_EQ(load_env({{"ISARTOR__SIMILARITY_THRESHOLD", "1"}}).similarity_threshold, 1.0);
  EXPECT_DOUBLE_EQ(load_env({{"ISARTOR__SIMILARITY_THRESHOLD", "0.92"}}).similarity_threshold,
                   0.92);
  EXPECT_DOUBLE_EQ(load_env({{"ISARTOR__LAYER2__TEMPERATURE", "1.5"}}).layer2.temperature, 1.5);
  for (const char* bad : {"1.01", "-0.1", "nan", "inf", "abc", "", "0.5x"}) {
    EXPECT_EQ(env_error({{"ISARTOR__SIMILARITY_THRESHOLD", bad}}),
              std::string("invalid ISARTOR__SIMILARITY_THRESHOLD=\"") + bad +
                  "\": expected a number in [0, 1]")
        << bad;
  }
  EXPECT_EQ(env_error({{"ISARTOR__LAYER2__TEMPERATURE", "-0.1"}}),
            "invalid ISARTOR__LAYER2__TEMPERATURE=\"-0.1\": expected a number >= 0");
}

TEST(ConfigLoad, HostPortForms) {
  struct Case {
    const char* text;
    const char* host;
    uint16_t port;
  };
  const Case cases[] = {{"0.0.0.0:8080", "0.0.0.0", 8080},
                        {"127.0.0.1:1", "127.0.0.1", 1},
                        {"[::1]:8080", "::1", 8080},
                        {"[::]:443", "::", 443},
                        {":9000", "0.0.0.0", 9000},
                        {"9001", "0.0.0.0", 9001},
                        {"localhost:65535", "localhost", 65535}};
  for (const Case& c : cases) {
    const Config config = load_env({{"ISARTOR__HOST_PORT", c.text}});
    EXPECT_EQ(config.host, c.host) << c.text;
    EXPECT_EQ(config.port, c.port) << c.text;
  }
}

TEST(ConfigLoad, BadHostPortIsRejected) {
  EXPECT_EQ(env_error({{"ISARTOR__HOST_PORT", "0.0.0.0:0"}}),
            "invalid ISARTOR__HOST_PORT=\"0.0.0.0:0\": expected host:port with port 1..65535 "
            "(e.g. 0.0.0.0:8080, [::1]:8080, :8080)");
  for (const char* bad : {"0.0.0.0:65536", "host:", "::1:8080", "[::1]8080", "[]:80", "abc", "",
                          "host:80x", "host:-1", "a b:80", "[::1:80"}) {
    EXPECT_THAT(env_error({{"ISARTOR__HOST_PORT", bad}}),
                HasSubstr("invalid ISARTOR__HOST_PORT=\""))
        << bad;
  }
}

TEST(ConfigLoad, UrlsNeedTheirScheme) {
  EXPECT_EQ(env_error({{"ISARTOR__EXTERNAL_LLM_URL", "api.openai.com"}}),
            "invalid ISARTOR__EXTERNAL_LLM_URL=\"api.openai.com\": expected a URL http://... or "
            "https://...");
  EXPECT_EQ(env_error({{"ISARTOR__REDIS_URL", "http://cache:6379"}}),
            "invalid ISARTOR__REDIS_URL=\"http://cache:6379\": expected a URL redis://... or "
            "rediss://...");
  EXPECT_THAT(env_error({{"ISARTOR__LAYER2__SIDECAR_URL", "http://"}}), HasSubstr("SIDECAR_URL"));
  EXPECT_EQ(load_env({{"ISARTOR__REDIS_URL", "rediss://cache:6380"}}).redis_url,
            "rediss://cache:6380");
  EXPECT_EQ(load_env({{"ISARTOR__EXTERNAL_LLM_URL", ""}}).external_llm_url, "");
}

TEST(ConfigLoad, SecretsAreNeverEchoedInErrors) {
  const std::string secret = "sk-secret value";
  const std::string error = env_error({{"ISARTOR__GATEWAY_API_KEY", secret}});
  EXPECT_EQ(error,
            "invalid ISARTOR__GATEWAY_API_KEY (value hidden, 15 chars): expected printable ASCII "
            "without spaces");
  EXPECT_THAT(error, Not(HasSubstr("secret")));
  EXPECT_THAT(env_error({{"ISARTOR__EXTERNAL_LLM_API_KEY", "sk-abc\r\nX-Injected: 1"}}),
              Not(HasSubstr("Injected")));
  EXPECT_EQ(load_env({{"ISARTOR__GATEWAY_API_KEY", "gw-key-123"}}).gateway_api_key, "gw-key-123");
}

TEST(ConfigLoad, ApiKeyFromFile) {
  TempDir dir;
  const std::string path = dir.write("key", "sk-from-file-0123456789\n \n");
  Config c = load_env({{"ISARTOR__EXTERNAL_LLM_API_KEY_FILE", path}});
  EXPECT_EQ(c.external_llm_api_key, "sk-from-file-0123456789");
  EXPECT_EQ(c.external_llm_api_key_file, path);
  EXPECT_EQ(c.sources.at("ISARTOR__EXTERNAL_LLM_API_KEY"), "ISARTOR__EXTERNAL_LLM_API_KEY_FILE");

  // A key given directly wins; the file is then not even read.
  c = load_env({{"ISARTOR__EXTERNAL_LLM_API_KEY", "sk-direct"},
                {"ISARTOR__EXTERNAL_LLM_API_KEY_FILE", (dir.path() / "missing").string()}});
  EXPECT_EQ(c.external_llm_api_key, "sk-direct");
  EXPECT_EQ(c.sources.at("ISARTOR__EXTERNAL_LLM_API_KEY"), "env");
}

TEST(ConfigLoad, ApiKeyFileErrors) {
  TempDir dir;
  const std::string missing = (dir.path() / "missing").string();
  EXPECT_EQ(env_error({{"ISARTOR__EXTERNAL_LLM_API_KEY_FILE", missing}}),
            "invalid ISARTOR__EXTERNAL_LLM_API_KEY_FILE=\"" + missing +
                "\": expected a readable file (No such file or directory)");
  EXPECT_THAT(env_error({{"ISARTOR__EXTERNAL_LLM_API_KEY_FILE", dir.path().string()}}),
              HasSubstr("ISARTOR__EXTERNAL_LLM_API_KEY_FILE=\"" + dir.path().string() + "\""));
  const std::string empty = dir.write("empty", "\n");
  EXPECT_THAT(env_error({{"ISARTOR__EXTERNAL_LLM_API_KEY_FILE", empty}}), HasSubstr("it is empty"));
  const std::string spaced = dir.write("spaced", "sk-two words\n");
  const std::string error = env_error({{"ISARTOR__EXTERNAL_LLM_API_KEY_FILE", spaced}});
  EXPECT_THAT(error, HasSubstr("ISARTOR__EXTERNAL_LLM_API_KEY_FILE (value hidden"));
  EXPECT_THAT(error, Not(HasSubstr("words")));
}

TEST(ConfigLoad, AzureNeedsDeploymentAndEndpoint) {
  EXPECT_EQ(env_error({{"ISARTOR__LLM_PROVIDER", "azure"},
                       {"ISARTOR__EXTERNAL_LLM_URL", "https://r.openai.azure.com"}}),
            "missing ISARTOR__AZURE_DEPLOYMENT_ID: required when ISARTOR__LLM_PROVIDER=azure");
  EXPECT_EQ(
      env_error({{"ISARTOR__LLM_PROVIDER", "azure"}, {"ISARTOR__AZURE_DEPLOYMENT_ID", "gpt4o"}}),
      "missing ISARTOR__EXTERNAL_LLM_URL: required when ISARTOR__LLM_PROVIDER=azure");
  const Config c = load_env({{"ISARTOR__LLM_PROVIDER", "azure"},
                             {"ISARTOR__AZURE_DEPLOYMENT_ID", "gpt4o"},
                             {"ISARTOR__EXTERNAL_LLM_URL", "https://r.openai.azure.com"}});
  EXPECT_EQ(c.llm_provider, Provider::kAzure);
  EXPECT_EQ(c.azure_deployment_id, "gpt4o");
  EXPECT_EQ(c.azure_api_version, "2024-10-21");
  // Other providers do not need them.
  EXPECT_EQ(env_error({{"ISARTOR__LLM_PROVIDER", "anthropic"}}), "(no error)");
}

TEST(ConfigDescribe, ListsEveryVariableOnceSortedWithSource) {
  Sources s;
  s.toml = {{"ISARTOR__CACHE_MODE", "exact"}};
  s.env = {{"ISARTOR__HOST_PORT", "[::1]:9090"}};
  const std::string text = describe(load(s));
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::vector<std::string> names;
  for (const std::string& line : lines) names.push_back(line.substr(0, line.find('=')));
  const std::vector<std::string> expected = {
      "ISARTOR__ANTHROPIC_MAX_TOKENS",
      "ISARTOR__AZURE_API_VERSION",
      "ISARTOR__AZURE_DEPLOYMENT_ID",
      "ISARTOR__CACHE_BACKEND",
      "ISARTOR__CACHE_MAX_BYTES",
      "ISARTOR__CACHE_MAX_CAPACITY",
      "ISARTOR__CACHE_MODE",
      "ISARTOR__CACHE_SCOPE",
      "ISARTOR__CACHE_TTL_SECS",
      "ISARTOR__CIRCUIT_BREAKER__FAILURES",
      "ISARTOR__CIRCUIT_BREAKER__OPEN_SECS",
      "ISARTOR__EMBEDDING_SIDECAR__SIDECAR_URL",
      "ISARTOR__EMBEDDING__MODEL_PATH",
      "ISARTOR__EMBEDDING__REPO_ID",
      "ISARTOR__EMBEDDING__REQUIRED",
      "ISARTOR__EMBEDDING__REVISION",
      "ISARTOR__EMBEDDING__THREADS",
      "ISARTOR__ENABLE_MONITORING",
      "ISARTOR__ENABLE_SLM_ROUTER",
      "ISARTOR__EXTERNAL_LLM_API_KEY",
      "ISARTOR__EXTERNAL_LLM_API_KEYS",
      "ISARTOR__EXTERNAL_LLM_API_KEY_FILE",
      "ISARTOR__EXTERNAL_LLM_MODEL",
      "ISARTOR__EXTERNAL_LLM_TOKENS_PER_DAY",
      "ISARTOR__EXTERNAL_LLM_TOKENS_PER_MONTH",
      "ISARTOR__EXTERNAL_LLM_URL",
      "ISARTOR__FALLBACK_PROVIDERS",
      "ISARTOR__GATEWAY_API_KEY",
      "ISARTOR__GATEWAY_API_KEYS",
      "ISARTOR__HEADER_TIMEOUT_SECS",
      "ISARTOR__HF_CACHE_DIR",
      "ISARTOR__HOST_PORT",
      "ISARTOR__IDLE_TIMEOUT_SECS",
      "ISARTOR__KEY_COOLDOWN_SECS",
      "ISARTOR__KEY_STRATEGY",
      "ISARTOR__L3_TIMEOUT_SECS",
      "ISARTOR__LAYER2__CHAT_TEMPLATE",
      "ISARTOR__LAYER2__CLASSIFY_MODE",
      "ISARTOR__LAYER2__CONTEXT_TOKENS",
      "ISARTOR__LAYER2__GGUF_FILENAME",
      "ISARTOR__LAYER2__GPU_LAYERS",
      "ISARTOR__LAYER2__MAX_CLASSIFY_TOKENS",
      "ISARTOR__LAYER2__MAX_GENERATE_TOKENS",
      "ISARTOR__LAYER2__MAX_PROMPT_CHARS",
      "ISARTOR__LAYER2__MAX_QUEUED",
      "ISARTOR__LAYER2__MAX_SEQUENCES",
      "ISARTOR__LAYER2__MODEL_PATH",
      "ISARTOR__LAYER2__REPETITION_PENALTY",
      "ISARTOR__LAYER2__REPO_ID",
      "ISARTOR__LAYER2__REVISION",
      "ISARTOR__LAYER2__SIDECAR_API_KEY",
      "ISARTOR__LAYER2__SIDECAR_MODEL",
      "ISARTOR__LAYER2__SIDECAR_URL",
      "ISARTOR__LAYER2__SINGLE_TURN_ONLY",
      "ISARTOR__LAYER2__TEMPERATURE",
      "ISARTOR__LAYER2__THREADS",
      "ISARTOR__LAYER2__TIMEOUT_SECS",
      "ISARTOR__LLM_PROVIDER",
      "ISARTOR__MAX_BODY_BYTES",
      "ISARTOR__MAX_CONNECTIONS",
      "ISARTOR__MAX_RESPONSE_BYTES",
      "ISARTOR__MAX_UPSTREAM_CONNECTIONS",
      "ISARTOR__MODEL_DIR",
      "ISARTOR__OFFLINE_MODE",
      "ISARTOR__PROVIDER_QUOTA_ACTION",
      "ISARTOR__QUOTA__ACTION",
      "ISARTOR__QUOTA__TOKENS_PER_DAY",
      "ISARTOR__QUOTA__TOKENS_PER_MONTH",
      "ISARTOR__RATE_LIMIT__COUNT_CACHE_HITS",
      "ISARTOR__RATE_LIMIT__REQUESTS_PER_MINUTE",
      "ISARTOR__RATE_LIMIT__TOKENS_PER_MINUTE",
      "ISARTOR__REDIS_URL",
      "ISARTOR__RETRY__DEADLINE_SECS",
      "ISARTOR__RETRY__INITIAL_BACKOFF_MS",
      "ISARTOR__RETRY__MAX_ATTEMPTS",
      "ISARTOR__RETRY__MAX_BACKOFF_MS",
      "ISARTOR__ROUTER_BACKEND",
      "ISARTOR__SEMANTIC_GUARD",
      "ISARTOR__SEMANTIC_INDEX",
      "ISARTOR__SEMANTIC_SINGLE_TURN_ONLY",
      "ISARTOR__SHUTDOWN_GRACE_SECS",
      "ISARTOR__SIMILARITY_THRESHOLD",
      "ISARTOR__WORKER_THREADS",
      "ISARTOR__WRITE_TIMEOUT_SECS",
  };
  EXPECT_EQ(names, expected);
  EXPECT_THAT(lines, testing::Contains("ISARTOR__CACHE_MODE=exact  # isartor.toml"));
  EXPECT_THAT(lines, testing::Contains("ISARTOR__HOST_PORT=[::1]:9090  # env"));
  EXPECT_THAT(lines, testing::Contains("ISARTOR__SIMILARITY_THRESHOLD=0.85  # default"));
  EXPECT_THAT(lines, testing::Contains("ISARTOR__ENABLE_SLM_ROUTER=true  # default"));
  EXPECT_THAT(lines, testing::Contains("ISARTOR__LLM_PROVIDER=openai  # default"));
  EXPECT_THAT(lines, testing::Contains("ISARTOR__GATEWAY_API_KEY=(empty)  # default"));
  EXPECT_THAT(lines, testing::Contains("ISARTOR__MAX_BODY_BYTES=4194304  # default"));
}

TEST(ConfigDescribe, MasksSecrets) {
  const std::string api_key = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst";  // 54 chars
  const std::string gateway_key = "gateway-secret-42";
  const std::string text = describe(load_env(
      {{"ISARTOR__EXTERNAL_LLM_API_KEY", api_key}, {"ISARTOR__GATEWAY_API_KEY", gateway_key}}));
  EXPECT_THAT(text, Not(HasSubstr(api_key)));
  EXPECT_THAT(text, Not(HasSubstr("ABCDEFGH")));
  EXPECT_THAT(text, Not(HasSubstr(gateway_key)));
  EXPECT_THAT(text, HasSubstr("ISARTOR__EXTERNAL_LLM_API_KEY=sk-…(54 chars)  # env\n"));
  EXPECT_THAT(text, HasSubstr("ISARTOR__GATEWAY_API_KEY=gat…(17 chars)  # env\n"));
}

TEST(ConfigDescribe, ShowsKeyReadFromFileMasked) {
  TempDir dir;
  const std::string key = "sk-ant-file-key-000111222333";
  const std::string path = dir.write("key", key + "\n");
  const std::string text = describe(load_env({{"ISARTOR__EXTERNAL_LLM_API_KEY_FILE", path}}));
  EXPECT_THAT(text, Not(HasSubstr(key)));
  EXPECT_THAT(text, HasSubstr("ISARTOR__EXTERNAL_LLM_API_KEY=sk-…(28 chars)  # "
                              "ISARTOR__EXTERNAL_LLM_API_KEY_FILE\n"));
  EXPECT_THAT(text, HasSubstr("ISARTOR__EXTERNAL_LLM_API_KEY_FILE=" + path + "  # env\n"));
}

TEST(ConfigDescribe, MaskSecret) {
  EXPECT_EQ(mask_secret(""), "(empty)");
  EXPECT_EQ(mask_secret("abc"), "…(3 chars)");
  EXPECT_EQ(mask_secret("1234567"), "…(7 chars)");
  EXPECT_EQ(mask_secret("12345678"), "123…(8 chars)");
}

TEST(ConfigEnums, ToStringIsTheConfigSpelling) {
  EXPECT_STREQ(to_string(CacheMode::kBoth), "both");
  EXPECT_STREQ(to_string(CacheMode::kExact), "exact");
  EXPECT_STREQ(to_string(CacheMode::kSemantic), "semantic");
  EXPECT_STREQ(to_string(CacheMode::kNone), "none");
  EXPECT_STREQ(to_string(CacheBackendKind::kMemory), "memory");
  EXPECT_STREQ(to_string(CacheBackendKind::kRedis), "redis");
  EXPECT_STREQ(to_string(RouterBackend::kEmbedded), "embedded");
  EXPECT_STREQ(to_string(RouterBackend::kVllm), "vllm");
  EXPECT_STREQ(to_string(Provider::kOpenAI), "openai");
  EXPECT_STREQ(to_string(Provider::kAzure), "azure");
  EXPECT_STREQ(to_string(Provider::kAnthropic), "anthropic");
  EXPECT_STREQ(to_string(Provider::kXai), "xai");
}

// load_from_process reads the working directory and the real environment: each test runs in a
// scratch directory and restores both.
class LoadFromProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    old_cwd_ = std::filesystem::current_path();
    std::filesystem::current_path(dir_.path());
  }
  void TearDown() override {
    std::filesystem::current_path(old_cwd_);
    for (const std::string& name : set_) unsetenv(name.c_str());
  }
  void set_env(const std::string& name, const std::string& value) {
    setenv(name.c_str(), value.c_str(), 1);
    set_.push_back(name);
  }

  TempDir dir_;

 private:
  std::filesystem::path old_cwd_;
  std::vector<std::string> set_;
};

TEST_F(LoadFromProcess, ReadsTomlDotenvAndEnvironmentInOrder) {
  dir_.write("isartor.toml",
             "cache_mode = \"exact\"\ncache_ttl_secs = 10\n[layer2]\nmax_generate_tokens = 99\n");
  dir_.write(".env", "ISARTOR__CACHE_TTL_SECS=20\nISARTOR__CACHE_MODE=semantic\nOTHER=1\n");
  set_env("ISARTOR__CACHE_MODE", "none");
  const Config c = load_from_process();
  EXPECT_EQ(c.cache_mode, CacheMode::kNone);
  EXPECT_EQ(c.cache_ttl_secs, 20u);
  EXPECT_EQ(c.layer2.max_generate_tokens, 99);
  EXPECT_EQ(c.sources.at("ISARTOR__LAYER2__MAX_GENERATE_TOKENS"), "isartor.toml");
  EXPECT_EQ(c.sources.at("ISARTOR__CACHE_TTL_SECS"), ".env");
  EXPECT_EQ(c.sources.at("ISARTOR__CACHE_MODE"), "env");
}

TEST_F(LoadFromProcess, IsartorConfigPointsAtTheToml) {
  dir_.write("isartor.toml", "cache_mode = \"exact\"\n");
  const std::string other = dir_.write("other.toml", "cache_mode = \"semantic\"\n");
  set_env("ISARTOR_CONFIG", other);
  EXPECT_EQ(load_from_process().cache_mode, CacheMode::kSemantic);
}

TEST_F(LoadFromProcess, MissingIsartorConfigFileIsAnError) {
  set_env("ISARTOR_CONFIG", (dir_.path() / "nope.toml").string());
  try {
    load_from_process();
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot read ISARTOR_CONFIG=\"" +
                                         (dir_.path() / "nope.toml").string() +
                                         "\": No such file or directory");
  }
}

TEST_F(LoadFromProcess, WorksWithoutFilesAndNamesTheFileOnSyntaxErrors) {
  EXPECT_EQ(load_from_process().cache_mode, CacheMode::kBoth);
  dir_.write(".env", "GOOD=1\nbroken line\n");
  try {
    load_from_process();
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), ".env line 2: expected KEY=VALUE");
  }
}

}  // namespace
}  // namespace isartor::config

namespace isartor::config {
namespace {

TEST(ConfigResilience, TheChainIsThePrimaryWithItsPoolThenEachFallback) {
  TempDir dir;
  const std::string key_file = dir.write("key", "sk-from-file-123456\n");
  const Config c = load_env({{"ISARTOR__LLM_PROVIDER", "openai"},
                             {"ISARTOR__EXTERNAL_LLM_API_KEY", "sk-one-123456"},
                             {"ISARTOR__EXTERNAL_LLM_API_KEYS", " sk-two-123456 , sk-one-123456,"},
                             {"ISARTOR__KEY_STRATEGY", "priority"},
                             {"ISARTOR__FALLBACK_PROVIDERS",
                              R"([{"provider": "anthropic", "api_keys": ["sk-a-123456"], "model": "claude-x"},
                                  {"provider": "openai", "url": "https://eu.example/v1", "api_key_file": ")" +
                                  key_file + R"("}])"}});
  EXPECT_EQ(c.resilience.key_strategy, KeyStrategy::kPriority);
  const auto chain = upstream_targets(c);
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[0].name, "openai");
  EXPECT_THAT(chain[0].api_keys, ElementsAre("sk-one-123456", "sk-two-123456"));  // duplicates once
  EXPECT_EQ(chain[1].name, "anthropic");
  EXPECT_EQ(chain[1].model, "claude-x");
  EXPECT_EQ(chain[2].name, "openai-2");  // two entries of one provider told apart
  EXPECT_EQ(chain[2].url, "https://eu.example/v1");
  EXPECT_THAT(chain[2].api_keys, ElementsAre("sk-from-file-123456"));
  const std::string shown = describe(c);
  EXPECT_THAT(shown, Not(HasSubstr("sk-a-123456")));
  EXPECT_THAT(shown, Not(HasSubstr("sk-two-123456")));
  EXPECT_THAT(shown, HasSubstr("ISARTOR__EXTERNAL_LLM_API_KEYS=sk-…(13 chars),sk-…(13 chars)"));
}

TEST(ConfigResilience, ABadFallbackEntryIsOneLineWithoutItsKey) {
  EXPECT_THAT(env_error({{"ISARTOR__FALLBACK_PROVIDERS", "{\"provider\": \"openai\"}"}}), HasSubstr("not a JSON list"));
  EXPECT_THAT(env_error({{"ISARTOR__FALLBACK_PROVIDERS", R"([{"provider": "openai", "api_key": "sk bad key"}])"}}),
              ::testing::AllOf(HasSubstr("entry 1 key"), Not(HasSubstr("sk bad key"))));
  EXPECT_THAT(env_error({{"ISARTOR__FALLBACK_PROVIDERS", R"([{"provider": "openai"}, {"provider": "xai", "model": 3}])"}}),
              HasSubstr("entry 2 has a non-string \"model\""));
  EXPECT_THAT(env_error({{"ISARTOR__FALLBACK_PROVIDERS", R"([{"provider": "openai", "url": "ftp://x"}])"}}),
              HasSubstr("\"url\""));
  EXPECT_THAT(env_error({{"ISARTOR__RETRY__MAX_ATTEMPTS", "0"}}), HasSubstr("an integer in 1..20"));
  EXPECT_THAT(env_error({{"ISARTOR__KEY_STRATEGY", "random"}}), HasSubstr("one of round_robin, priority"));
}

}  // namespace
}  // namespace isartor::config
