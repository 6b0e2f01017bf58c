#include "api/field_rules.h"

#include <fmt/format.h>

#include "api/json_access.h"

namespace isartor::api::detail {
namespace {

bool has_kind(const Json& value, JsonKind kind) {
  switch (kind) {
    case JsonKind::kString:
      return value.is_string();
    case JsonKind::kNumber:
      return value.is_number();
    case JsonKind::kInteger:
      return value.is_number_integer();
    case JsonKind::kBoolean:
      return value.is_boolean();
    case JsonKind::kArray:
      return value.is_array();
    case JsonKind::kObject:
      return value.is_object();
  }
  return false;
}

const char* kind_name(JsonKind kind, FieldDialect dialect) {
  const bool openai = dialect == FieldDialect::kOpenAI;
  switch (kind) {
    case JsonKind::kString:
      return openai ? "a string" : "a valid string";
    case JsonKind::kNumber:
      return openai ? "a number" : "a valid number";
    case JsonKind::kInteger:
      return openai ? "an integer" : "a valid integer";
    case JsonKind::kBoolean:
      return openai ? "a boolean" : "a valid boolean";
    case JsonKind::kArray:
      return openai ? "an array" : "a valid list";
    case JsonKind::kObject:
      return openai ? "an object" : "a valid dictionary";
  }
  return "";
}

std::string wrong_kind(const FieldRule& rule, FieldDialect dialect) {
  if (dialect == FieldDialect::kOpenAI) return fmt::format("'{}' must be {}", rule.name, kind_name(rule.kind, dialect));
  return fmt::format("{}: Input should be {}", rule.name, kind_name(rule.kind, dialect));
}

// Both name the whole range when it is bounded on both sides (Anthropic as "range: 0..1"), else
// the bound that was crossed.
std::string out_of_range(const FieldRule& rule, bool below, FieldDialect dialect) {
  if (dialect == FieldDialect::kAnthropic) {
    if (rule.min != -kUnbounded && rule.max != kUnbounded)
      return fmt::format("{}: range: {}..{}", rule.name, rule.min, rule.max);
    return below ? fmt::format("{}: Input should be greater than or equal to {}", rule.name, rule.min)
                 : fmt::format("{}: Input should be less than or equal to {}", rule.name, rule.max);
  }
  if (rule.max == kUnbounded) return fmt::format("'{}' must be at least {}", rule.name, rule.min);
  if (rule.min == -kUnbounded) return fmt::format("'{}' must be at most {}", rule.name, rule.max);
  return fmt::format("'{}' must be between {} and {}", rule.name, rule.min, rule.max);
}

}  // namespace

Result<void> check_fields(const Json& body, std::span<const FieldRule> rules, FieldDialect dialect) {
  for (const FieldRule& rule : rules) {
    const Json* value = member(body, rule.name);
    if (!value) continue;
    if (!has_kind(*value, rule.kind)) return fail(ErrorCode::kInvalidRequest, wrong_kind(rule, dialect), rule.name);
    if (!value->is_number()) continue;
    const double number = value->get<double>();
    if (number < rule.min || number > rule.max)
      return fail(ErrorCode::kInvalidRequest, out_of_range(rule, number < rule.min, dialect), rule.name);
  }
  return {};
}

}  // namespace isartor::api::detail
