#include "api/errors.h"

#include <array>
#include <cctype>
#include <string_view>

#include "api/sse.h"
#include "core/strings.h"

namespace isartor::api {
namespace {

constexpr std::string_view kRedacted = "[REDACTED]";

struct OpenAIKind {
  const char* type;
  const char* code;  // nullptr -> JSON null
};

// A provider's 4xx as OpenAI names them; only used when the provider gave no type of its own.
const char* openai_type_for_status(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 409: return "conflict_error";
    case 429: return "rate_limit_error";
    default: return "invalid_request_error";
  }
}

OpenAIKind openai_kind(const Error& error) {
  switch (error.code) {
    case ErrorCode::kInvalidRequest:
    case ErrorCode::kUnprocessable: return {"invalid_request_error", nullptr};
    case ErrorCode::kUnauthorized: return {"authentication_error", "invalid_api_key"};
    case ErrorCode::kForbidden: return {"permission_error", "forbidden"};
    case ErrorCode::kNotFound: return {"not_found_error", nullptr};
    case ErrorCode::kMethodNotAllowed: return {"invalid_request_error", "method_not_allowed"};
    case ErrorCode::kRequestTimeout: return {"invalid_request_error", "request_timeout"};
    case ErrorCode::kPayloadTooLarge: return {"invalid_request_error", "request_too_large"};
    case ErrorCode::kNotImplemented: return {"invalid_request_error", "not_implemented"};
    case ErrorCode::kRateLimited: return {"rate_limit_error", "rate_limit_exceeded"};
    case ErrorCode::kUpstreamRejected: return {openai_type_for_status(http_status(error)), nullptr};
    case ErrorCode::kUpstream: return {"api_error", "upstream_error"};
    case ErrorCode::kUpstreamTimeout: return {"api_error", "timeout"};
    case ErrorCode::kUnavailable: return {"service_unavailable", nullptr};
    case ErrorCode::kOverloaded: return {"service_unavailable", "overloaded"};
    case ErrorCode::kInternal: return {"server_error", nullptr};
  }
  return {"server_error", nullptr};
}

// A provider's 4xx as Anthropic names them (docs.anthropic.com "Errors"): by status, since an
// OpenAI provider's types ("invalid_request_error" for a 401) do not carry over.
const char* anthropic_type_for_status(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    default: return "invalid_request_error";
  }
}

// Anthropic has no timeout type; its own gateway timeouts surface as api_error.
const char* anthropic_type(const Error& error) {
  switch (error.code) {
    case ErrorCode::kInvalidRequest:
    case ErrorCode::kUnprocessable:
    case ErrorCode::kMethodNotAllowed:
    case ErrorCode::kRequestTimeout:
    case ErrorCode::kNotImplemented: return "invalid_request_error";
    case ErrorCode::kUnauthorized: return "authentication_error";
    case ErrorCode::kForbidden: return "permission_error";
    case ErrorCode::kNotFound: return "not_found_error";
    case ErrorCode::kPayloadTooLarge: return "request_too_large";
    case ErrorCode::kRateLimited:
    case ErrorCode::kUpstreamRejected: return anthropic_type_for_status(http_status(error));
    case ErrorCode::kUnavailable:
    case ErrorCode::kOverloaded: return "overloaded_error";
    case ErrorCode::kUpstream:
    case ErrorCode::kUpstreamTimeout:
    case ErrorCode::kInternal: return "api_error";
  }
  return "api_error";
}

}  // namespace

Json error_body(WireFormat format, const Error& error) {
  const std::string message = redact(error.message);
  if (format == WireFormat::kAnthropic) {
    return Json{{"type", "error"}, {"error", {{"type", anthropic_type(error)}, {"message", message}}}};
  }
  const OpenAIKind kind = openai_kind(error);
  // A provider's refusal keeps the provider's own type and code (clients branch on
  // "context_length_exceeded", "insufficient_quota").
  const bool from_provider = error.code == ErrorCode::kRateLimited || error.code == ErrorCode::kUpstreamRejected;
  Json type = from_provider && !error.upstream_type.empty() ? Json(error.upstream_type) : Json(kind.type);
  Json code = from_provider && !error.upstream_code.empty() ? Json(error.upstream_code)
              : kind.code                                    ? Json(kind.code)
                                                             : Json(nullptr);
  Json detail = {{"message", message}, {"type", std::move(type)}, {"code", std::move(code)}};
  if (format == WireFormat::kOpenAI || format == WireFormat::kCompletions || format == WireFormat::kResponses) {
    detail["param"] = error.param.empty() ? Json(nullptr) : Json(error.param);
  }
  return Json{{"error", std::move(detail)}};
}

namespace {

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool is_key_char(char c) { return is_alnum(c) || c == '-' || c == '_'; }
// Bearer tokens may be JWTs or base64 (RFC 6750 b64token).
bool is_token_char(char c) {
  return is_key_char(c) || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

// A prefix (lower case) that introduces a secret: after it come `separators`, at least one of
// them from `required` when that is non-empty, then the secret itself of `min_length` chars.
struct SecretPattern {
  std::string_view prefix;
  bool ignore_case;
  std::string_view separators;
  std::string_view required;
  size_t min_length;
  bool (*secret_char)(char);
  bool keep_prefix;  // "Bearer [REDACTED]" reads better; a bare "sk-" would still hint the vendor
};

constexpr std::array<SecretPattern, 5> kPatterns{{
    {"sk-", false, "", "", 8, &is_key_char, false},  // OpenAI sk-…, sk-proj-…, Anthropic sk-ant-…
    {"xai-", false, "", "", 8, &is_key_char, false},
    {"bearer", true, " \t", " \t", 1, &is_token_char, true},
    {"api-key", true, " \t\"':=", ":=", 1, &is_token_char, true},  // x-api-key, Azure api-key
    {"api_key", true, " \t\"':=", ":=", 1, &is_token_char, true},
}};

std::string redact_pattern(std::string_view text, const SecretPattern& pattern) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const std::string_view rest = text.substr(pos);
    const bool at_word_start = pos == 0 || !is_alnum(text[pos - 1]);
    const bool matches = pattern.ignore_case ? core::istarts_with(rest, pattern.prefix)
                                             : rest.starts_with(pattern.prefix);
    if (!at_word_start || !matches) {
      out += text[pos++];
      continue;
    }
    size_t secret = pos + pattern.prefix.size();
    bool has_required = pattern.required.empty();
    while (secret < text.size() &&
           pattern.separators.find(text[secret]) != std::string_view::npos) {
      has_required = has_required || pattern.required.find(text[secret]) != std::string_view::npos;
      ++secret;
    }
    size_t end = secret;
    while (end < text.size() && pattern.secret_char(text[end])) ++end;
    if (!has_required || end - secret < pattern.min_length) {
      out += text[pos++];
      continue;
    }
    out.append(pattern.keep_prefix ? text.substr(pos, secret - pos) : std::string_view());
    out.append(kRedacted);
    pos = end;
  }
  return out;
}

}  // namespace

std::string redact(std::string text, const std::vector<std::string>& secrets) {
  // Literal secrets first, so a known key is removed whole even where no pattern would match it.
  for (const std::string& secret : secrets) {
    if (secret.empty()) continue;
    for (size_t at = text.find(secret); at != std::string::npos;
         at = text.find(secret, at + kRedacted.size())) {
      text.replace(at, secret.size(), kRedacted);
    }
  }
  for (const SecretPattern& pattern : kPatterns) text = redact_pattern(text, pattern);
  return text;
}

ErrorResponse render_error(WireFormat format, const Error& error) {
  return ErrorResponse{http_status(error), dump_json(error_body(format, error))};
}

std::string render_stream_error(WireFormat format, const Error& error) {
  if (format == WireFormat::kResponses) {
    const Json detail = error_body(format, error)["error"];
    return format_sse(SseEvent{"error", dump_json({{"type", "error"},
                                                   {"code", detail["code"]},
                                                   {"message", detail["message"]},
                                                   {"param", detail["param"]},
                                                   {"sequence_number", 0}})});
  }
  const std::string body = dump_json(error_body(format, error));
  return format_sse(SseEvent{format == WireFormat::kAnthropic ? "error" : "", body});
}

}  // namespace isartor::api
