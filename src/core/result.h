#pragma once
// Errors as values for the request path. Exceptions are only used at start-up (config).
#include <expected>
#include <string>
#include <utility>
#include <vector>

namespace isartor {

// What went wrong, independent of the wire format; api/errors.h maps it to a status and body.
enum class ErrorCode {
  kInvalidRequest,    // 400: malformed JSON, missing/ill-typed fields
  kUnprocessable,     // 422: well-formed but semantically unusable
  kUnauthorized,      // 401
  kForbidden,         // 403: authenticated or not, this is not allowed here
  kNotFound,          // 404
  kMethodNotAllowed,  // 405
  kRequestTimeout,    // 408: the client did not send its request in time
  kPayloadTooLarge,   // 413
  kNotImplemented,    // 501: a request framing (Transfer-Encoding) the server does not support
  kRateLimited,       // 429 (+ Retry-After when known): the provider's rate limit or quota
  kUpstreamRejected,  // the provider refused the request with a 4xx: that status (upstream_status)
  kUpstream,          // 502: provider failed or answered garbage
  kUpstreamTimeout,   // 504
  kUnavailable,       // 503: layer/provider not configured or not ready
  kOverloaded,        // 503 + Retry-After: queue full
  kInternal,          // 500
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::string param;          // offending field, when there is one
  int upstream_status = 0;    // provider's HTTP status, when the error came from one
  std::string upstream_type;  // the provider's own error type and code ("rate_limit_error",
  std::string upstream_code;  // "context_length_exceeded"), when it gave them
  // Response headers the client should see with the error (Retry-After, rate-limit state).
  std::vector<std::pair<std::string, std::string>> headers;

  Error() = default;
  Error(ErrorCode c, std::string msg, std::string p = {}) : code(c), message(std::move(msg)), param(std::move(p)) {}
};

// HTTP status for an error code; kUpstreamRejected has none of its own (400). Thread-safe (pure).
int http_status(ErrorCode code);
// The status the client gets: http_status(code), but the provider's own 4xx for kUpstreamRejected.
// Thread-safe (pure).
int http_status(const Error& error);

template <class T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(ErrorCode code, std::string message, std::string param = {}) {
  return std::unexpected<Error>(Error(code, std::move(message), std::move(param)));
}

}  // namespace isartor

// Forwarding an error (Abseil's RETURN_IF_ERROR / ASSIGN_OR_RETURN), for functions that return a
// Result; the CO_ forms for coroutines. `expr` is evaluated once.
//   RETURN_IF_ERROR(check(body));                  // a Result<void> or any Result
//   ASSIGN_OR_RETURN(std::string name, field(x));  // declares or assigns the value
#define ISARTOR_RESULT_CONCAT_(a, b) a##b
#define ISARTOR_RESULT_NAME_(line) ISARTOR_RESULT_CONCAT_(isartor_result_, line)

// (A block, not an if-initializer: g++ 12 mishandles co_await there.)
#define ISARTOR_RETURN_IF_ERROR_(tmp, keyword, expr)                             \
  do {                                                                           \
    auto tmp = (expr);                                                           \
    if (!tmp) keyword std::unexpected<::isartor::Error>(std::move(tmp).error()); \
  } while (false)
#define RETURN_IF_ERROR(expr) ISARTOR_RETURN_IF_ERROR_(isartor_result, return, expr)
#define CO_RETURN_IF_ERROR(expr) ISARTOR_RETURN_IF_ERROR_(isartor_result, co_return, expr)

#define ISARTOR_ASSIGN_OR_RETURN_(tmp, keyword, lhs, expr)                     \
  auto tmp = (expr);                                                           \
  if (!tmp) keyword std::unexpected<::isartor::Error>(std::move(tmp).error()); \
  lhs = std::move(*tmp)
#define ASSIGN_OR_RETURN(lhs, expr) ISARTOR_ASSIGN_OR_RETURN_(ISARTOR_RESULT_NAME_(__LINE__), return, lhs, expr)
#define CO_ASSIGN_OR_RETURN(lhs, expr) ISARTOR_ASSIGN_OR_RETURN_(ISARTOR_RESULT_NAME_(__LINE__), co_return, lhs, expr)
