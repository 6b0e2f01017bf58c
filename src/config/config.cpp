#include "config/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "config/text.h"
#include "core/sha256.h"

extern char** environ;

namespace isartor::config {

namespace {

constexpr std::string_view kPrefix = "ISARTOR__";
constexpr std::string_view kApiKeyName = "ISARTOR__EXTERNAL_LLM_API_KEY";
constexpr std::string_view kApiKeyFileName = "ISARTOR__EXTERNAL_LLM_API_KEY_FILE";
// The spec's single-underscore spelling of ISARTOR__HF_CACHE_DIR.
constexpr std::string_view kHfCacheAlias = "ISARTOR_HF_CACHE_DIR";
constexpr std::string_view kHfCacheName = "ISARTOR__HF_CACHE_DIR";

template <class E>
struct EnumName {
  std::string_view name;
  E value;
};

constexpr std::array<EnumName<CacheMode>, 4> kCacheModes{{{"both", CacheMode::kBoth},
                                                          {"exact", CacheMode::kExact},
                                                          {"semantic", CacheMode::kSemantic},
                                                          {"none", CacheMode::kNone}}};
constexpr std::array<EnumName<CacheBackendKind>, 2> kCacheBackends{
    {{"memory", CacheBackendKind::kMemory}, {"redis", CacheBackendKind::kRedis}}};
constexpr std::array<EnumName<CacheScope>, 2> kCacheScopes{
    {{"global", CacheScope::kGlobal}, {"session", CacheScope::kSession}}};
constexpr std::array<EnumName<SemanticIndex>, 3> kSemanticIndexes{
    {{"auto", SemanticIndex::kAuto}, {"flat", SemanticIndex::kFlat}, {"hnsw", SemanticIndex::kHnsw}}};
constexpr std::array<EnumName<RouterBackend>, 2> kRouterBackends{
    {{"embedded", RouterBackend::kEmbedded}, {"vllm", RouterBackend::kVllm}}};
constexpr std::array<EnumName<ClassifyMode>, 2> kClassifyModes{
    {{"logits", ClassifyMode::kLogits}, {"grammar", ClassifyMode::kGrammar}}};
constexpr std::array<EnumName<Provider>, 4> kProviders{{{"openai", Provider::kOpenAI},
                                                        {"azure", Provider::kAzure},
                                                        {"anthropic", Provider::kAnthropic},
                                                        {"xai", Provider::kXai}}};

constexpr std::array<EnumName<QuotaAction>, 2> kQuotaActions{
    {{"block", QuotaAction::kBlock}, {"warn", QuotaAction::kWarn}}};
constexpr std::array<EnumName<QuotaAction>, 3> kProviderQuotaActions{
    {{"fallback", QuotaAction::kFallback}, {"block", QuotaAction::kBlock}, {"warn", QuotaAction::kWarn}}};
constexpr std::array<EnumName<KeyStrategy>, 2> kKeyStrategies{
    {{"round_robin", KeyStrategy::kRoundRobin}, {"priority", KeyStrategy::kPriority}}};

template <class E, size_t N>
const char* enum_name(const std::array<EnumName<E>, N>& names, E value) {
  for (const auto& entry : names) {
    if (entry.value == value) return entry.name.data();
  }
  return "?";
}

// One line for every bad value; a secret's value is never echoed, only its length.
[[noreturn]] void reject(std::string_view name, std::string_view raw, bool secret,
                         std::string_view expected) {
  if (secret) {
    throw ConfigError(fmt::format("invalid {} (value hidden, {} chars): expected {}", name,
                                  raw.size(), expected));
  }
  throw ConfigError(fmt::format("invalid {}={}: expected {}", name, detail::quote(raw), expected));
}

template <class T>
T parse_integer(std::string_view name, std::string_view raw, T min, T max) {
  const std::string expected = max == std::numeric_limits<T>::max()
                                   ? fmt::format("an integer >= {}", min)
                                   : fmt::format("an integer in {}..{}", min, max);
  const std::string_view text = detail::trim(raw);
  // Parsed as unsigned so a sign, like any other garbage, fails; out of range covers overflow.
  unsigned long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      value < static_cast<unsigned long long>(min) ||
      value > static_cast<unsigned long long>(max)) {
    reject(name, raw, false, expected);
  }
  return static_cast<T>(value);
}

double parse_number(std::string_view name, std::string_view raw, double min, double max) {
  const std::string expected = max == std::numeric_limits<double>::max()
                                   ? fmt::format("a number >= {}", min)
                                   : fmt::format("a number in [{}, {}]", min, max);
  const std::string_view text = detail::trim(raw);
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(value) || value < min || value > max) {
    reject(name, raw, false, expected);
  }
  return value;
}

bool parse_bool(std::string_view name, std::string_view raw) {
  const std::string word = detail::to_lower(detail::trim(raw));
  if (word == "true" || word == "1" || word == "yes" || word == "on") return true;
  if (word == "false" || word == "0" || word == "no" || word == "off") return false;
  reject(name, raw, false, "one of true, false, 1, 0, yes, no, on, off");
}

template <class E, size_t N>
E parse_enum(std::string_view name, std::string_view raw, const std::array<EnumName<E>, N>& names) {
  const std::string word = detail::to_lower(detail::trim(raw));
  for (const auto& entry : names) {
    if (entry.name == word) return entry.value;
  }
  std::string accepted;
  for (const auto& entry : names) {
    if (!accepted.empty()) accepted += ", ";
    accepted += entry.name;
  }
  reject(name, raw, false, "one of " + accepted);
}

// An API key travels in an HTTP header: a blank or control character would corrupt (or inject
// into) the request, so it is refused here rather than at the first call.
void check_secret(std::string_view name, std::string_view value) {
  for (char c : value) {
    if (c <= ' ' || c > '~') reject(name, value, true, "printable ASCII without spaces");
  }
}

// Empty means "not set"; otherwise the value must start with one of `schemes`.
void check_url(std::string_view name, std::string_view value,
               const std::vector<std::string_view>& schemes) {
  if (value.empty()) return;
  for (std::string_view scheme : schemes) {
    if (value.starts_with(scheme) && value.size() > scheme.size() &&
        value.find_first_of(" \t\r\n") == std::string_view::npos) {
      return;
    }
  }
  std::string accepted;
  for (std::string_view scheme : schemes) {
    if (!accepted.empty()) accepted += " or ";
    accepted += fmt::format("{}...", scheme);
  }
  reject(name, value, false, "a URL " + accepted);
}

// A key kept in a file (a mounted secret): its first line's content, trailing blanks dropped.
std::string read_key_file(std::string_view name, const std::string& path) {
  auto content = detail::read_file(path);
  if (!content) reject(name, path, false, "a readable file (" + content.error() + ")");
  const std::string_view key = std::string_view(*content).substr(0, content->find_last_not_of(" \t\r\n") + 1);
  if (key.empty()) reject(name, path, false, "a file containing the API key (it is empty)");
  check_secret(name, key);
  return std::string(key);
}

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// "host:port", "[v6]:port", ":port" or "port"; an empty host means all interfaces.
HostPort parse_host_port(std::string_view name, std::string_view raw) {
  constexpr std::string_view kExpected =
      "host:port with port 1..65535 (e.g. 0.0.0.0:8080, [::1]:8080, :8080)";
  const std::string_view text = detail::trim(raw);
  std::string_view host;
  std::string_view port = text;
  if (text.starts_with('[')) {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos || close == 1) reject(name, raw, false, kExpected);
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else if (const size_t colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    // An unbracketed IPv6 address is ambiguous ("::1:8080"), so it must be bracketed.
    if (host.find(':') != std::string_view::npos) reject(name, raw, false, kExpected);
  }
  if (host.find_first_of(" \t[]/") != std::string_view::npos) reject(name, raw, false, kExpected);
  uint16_t port_number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || port_number == 0) {
    reject(name, raw, false, kExpected);
  }
  return {host.empty() ? std::string("0.0.0.0") : std::string(host), port_number};
}

// One row of the variable table: how to parse a raw value into the Config and how to show it.
struct Field {
  std::string_view name;
  bool secret = false;                                   // describe() masks it
  std::function<void(Config&, const std::string&)> set;  // throws ConfigError
  std::function<std::string(const Config&)> get;
};

// Accessors usable on both Config& and const Config&, for top-level and nested members.
template <class T>
auto at(T Config::*member) {
  return [member](auto& config) -> auto& { return config.*member; };
}
template <class S, class T>
auto at(S Config::*section, T S::*member) {
  return [section, member](auto& config) -> auto& { return (config.*section).*member; };
}

template <class S, class T, class U>
auto at(S Config::*section, T S::*sub, U T::*member) {
  return [section, sub, member](auto& config) -> auto& { return ((config.*section).*sub).*member; };
}

template <class Access>
using MemberOf = std::remove_cvref_t<std::invoke_result_t<Access, Config&>>;

template <class Access>
Field text_field(std::string_view name, Access access) {
  return {name, false, [access](Config& c, const std::string& v) { access(c) = v; },
          [access](const Config& c) { return access(c); }};
}

template <class Access>
Field secret_field(std::string_view name, Access access) {
  return {name, true,
          [name, access](Config& c, const std::string& v) {
            check_secret(name, v);
            access(c) = v;
          },
          [access](const Config& c) { return access(c); }};
}

template <class Access>
Field url_field(std::string_view name, Access access,
                std::vector<std::string_view> schemes = {"http://", "https://"}) {
  return {name, false,
          [name, access, schemes](Config& c, const std::string& v) {
            check_url(name, v, schemes);
            access(c) = v;
          },
          [access](const Config& c) { return access(c); }};
}

template <class Access>
Field integer_field(std::string_view name, Access access, MemberOf<Access> min,
                    MemberOf<Access> max = std::numeric_limits<MemberOf<Access>>::max()) {
  return {name, false,
          [name, access, min, max](Config& c, const std::string& v) {
            access(c) = parse_integer(name, v, min, max);
          },
          [access](const Config& c) { return fmt::format("{}", access(c)); }};
}

template <class Access>
Field number_field(std::string_view name, Access access, double min,
                   double max = std::numeric_limits<double>::max()) {
  return {name, false,
          [name, access, min, max](Config& c, const std::string& v) {
            access(c) = parse_number(name, v, min, max);
          },
          [access](const Config& c) { return fmt::format("{}", access(c)); }};
}

template <class Access>
Field bool_field(std::string_view name, Access access) {
  return {name, false,
          [name, access](Config& c, const std::string& v) { access(c) = parse_bool(name, v); },
          [access](const Config& c) { return std::string(access(c) ? "true" : "false"); }};
}

template <class Access, class E, size_t N>
Field enum_field(std::string_view name, Access access, const std::array<EnumName<E>, N>& names) {
  return {name, false,
          [name, access, &names](Config& c, const std::string& v) {
            access(c) = parse_enum(name, v, names);
          },
          [access](const Config& c) { return std::string(to_string(access(c))); }};
}

Field host_port_field() {
  constexpr std::string_view kName = "ISARTOR__HOST_PORT";
  return {kName, false,
          [kName](Config& c, const std::string& v) {
            HostPort parsed = parse_host_port(kName, v);
            c.host = std::move(parsed.host);
            c.port = parsed.port;
          },
          [](const Config& c) {
            const bool v6 = c.host.find(':') != std::string::npos;
            return v6 ? fmt::format("[{}]:{}", c.host, c.port)
                      : fmt::format("{}:{}", c.host, c.port);
          }};
}

std::string masked_list(const std::vector<std::string>& keys) {
  std::string out;
  for (const std::string& key : keys) out += (out.empty() ? "" : ",") + mask_secret(key);
  return out;
}

// ISARTOR__EXTERNAL_LLM_API_KEYS: comma-separated keys, blanks around them ignored.
Field key_list_field(std::string_view name, std::vector<std::string> ResilienceConfig::*member) {
  return {name, false,
          [name, member](Config& c, const std::string& v) {
            std::vector<std::string> keys;
            // A TOML list arrives as its JSON text.
            if (detail::trim(v).starts_with('[')) {
              const nlohmann::json list = nlohmann::json::parse(v, nullptr, false);
              if (!list.is_array() || !std::ranges::all_of(list, [](const auto& k) { return k.is_string(); })) {
                reject(name, v, true, "comma-separated keys or a list of strings");
              }
              for (const auto& key : list) {
                if (key.get<std::string>().empty()) reject(name, v, true, "keys that are not empty");
                check_secret(name, key.get<std::string>());
                keys.push_back(key.get<std::string>());
              }
              c.resilience.*member = std::move(keys);
              return;
            }
            std::string_view rest = v;
            while (!rest.empty()) {
              const size_t comma = rest.find(',');
              const std::string_view key = detail::trim(rest.substr(0, comma));
              if (!key.empty()) {
                check_secret(name, key);
                keys.emplace_back(key);
              }
              rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            }
            c.resilience.*member = std::move(keys);
          },
          [member](const Config& c) { return masked_list(c.resilience.*member); }};
}

// Checks one object of a JSON list variable; errors name the variable, the entry and its shape.
struct ListEntry {
  std::string_view variable;
  std::string where;        // "entry 2"
  std::string_view shape;   // what an entry looks like
  const nlohmann::json& json;

  [[noreturn]] void fail(const std::string& why) const {
    throw ConfigError(fmt::format("invalid {}: {} {}; expected {}", variable, where, why, shape));
  }
  // The field as a whole number >= 0; 0 when absent.
  uint64_t whole_number(const char* field) const {
    const auto it = json.find(field);
    if (it == json.end()) return 0;
    if (!it->is_number_unsigned()) fail(fmt::format("has a \"{}\" that is not a whole number >= 0", field));
    return it->get<uint64_t>();
  }
  // An object whose fields are all in `known` (a typo must not be ignored).
  template <std::size_t N>
  void check_fields(const std::array<std::string_view, N>& known) const {
    if (!json.is_object()) fail("is not an object");
    for (const auto& [field, value] : json.items()) {
      if (std::ranges::find(known, field) == known.end()) fail(fmt::format("has an unknown field \"{}\"", field));
    }
  }
};

// One entry of ISARTOR__FALLBACK_PROVIDERS; `where` names it in errors ("entry 2").
UpstreamTarget parse_upstream_target(std::string_view name, const nlohmann::json& entry, const std::string& where) {
  const ListEntry check{name, where,
                        "a JSON list of objects {\"provider\", \"url\", \"api_key\" | \"api_keys\" | "
                        "\"api_key_file\", \"model\", \"name\", \"azure_deployment_id\", \"tokens_per_day\", "
                        "\"tokens_per_month\"}",
                        entry};
  check.check_fields(std::array<std::string_view, 10>{"provider", "url", "api_key", "api_keys", "api_key_file", "model",
                                                      "name", "azure_deployment_id", "tokens_per_day",
                                                      "tokens_per_month"});
  auto bad = [&](const std::string& why) { check.fail(why); };
  auto text = [&](const char* field) -> std::string {
    const auto it = entry.find(field);
    if (it == entry.end()) return {};
    if (!it->is_string()) bad(fmt::format("has a non-string \"{}\"", field));
    return it->get<std::string>();
  };
  UpstreamTarget target;
  const std::string provider = text("provider");
  if (provider.empty()) bad("has no \"provider\"");
  target.provider = parse_enum(fmt::format("{} {} \"provider\"", name, where), provider, kProviders);
  target.url = text("url");
  check_url(fmt::format("{} {} \"url\"", name, where), target.url, {"http://", "https://"});
  const std::string key_name = fmt::format("{} {} key", name, where);
  if (std::string key = text("api_key"); !key.empty()) {
    check_secret(key_name, key);
    target.api_keys.push_back(std::move(key));
  }
  if (const auto it = entry.find("api_keys"); it != entry.end()) {
    if (!it->is_array()) bad("has an \"api_keys\" that is not a list of strings");
    for (const auto& key : *it) {
      if (!key.is_string() || key.get<std::string>().empty()) bad("has an \"api_keys\" that is not a list of non-empty strings");
      check_secret(key_name, key.get<std::string>());
      target.api_keys.push_back(key.get<std::string>());
    }
  }
  if (const std::string path = text("api_key_file"); !path.empty()) target.api_keys.push_back(read_key_file(key_name, path));
  target.model = text("model");
  target.name = text("name");
  target.azure_deployment_id = text("azure_deployment_id");
  target.tokens_per_day = check.whole_number("tokens_per_day");
  target.tokens_per_month = check.whole_number("tokens_per_month");
  if (target.provider == Provider::kAzure && (target.url.empty() || target.azure_deployment_id.empty())) {
    bad("is azure without \"url\" and \"azure_deployment_id\"");
  }
  return target;
}

// A JSON list of objects, each checked by `entry` (which throws ConfigError); the raw value is
// never echoed since it holds keys.
template <class T, class Parse>
std::vector<T> parse_json_list(std::string_view name, const std::string& value, Parse entry) {
  std::vector<T> out;
  if (detail::trim(value).empty()) return out;
  const nlohmann::json list = nlohmann::json::parse(value, nullptr, false);
  if (list.is_discarded() || !list.is_array()) {
    throw ConfigError(fmt::format("invalid {}: not a JSON list (value hidden: it may hold keys)", name));
  }
  for (std::size_t i = 0; i < list.size(); ++i) out.push_back(entry(list[i], fmt::format("entry {}", i + 1)));
  return out;
}

// One entry of ISARTOR__GATEWAY_API_KEYS.
GatewayKey parse_gateway_key(std::string_view name, const nlohmann::json& entry, const std::string& where) {
  const ListEntry check{name, where,
                        "a JSON list of objects {\"name\", \"key\" | \"key_sha256\" (64 lower-case hex), "
                        "\"requests_per_minute\", \"tokens_per_minute\", \"tokens_per_day\", \"tokens_per_month\", "
                        "\"admin\"}",
                        entry};
  check.check_fields(std::array<std::string_view, 8>{"name", "key", "key_sha256", "requests_per_minute",
                                                     "tokens_per_minute", "tokens_per_day", "tokens_per_month",
                                                     "admin"});
  auto bad = [&](const std::string& why) { check.fail(why); };
  GatewayKey key;
  const auto name_it = entry.find("name");
  if (name_it == entry.end() || !name_it->is_string() || name_it->get<std::string>().empty()) bad("has no \"name\"");
  key.name = name_it->get<std::string>();
  const auto clear = entry.find("key");
  const auto digest = entry.find("key_sha256");
  if ((clear == entry.end()) == (digest == entry.end())) bad("needs exactly one of \"key\" and \"key_sha256\"");
  if (clear != entry.end()) {
    if (!clear->is_string() || clear->get<std::string>().empty()) bad("has a \"key\" that is not a string");
    check_secret(fmt::format("{} {} key", name, where), clear->get<std::string>());
    key.digest = sha256(clear->get<std::string>());
  } else {
    const auto parsed = digest->is_string() ? digest_from_hex(digest->get<std::string>()) : std::nullopt;
    if (!parsed) bad("has a \"key_sha256\" that is not 64 lower-case hex digits");
    key.digest = *parsed;
  }
  key.limits.requests_per_minute = check.whole_number("requests_per_minute");
  key.limits.tokens_per_minute = check.whole_number("tokens_per_minute");
  key.limits.tokens_per_day = check.whole_number("tokens_per_day");
  key.limits.tokens_per_month = check.whole_number("tokens_per_month");
  if (const auto admin = entry.find("admin"); admin != entry.end()) {
    if (!admin->is_boolean()) bad("has an \"admin\" that is not true or false");
    key.admin = admin->get<bool>();
  }
  return key;
}

Field gateway_keys_field() {
  constexpr std::string_view kName = "ISARTOR__GATEWAY_API_KEYS";
  return {kName, false,
          [kName](Config& c, const std::string& v) {
            c.gateway_api_keys = parse_json_list<GatewayKey>(kName, v, [kName](const nlohmann::json& e, const std::string& where) {
              return parse_gateway_key(kName, e, where);
            });
            // "default" is ISARTOR__GATEWAY_API_KEY's, "anonymous" everyone's without keys.
            std::set<std::string> names{"default", "anonymous"};
            std::set<Sha256Digest> digests;
            for (const GatewayKey& key : c.gateway_api_keys) {
              if (!names.insert(key.name).second) {
                throw ConfigError(fmt::format("invalid {}: the name \"{}\" is used twice or reserved", kName, key.name));
              }
              if (!digests.insert(key.digest).second) {
                throw ConfigError(fmt::format("invalid {}: \"{}\" has the key of another entry", kName, key.name));
              }
            }
          },
          [](const Config& c) {
            nlohmann::json list = nlohmann::json::array();
            for (const GatewayKey& k : c.gateway_api_keys) {
              list.push_back({{"name", k.name},
                              {"key_sha256", to_hex(k.digest, 4) + "…"},
                              {"requests_per_minute", k.limits.requests_per_minute},
                              {"tokens_per_minute", k.limits.tokens_per_minute},
                              {"tokens_per_day", k.limits.tokens_per_day},
                              {"tokens_per_month", k.limits.tokens_per_month},
                              {"admin", k.admin}});
            }
            return list.empty() ? std::string() : list.dump();
          }};
}

Field fallback_providers_field() {
  constexpr std::string_view kName = "ISARTOR__FALLBACK_PROVIDERS";
  return {kName, false,
          [kName](Config& c, const std::string& v) {
            c.resilience.fallback_providers = parse_json_list<UpstreamTarget>(
                kName, v, [kName](const nlohmann::json& e, const std::string& where) {
                  return parse_upstream_target(kName, e, where);
                });
          },
          [](const Config& c) {
            nlohmann::json list = nlohmann::json::array();
            for (const UpstreamTarget& t : c.resilience.fallback_providers) {
              nlohmann::json entry = {{"provider", to_string(t.provider)}, {"keys", masked_list(t.api_keys)}};
              if (!t.name.empty()) entry["name"] = t.name;
              if (!t.url.empty()) entry["url"] = t.url;
              if (!t.model.empty()) entry["model"] = t.model;
              if (!t.azure_deployment_id.empty()) entry["azure_deployment_id"] = t.azure_deployment_id;
              if (t.tokens_per_day) entry["tokens_per_day"] = t.tokens_per_day;
              if (t.tokens_per_month) entry["tokens_per_month"] = t.tokens_per_month;
              list.push_back(std::move(entry));
            }
            return list.empty() ? std::string() : list.dump();
          }};
}

// Every known variable, once. Order is the order values are validated in.
const std::vector<Field>& fields() {
  static const std::vector<Field> table = [] {
    return std::vector<Field>{
        host_port_field(),
        secret_field("ISARTOR__GATEWAY_API_KEY", at(&Config::gateway_api_key)),
        gateway_keys_field(),
        integer_field("ISARTOR__RATE_LIMIT__REQUESTS_PER_MINUTE",
                      at(&Config::rate_limit, &RateLimitConfig::defaults, &RateLimits::requests_per_minute), uint64_t{0}),
        integer_field("ISARTOR__RATE_LIMIT__TOKENS_PER_MINUTE",
                      at(&Config::rate_limit, &RateLimitConfig::defaults, &RateLimits::tokens_per_minute), uint64_t{0}),
        bool_field("ISARTOR__RATE_LIMIT__COUNT_CACHE_HITS", at(&Config::rate_limit, &RateLimitConfig::count_cache_hits)),
        integer_field("ISARTOR__QUOTA__TOKENS_PER_DAY",
                      at(&Config::rate_limit, &RateLimitConfig::defaults, &RateLimits::tokens_per_day), uint64_t{0}),
        integer_field("ISARTOR__QUOTA__TOKENS_PER_MONTH",
                      at(&Config::rate_limit, &RateLimitConfig::defaults, &RateLimits::tokens_per_month), uint64_t{0}),
        enum_field("ISARTOR__QUOTA__ACTION", at(&Config::rate_limit, &RateLimitConfig::quota_action), kQuotaActions),
        integer_field("ISARTOR__MAX_BODY_BYTES", at(&Config::max_body_bytes), uint64_t{1}),
        integer_field("ISARTOR__MAX_RESPONSE_BYTES", at(&Config::max_response_bytes), uint64_t{1}),
        integer_field("ISARTOR__HEADER_TIMEOUT_SECS", at(&Config::header_timeout_secs), 1),
        integer_field("ISARTOR__IDLE_TIMEOUT_SECS", at(&Config::idle_timeout_secs), 1),
        integer_field("ISARTOR__WRITE_TIMEOUT_SECS", at(&Config::write_timeout_secs), 1),
        integer_field("ISARTOR__SHUTDOWN_GRACE_SECS", at(&Config::shutdown_grace_secs), 0),
        integer_field("ISARTOR__WORKER_THREADS", at(&Config::worker_threads), 0, 1024),
        integer_field("ISARTOR__MAX_CONNECTIONS", at(&Config::max_connections), uint64_t{0}),
        integer_field("ISARTOR__MAX_UPSTREAM_CONNECTIONS", at(&Config::max_upstream_connections), uint64_t{0}),
        enum_field("ISARTOR__CACHE_MODE", at(&Config::cache_mode), kCacheModes),
        enum_field("ISARTOR__CACHE_BACKEND", at(&Config::cache_backend), kCacheBackends),
        url_field("ISARTOR__REDIS_URL", at(&Config::redis_url), {"redis://", "rediss://"}),
        integer_field("ISARTOR__CACHE_TTL_SECS", at(&Config::cache_ttl_secs), uint64_t{0}),
        enum_field("ISARTOR__CACHE_SCOPE", at(&Config::cache_scope), kCacheScopes),
        integer_field("ISARTOR__CACHE_MAX_CAPACITY", at(&Config::cache_max_capacity), uint64_t{0}),
        integer_field("ISARTOR__CACHE_MAX_BYTES", at(&Config::cache_max_bytes), uint64_t{0}),
        number_field("ISARTOR__SIMILARITY_THRESHOLD", at(&Config::similarity_threshold), 0.0, 1.0),
        bool_field("ISARTOR__SEMANTIC_SINGLE_TURN_ONLY", at(&Config::semantic_single_turn_only)),
        bool_field("ISARTOR__SEMANTIC_GUARD", at(&Config::semantic_guard)),
        enum_field("ISARTOR__SEMANTIC_INDEX", at(&Config::semantic_index), kSemanticIndexes),
        enum_field("ISARTOR__ROUTER_BACKEND", at(&Config::router_backend), kRouterBackends),
        bool_field("ISARTOR__ENABLE_SLM_ROUTER", at(&Config::enable_slm_router)),
        url_field("ISARTOR__LAYER2__SIDECAR_URL", at(&Config::layer2, &Layer2Config::sidecar_url)),
        text_field("ISARTOR__LAYER2__SIDECAR_MODEL", at(&Config::layer2, &Layer2Config::sidecar_model)),
        secret_field("ISARTOR__LAYER2__SIDECAR_API_KEY", at(&Config::layer2, &Layer2Config::sidecar_api_key)),
        text_field("ISARTOR__LAYER2__REPO_ID", at(&Config::layer2, &Layer2Config::repo_id)),
        text_field("ISARTOR__LAYER2__GGUF_FILENAME",
                   at(&Config::layer2, &Layer2Config::gguf_filename)),
        text_field("ISARTOR__LAYER2__REVISION", at(&Config::layer2, &Layer2Config::revision)),
        text_field("ISARTOR__LAYER2__MODEL_PATH", at(&Config::layer2, &Layer2Config::model_path)),
        text_field("ISARTOR__LAYER2__CHAT_TEMPLATE", at(&Config::layer2, &Layer2Config::chat_template)),
        enum_field("ISARTOR__LAYER2__CLASSIFY_MODE", at(&Config::layer2, &Layer2Config::classify_mode),
                   kClassifyModes),
        integer_field("ISARTOR__LAYER2__MAX_CLASSIFY_TOKENS",
                      at(&Config::layer2, &Layer2Config::max_classify_tokens), 1),
        integer_field("ISARTOR__LAYER2__MAX_GENERATE_TOKENS",
                      at(&Config::layer2, &Layer2Config::max_generate_tokens), 1),
        number_field("ISARTOR__LAYER2__TEMPERATURE",
                     at(&Config::layer2, &Layer2Config::temperature), 0.0),
        number_field("ISARTOR__LAYER2__REPETITION_PENALTY",
                     at(&Config::layer2, &Layer2Config::repetition_penalty), 0.0),
        integer_field("ISARTOR__LAYER2__GPU_LAYERS", at(&Config::layer2, &Layer2Config::gpu_layers),
                      0),
        integer_field("ISARTOR__LAYER2__MAX_PROMPT_CHARS",
                      at(&Config::layer2, &Layer2Config::max_prompt_chars), 1),
        bool_field("ISARTOR__LAYER2__SINGLE_TURN_ONLY", at(&Config::layer2, &Layer2Config::single_turn_only)),
        integer_field("ISARTOR__LAYER2__TIMEOUT_SECS", at(&Config::layer2, &Layer2Config::timeout_secs), 0),
        integer_field("ISARTOR__LAYER2__CONTEXT_TOKENS", at(&Config::layer2, &Layer2Config::context_tokens), 16),
        integer_field("ISARTOR__LAYER2__MAX_SEQUENCES", at(&Config::layer2, &Layer2Config::max_sequences), 1, 256),
        integer_field("ISARTOR__LAYER2__MAX_QUEUED", at(&Config::layer2, &Layer2Config::max_queued), 1),
        integer_field("ISARTOR__LAYER2__THREADS", at(&Config::layer2, &Layer2Config::threads), 0, 1024),
        text_field("ISARTOR__EMBEDDING__REPO_ID",
                   at(&Config::embedding, &EmbeddingConfig::repo_id)),
        text_field("ISARTOR__EMBEDDING__MODEL_PATH",
                   at(&Config::embedding, &EmbeddingConfig::model_path)),
        text_field("ISARTOR__EMBEDDING__REVISION",
                   at(&Config::embedding, &EmbeddingConfig::revision)),
        bool_field("ISARTOR__EMBEDDING__REQUIRED", at(&Config::embedding, &EmbeddingConfig::required)),
        integer_field("ISARTOR__EMBEDDING__THREADS", at(&Config::embedding, &EmbeddingConfig::threads), 0,
                      1024),
        url_field("ISARTOR__EMBEDDING_SIDECAR__SIDECAR_URL",
                  at(&Config::embedding, &EmbeddingConfig::sidecar_url)),
        text_field(kHfCacheName, at(&Config::hf_cache_dir)),
        bool_field("ISARTOR__OFFLINE_MODE", at(&Config::offline_mode)),
        text_field("ISARTOR__MODEL_DIR", at(&Config::model_dir)),
        enum_field("ISARTOR__LLM_PROVIDER", at(&Config::llm_provider), kProviders),
        secret_field(kApiKeyName, at(&Config::external_llm_api_key)),
        text_field(kApiKeyFileName, at(&Config::external_llm_api_key_file)),
        text_field("ISARTOR__EXTERNAL_LLM_MODEL", at(&Config::external_llm_model)),
        url_field("ISARTOR__EXTERNAL_LLM_URL", at(&Config::external_llm_url)),
        integer_field("ISARTOR__L3_TIMEOUT_SECS", at(&Config::l3_timeout_secs), 1),
        text_field("ISARTOR__AZURE_DEPLOYMENT_ID", at(&Config::azure_deployment_id)),
        text_field("ISARTOR__AZURE_API_VERSION", at(&Config::azure_api_version)),
        integer_field("ISARTOR__ANTHROPIC_MAX_TOKENS", at(&Config::anthropic_max_tokens), 1),
        fallback_providers_field(),
        key_list_field("ISARTOR__EXTERNAL_LLM_API_KEYS", &ResilienceConfig::more_api_keys),
        enum_field("ISARTOR__KEY_STRATEGY", at(&Config::resilience, &ResilienceConfig::key_strategy), kKeyStrategies),
        integer_field("ISARTOR__KEY_COOLDOWN_SECS", at(&Config::resilience, &ResilienceConfig::key_cooldown_secs), 0),
        integer_field("ISARTOR__RETRY__MAX_ATTEMPTS", at(&Config::resilience, &ResilienceConfig::max_attempts), 1, 20),
        integer_field("ISARTOR__RETRY__INITIAL_BACKOFF_MS",
                      at(&Config::resilience, &ResilienceConfig::initial_backoff_ms), 0),
        integer_field("ISARTOR__RETRY__MAX_BACKOFF_MS", at(&Config::resilience, &ResilienceConfig::max_backoff_ms), 0),
        integer_field("ISARTOR__RETRY__DEADLINE_SECS", at(&Config::resilience, &ResilienceConfig::deadline_secs), 1),
        integer_field("ISARTOR__CIRCUIT_BREAKER__FAILURES",
                      at(&Config::resilience, &ResilienceConfig::breaker_failures), 0),
        integer_field("ISARTOR__CIRCUIT_BREAKER__OPEN_SECS",
                      at(&Config::resilience, &ResilienceConfig::breaker_open_secs), 1),
        integer_field("ISARTOR__EXTERNAL_LLM_TOKENS_PER_DAY",
                      at(&Config::resilience, &ResilienceConfig::primary_tokens_per_day), uint64_t{0}),
        integer_field("ISARTOR__EXTERNAL_LLM_TOKENS_PER_MONTH",
                      at(&Config::resilience, &ResilienceConfig::primary_tokens_per_month), uint64_t{0}),
        enum_field("ISARTOR__PROVIDER_QUOTA_ACTION", at(&Config::resilience, &ResilienceConfig::provider_quota_action),
                   kProviderQuotaActions),
        bool_field("ISARTOR__ENABLE_MONITORING", at(&Config::enable_monitoring)),
    };
  }();
  return table;
}

const Field* find_field(std::string_view name) {
  for (const Field& field : fields()) {
    if (field.name == name) return &field;
  }
  return nullptr;
}

struct Setting {
  std::string value;
  std::string source;
};

// Folds one source into `settings` (later sources override) and collects unknown ISARTOR__ names.
void merge(const std::map<std::string, std::string>& source, std::string_view source_name,
           std::map<std::string, Setting>& settings, std::set<std::string>& unknown) {
  std::map<std::string, std::string> ours;
  const std::string* alias = nullptr;
  for (const auto& [raw_name, value] : source) {
    std::string name = detail::to_upper(raw_name);
    if (name == kHfCacheAlias) {
      alias = &value;
    } else if (name.starts_with(kPrefix)) {
      ours[std::move(name)] = value;
    }
  }
  // Within one source the canonical spelling wins over the alias.
  if (alias != nullptr) ours.emplace(kHfCacheName, *alias);
  for (auto& [name, value] : ours) {
    if (find_field(name) == nullptr) {
      unknown.insert(name);
    } else {
      settings[name] = {std::move(value), std::string(source_name)};
    }
  }
}

// ISARTOR__EXTERNAL_LLM_API_KEY_FILE fills the key when the key itself is empty.
void resolve_api_key_file(Config& config) {
  if (!config.external_llm_api_key.empty() || config.external_llm_api_key_file.empty()) return;
  config.external_llm_api_key = read_key_file(kApiKeyFileName, config.external_llm_api_key_file);
  config.sources[std::string(kApiKeyName)] = std::string(kApiKeyFileName);
}

void require_for_azure(const Config& config) {
  if (config.llm_provider != Provider::kAzure) return;
  const std::pair<std::string_view, const std::string*> required[] = {
      {"ISARTOR__AZURE_DEPLOYMENT_ID", &config.azure_deployment_id},
      {"ISARTOR__EXTERNAL_LLM_URL", &config.external_llm_url},
  };
  for (const auto& [name, value] : required) {
    if (value->empty()) {
      throw ConfigError(fmt::format("missing {}: required when ISARTOR__LLM_PROVIDER=azure", name));
    }
  }
}

// A remote router needs somewhere to go.
void require_for_sidecar(const Config& config) {
  if (config.router_backend == RouterBackend::kVllm && config.layer2.sidecar_url.empty()) {
    throw ConfigError("missing ISARTOR__LAYER2__SIDECAR_URL: required when ISARTOR__ROUTER_BACKEND=vllm");
  }
}

std::map<std::string, std::string> environment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const size_t equals = text.find('=');
    if (equals == std::string_view::npos) continue;
    env.emplace(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
  }
  return env;
}

// Reads and parses a config file; parse errors become "<path> line N: ...". `label` names the file
// in a read error (the path, or the variable that gave it).
template <class Parser>
std::map<std::string, std::string> parse_file(const std::string& path, const std::string& label,
                                              Parser parser) {
  auto content = detail::read_file(path);
  if (!content) throw ConfigError(fmt::format("cannot read {}: {}", label, content.error()));
  try {
    return parser(*content);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{} {}", path, e.what()));
  }
}

}  // namespace

Config load(const Sources& sources) {
  std::map<std::string, Setting> settings;
  std::set<std::string> unknown;
  merge(sources.toml, "isartor.toml", settings, unknown);
  merge(sources.dotenv, ".env", settings, unknown);
  merge(sources.env, "env", settings, unknown);

  Config config;
  for (const Field& field : fields()) {
    const std::string name(field.name);
    const auto it = settings.find(name);
    if (it == settings.end()) {
      config.sources[name] = "default";
      continue;
    }
    field.set(config, it->second.value);
    config.sources[name] = it->second.source;
  }
  config.unknown_keys.assign(unknown.begin(), unknown.end());
  resolve_api_key_file(config);
  require_for_azure(config);
  require_for_sidecar(config);
  return config;
}

Config load_from_process() {
  Sources sources;
  sources.env = environment();
  if (const auto it = sources.env.find("ISARTOR_CONFIG"); it != sources.env.end()) {
    sources.toml =
        parse_file(it->second, "ISARTOR_CONFIG=" + detail::quote(it->second), parse_toml);
  } else if (std::filesystem::exists("isartor.toml")) {
    sources.toml = parse_file("isartor.toml", "isartor.toml", parse_toml);
  }
  if (std::filesystem::exists(".env")) sources.dotenv = parse_file(".env", ".env", parse_dotenv);
  return load(sources);
}

std::string describe(const Config& config) {
  std::vector<std::string> lines;
  for (const Field& field : fields()) {
    const std::string name(field.name);
    const auto source = config.sources.find(name);
    const std::string value = field.get(config);
    lines.push_back(fmt::format("{}={}  # {}", name, field.secret ? mask_secret(value) : value,
                                source == config.sources.end() ? "default" : source->second));
  }
  std::ranges::sort(lines);
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

std::string mask_secret(const std::string& secret) {
  if (secret.empty()) return "(empty)";
  // A short secret would be mostly given away by its first characters.
  if (secret.size() < 8) return fmt::format("…({} chars)", secret.size());
  return fmt::format("{}…({} chars)", secret.substr(0, 3), secret.size());
}

const char* to_string(CacheMode value) { return enum_name(kCacheModes, value); }
const char* to_string(CacheBackendKind value) { return enum_name(kCacheBackends, value); }
const char* to_string(CacheScope value) { return enum_name(kCacheScopes, value); }
const char* to_string(RouterBackend value) { return enum_name(kRouterBackends, value); }
const char* to_string(Provider value) { return enum_name(kProviders, value); }
const char* to_string(SemanticIndex value) { return enum_name(kSemanticIndexes, value); }
const char* to_string(KeyStrategy value) { return enum_name(kKeyStrategies, value); }
const char* to_string(QuotaAction value) { return enum_name(kProviderQuotaActions, value); }

std::vector<UpstreamTarget> upstream_targets(const Config& config) {
  std::vector<UpstreamTarget> chain;
  UpstreamTarget& primary = chain.emplace_back();
  primary.provider = config.llm_provider;
  primary.url = config.external_llm_url;
  if (!config.external_llm_api_key.empty()) primary.api_keys.push_back(config.external_llm_api_key);
  for (const std::string& key : config.resilience.more_api_keys) {
    if (std::ranges::find(primary.api_keys, key) == primary.api_keys.end()) primary.api_keys.push_back(key);
  }
  primary.azure_deployment_id = config.azure_deployment_id;
  primary.tokens_per_day = config.resilience.primary_tokens_per_day;
  primary.tokens_per_month = config.resilience.primary_tokens_per_month;
  chain.insert(chain.end(), config.resilience.fallback_providers.begin(), config.resilience.fallback_providers.end());
  // Unique names, so a header or a metric tells two entries of one provider (two regions) apart.
  std::set<std::string> taken;
  for (UpstreamTarget& target : chain) {
    const std::string base = target.name.empty() ? std::string(to_string(target.provider)) : target.name;
    target.name = base;
    for (int n = 2; !taken.insert(target.name).second; ++n) target.name = fmt::format("{}-{}", base, n);
  }
  return chain;
}

bool exact_cache_enabled(const Config& c) {
  return c.cache_mode == CacheMode::kBoth || c.cache_mode == CacheMode::kExact;
}

bool semantic_cache_enabled(const Config& c) {
  return c.cache_mode == CacheMode::kBoth || c.cache_mode == CacheMode::kSemantic;
}

bool local_model_on_sidecar(const Config& c) {
  return c.router_backend == RouterBackend::kVllm || !c.layer2.sidecar_url.empty();
}

const char* to_string(ClassifyMode value) { return enum_name(kClassifyModes, value); }

}  // namespace isartor::config
