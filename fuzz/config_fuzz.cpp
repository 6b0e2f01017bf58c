// Configuration text (src/config): the bytes as isartor.toml and as a .env file, then what
// parsed merged and validated by load(), and described. The documented failure is ConfigError;
// any other exception escapes and fails the run. ISARTOR__EXTERNAL_LLM_API_KEY_FILE is dropped
// before load(): it names a file to read, and the fuzzer would find /dev/zero.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "config/config.h"
#include "core/strings.h"

using namespace isartor;

namespace {

std::map<std::string, std::string> parse_or_empty(std::map<std::string, std::string> (*parse)(const std::string&),
                                                  const std::string& text) {
  try {
    auto values = parse(text);
    std::erase_if(values, [](const auto& entry) {
      return core::to_upper(entry.first) == "ISARTOR__EXTERNAL_LLM_API_KEY_FILE";
    });
    return values;
  } catch (const config::ConfigError&) {
    return {};
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  config::Sources sources;
  sources.toml = parse_or_empty(config::parse_toml, text);
  sources.dotenv = parse_or_empty(config::parse_dotenv, text);
  try {
    (void)config::describe(config::load(sources));
  } catch (const config::ConfigError&) {
  }
  return 0;
}
