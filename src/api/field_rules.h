#pragma once
// The type and range rules of a wire format's optional top-level request fields, one table per
// format (internal to src/api), checked in one place so every format words its errors its own way.
#include <limits>
#include <span>

#include "api/wire_format.h"
#include "core/result.h"

namespace isartor::api::detail {

enum class JsonKind { kString, kNumber, kInteger, kBoolean, kArray, kObject };

inline constexpr double kUnbounded = std::numeric_limits<double>::infinity();

// One optional field: absent or null passes; otherwise it must be of `kind` and, for numbers,
// within [min, max].
struct FieldRule {
  const char* name;
  JsonKind kind;
  double min = -kUnbounded;
  double max = kUnbounded;
};

// Whose wording the errors use: OpenAI's ("'top_p' must be a number", "'top_p' must be between 0
// and 1") or Anthropic's ("top_p: Input should be a valid number", "top_p: range: 0..1",
// "top_k: Input should be greater than or equal to 0").
enum class FieldDialect { kOpenAI, kAnthropic };

// The first field of `body` that breaks its rule, as an invalid_request error whose param is the
// field name; {} when all hold. Pure.
Result<void> check_fields(const Json& body, std::span<const FieldRule> rules, FieldDialect dialect);

}  // namespace isartor::api::detail
