#include "app/cache_control.h"

#include <array>
#include <charconv>

#include "core/strings.h"

namespace isartor::app {

namespace {

constexpr std::array<std::string_view, 4> kSessionHeaders{"x-isartor-session-id", "x-session-id", "x-thread-id",
                                                          "x-conversation-id"};

// Applies one Cache-Control directive ("no-cache", "max-age=60", "MAX-AGE=\"60\"").
void apply_directive(std::string_view directive, std::chrono::seconds ttl, pipeline::CachePolicy& policy) {
  const auto eq = directive.find('=');
  const std::string name = core::to_lower(core::trim(directive.substr(0, eq)));
  if (name == "no-cache") {
    policy.lookup = false;
  } else if (name == "no-store") {
    policy.store = false;
  } else if (name == "max-age" && eq != std::string_view::npos) {
    std::string_view value = core::trim(directive.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    std::uint64_t seconds = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (error != std::errc() || end != value.data() + value.size()) return;
    if (seconds == 0) {
      policy.store = false;
      return;
    }
    const auto asked = std::chrono::seconds(static_cast<std::chrono::seconds::rep>(
        std::min<std::uint64_t>(seconds, static_cast<std::uint64_t>(std::chrono::seconds::max().count()))));
    policy.ttl = ttl.count() > 0 ? std::min(asked, ttl) : asked;
  }
}

}  // namespace

pipeline::CachePolicy cache_policy(const http::Request& request, config::CacheScope scope, std::chrono::seconds ttl) {
  pipeline::CachePolicy policy;
  for (const auto& [name, value] : request.headers) {
    if (!core::iequals(name, "cache-control")) continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      apply_directive(rest.substr(0, comma), ttl, policy);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  if (core::iequals(core::trim(request.header("x-isartor-cache")), "off")) {
    policy.lookup = false;
    policy.store = false;
  }
  // Length-prefixed, so no other namespace and session pair makes the same partition.
  std::string_view name_space = core::trim(request.header("x-isartor-cache-namespace"));
  std::string_view session;
  if (scope == config::CacheScope::kSession) {
    for (std::string_view header : kSessionHeaders) {
      session = core::trim(request.header(header));
      if (!session.empty()) break;
    }
  }
  if (!name_space.empty() || !session.empty()) {
    policy.partition = std::to_string(name_space.size()) + ":" + std::string(name_space) + "|" + std::string(session);
  }
  return policy;
}

std::string_view cache_outcome(bool looked_up, pipeline::LayerId layer) {
  if (pipeline::is_cache(layer)) return "hit";
  return looked_up ? "miss" : "bypass";
}

}  // namespace isartor::app
