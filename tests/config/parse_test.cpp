// parse_toml and parse_dotenv: the accepted syntax and the line-numbered errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"

#include <nlohmann/json.hpp>

namespace isartor::config {
namespace {

using Map = std::map<std::string, std::string>;

template <class Parser>
std::string error_of(Parser parser, const std::string& text) {
  try {
    parser(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ParseToml, SectionsKeysAndValueTypes) {
  const Map parsed = parse_toml(R"(# Isartor config
host_port = "0.0.0.0:9090"   # trailing comment
cache_ttl_secs = 1_000
similarity_threshold = 0.9
Enable_Monitoring = true
offline_mode = false

[layer2]
sidecar_url = 'http://127.0.0.1:8081'
temperature = 1e-1
gpu_layers = +3
max_classify_tokens = -4

[embedding_sidecar]
sidecar_url = "http://127.0.0.1:8082"

[layer2.extra]
a.b = "dotted"
)");
  const Map expected = {
      {"ISARTOR__HOST_PORT", "0.0.0.0:9090"},
      {"ISARTOR__CACHE_TTL_SECS", "1000"},
      {"ISARTOR__SIMILARITY_THRESHOLD", "0.9"},
      {"ISARTOR__ENABLE_MONITORING", "true"},
      {"ISARTOR__OFFLINE_MODE", "false"},
      {"ISARTOR__LAYER2__SIDECAR_URL", "http://127.0.0.1:8081"},
      {"ISARTOR__LAYER2__TEMPERATURE", "0.1"},
      {"ISARTOR__LAYER2__GPU_LAYERS", "3"},
      {"ISARTOR__LAYER2__MAX_CLASSIFY_TOKENS", "-4"},
      {"ISARTOR__EMBEDDING_SIDECAR__SIDECAR_URL", "http://127.0.0.1:8082"},
      {"ISARTOR__LAYER2__EXTRA__A__B", "dotted"},
  };
  EXPECT_EQ(parsed, expected);
}

TEST(ParseToml, StringEscapesAndLiterals) {
  const Map parsed = parse_toml(
      "a = \"q\\\"uote \\\\ back\\nnew\\ttab\"\n"
      "b = 'C:\\path\\n # not a comment'\n"
      "c = \"has # hash\"  # real comment\n"
      "d = \"\"\n");
  EXPECT_EQ(parsed.at("ISARTOR__A"), "q\"uote \\ back\nnew\ttab");
  EXPECT_EQ(parsed.at("ISARTOR__B"), "C:\\path\\n # not a comment");
  EXPECT_EQ(parsed.at("ISARTOR__C"), "has # hash");
  EXPECT_EQ(parsed.at("ISARTOR__D"), "");
}

TEST(ParseToml, EmptyAndCrLfInput) {
  EXPECT_TRUE(parse_toml("").empty());
  EXPECT_TRUE(parse_toml("\n  \n# only comments\n").empty());
  EXPECT_EQ(parse_toml("[server]\r\nport = 1\r\n"), (Map{{"ISARTOR__SERVER__PORT", "1"}}));
}

TEST(ParseToml, ErrorsNameTheLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"a = 1\n\njust words\n", "line 3: "},   {"a = \"open\n", "line 1: "},
      {"a = \"bad \\q escape\"\n", "line 1: "}, {"# c\n[layer2\n", "line 2: "},
      {"a = \"x\" y\n", "line 1: "},            {"a = bare\n", "line 1: "},
      {"a = 1\na = 2\n", "line 2: "},           {"a =\n", "line 1: "},
      {"a b = 1\n", "line 1: "},                {"[a b]\n", "line 1: "},
      {"[a] x\n", "line 1: "},                  {"a = 1__0\n", "line 1: "},
      {"a = _1\n", "line 1: "},                 {"a = 1_\n", "line 1: "},
      {"a = 1.2.3\n", "line 1: "},              {"a = True\n", "line 1: "},
      {"a = 1 2\n", "line 1: "},                {"a = 1979-05-27\n", "line 1: "},
  };
  for (const auto& [bad, prefix] : cases) EXPECT_THAT(error_of(parse_toml, bad), testing::StartsWith(prefix)) << bad;
}

// TOML allows non-ASCII only in strings and comments; elsewhere toml++ 3.3 reached
// __builtin_unreachable() for some of it (the config fuzzer's find: "exp = " then U+0490).
TEST(ParseToml, NonAsciiOutsideStringsAndCommentsIsALineNumberedError) {
  for (const char* bad : {"a = 1\nexp = \xd2\x90" "DER\n", "a = 1\n\xd0\xb8\xd0\xbc\xd1\x8f = 1\n",
                          "a = \"x\" \xc2\xa1\n", "a = \"\"\"\nq\"\"\"\" \xd2\x90\n",
                          "a = '''x''''' \xd2\x90\n"}) {
    EXPECT_THAT(error_of(parse_toml, bad), testing::HasSubstr("a non-ASCII character outside a string or comment"))
        << bad;
  }
  EXPECT_THAT(error_of(parse_toml, "a = 1\n\n\xd2\x90 = 2\n"), testing::StartsWith("line 3: "));
  EXPECT_EQ(parse_toml("\xef\xbb\xbf" "a = 1\n"), (Map{{"ISARTOR__A", "1"}}));  // a byte order mark
  // Inside comments and every kind of string it is text: escapes, quotes ending a multi-line
  // string, a '#' in a string.
  const Map parsed = parse_toml(
      "# \xd2\x90 comment \"\n"
      "a = \"\xd2\x90 \\\" # \xd2\x90\"  # \xd2\x90\n"
      "b = '\xd2\x90 \\'\n"
      "c = \"\"\"\n\xd2\x90 \\\n  \"\" \xd2\x90\"\"\"\"\n"
      "d = '''\xd2\x90 '' \xd2\x90'''\n");
  EXPECT_EQ(parsed, (Map{{"ISARTOR__A", "\xd2\x90 \" # \xd2\x90"},
                         {"ISARTOR__B", "\xd2\x90 \\"},
                         {"ISARTOR__C", "\xd2\x90 \"\" \xd2\x90\""},
                         {"ISARTOR__D", "\xd2\x90 '' \xd2\x90"}}));
}

TEST(ParseToml, ArraysBecomeTheJsonTheirVariableTakes) {
  const Map parsed = parse_toml(R"(external_llm_api_keys = ["sk-1", "sk-2"]
motto = """two
lines"""

[[fallback_providers]]
provider = "anthropic"
api_key = "sk-ant"
model = "claude-haiku-4-5"

[[fallback_providers]]
provider = "openai"
url = "https://eu.example/v1"
)");
  EXPECT_EQ(parsed.at("ISARTOR__EXTERNAL_LLM_API_KEYS"), R"(["sk-1","sk-2"])");
  EXPECT_EQ(parsed.at("ISARTOR__MOTTO"), "two\nlines");
  const auto list = nlohmann::json::parse(parsed.at("ISARTOR__FALLBACK_PROVIDERS"));
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["model"], "claude-haiku-4-5");
  EXPECT_EQ(list[1]["url"], "https://eu.example/v1");
  Sources s;
  s.toml = parsed;
  s.toml.erase("ISARTOR__MOTTO");
  const Config c = load(s);
  EXPECT_EQ(upstream_targets(c).size(), 3u);
  EXPECT_EQ(c.resilience.more_api_keys, (std::vector<std::string>{"sk-1", "sk-2"}));
}

TEST(ParseToml, FeedsLoad) {
  Sources s;
  s.toml = parse_toml("cache_mode = \"semantic\"\n[layer2]\nmax_generate_tokens = 64\n");
  const Config c = load(s);
  EXPECT_EQ(c.cache_mode, CacheMode::kSemantic);
  EXPECT_EQ(c.layer2.max_generate_tokens, 64);
}

TEST(ParseDotenv, Syntax) {
  const Map parsed = parse_dotenv(R"(# comment
ISARTOR__CACHE_MODE=exact
export ISARTOR__LLM_PROVIDER=anthropic

PLAIN = spaced value   # trailing comment
HASH=a#b
LEADING_HASH=#kept
EMPTY=
EMPTY_COMMENT= # nothing
DOUBLE="line1\nline2 \"q\" # not comment"  # comment
SINGLE='raw \n # kept'
WIN_PATH="C:\Users\x"
lower_case=1
DUP=first
DUP=second
)");
  const Map expected = {
      {"ISARTOR__CACHE_MODE", "exact"},
      {"ISARTOR__LLM_PROVIDER", "anthropic"},
      {"PLAIN", "spaced value"},
      {"HASH", "a#b"},
      {"LEADING_HASH", "#kept"},
      {"EMPTY", ""},
      {"EMPTY_COMMENT", ""},
      {"DOUBLE", "line1\nline2 \"q\" # not comment"},
      {"SINGLE", "raw \\n # kept"},
      {"WIN_PATH", "C:\\Users\\x"},
      {"lower_case", "1"},
      {"DUP", "second"},
  };
  EXPECT_EQ(parsed, expected);
}

TEST(ParseDotenv, CrLfAndEmpty) {
  EXPECT_TRUE(parse_dotenv("").empty());
  EXPECT_EQ(parse_dotenv("A=1\r\nB=\"2\"\r\n"), (Map{{"A", "1"}, {"B", "2"}}));
}

TEST(ParseDotenv, ErrorsNameTheLine) {
  EXPECT_EQ(error_of(parse_dotenv, "A=1\nnot an assignment\n"), "line 2: expected KEY=VALUE");
  EXPECT_EQ(error_of(parse_dotenv, "1ABC=x\n"),
            "line 1: bad variable name (use letters, digits and _)");
  EXPECT_EQ(error_of(parse_dotenv, "MY-KEY=x\n"),
            "line 1: bad variable name (use letters, digits and _)");
  EXPECT_EQ(error_of(parse_dotenv, "=x\n"),
            "line 1: bad variable name (use letters, digits and _)");
  EXPECT_EQ(error_of(parse_dotenv, "\n\nA=\"open\n"), "line 3: unterminated string");
  EXPECT_EQ(error_of(parse_dotenv, "A='open\n"), "line 1: unterminated string");
  EXPECT_EQ(error_of(parse_dotenv, "A=\"x\"y\n"),
            "line 1: unexpected text after the closing quote");
}

TEST(ParseDotenv, ErrorsDoNotEchoTheLine) {
  const std::string error = error_of(parse_dotenv, "ISARTOR__GATEWAY_API_KEY=\"sk-secret-value\n");
  EXPECT_EQ(error, "line 1: unterminated string");
}

}  // namespace
}  // namespace isartor::config
