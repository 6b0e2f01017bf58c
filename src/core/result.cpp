#include "core/result.h"

namespace isartor {

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidRequest: return 400;
    case ErrorCode::kUnprocessable: return 422;
    case ErrorCode::kUnauthorized: return 401;
    case ErrorCode::kForbidden: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kMethodNotAllowed: return 405;
    case ErrorCode::kRequestTimeout: return 408;
    case ErrorCode::kPayloadTooLarge: return 413;
    case ErrorCode::kNotImplemented: return 501;
    case ErrorCode::kRateLimited: return 429;
    case ErrorCode::kUpstreamRejected: return 400;
    case ErrorCode::kUpstream: return 502;
    case ErrorCode::kUpstreamTimeout: return 504;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kOverloaded: return 503;
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

int http_status(const Error& error) {
  if (error.code == ErrorCode::kUpstreamRejected && error.upstream_status >= 400 && error.upstream_status < 500) {
    return error.upstream_status;
  }
  return http_status(error.code);
}

}  // namespace isartor
