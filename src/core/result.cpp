#include "core/result.h"

namespace isartor {

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidRequest: return 400;
    case ErrorCode::kUnprocessable: return 422;
    case ErrorCode::kUnauthorized: return 401;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kMethodNotAllowed: return 405;
    case ErrorCode::kRequestTimeout: return 408;
    case ErrorCode::kPayloadTooLarge: return 413;
    case ErrorCode::kNotImplemented: return 501;
    case ErrorCode::kUpstream: return 502;
    case ErrorCode::kUpstreamTimeout: return 504;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kOverloaded: return 503;
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

}  // namespace isartor
