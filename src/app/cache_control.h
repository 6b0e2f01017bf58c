#pragma once
// Per-request cache control, from the headers clients of other gateways already send:
//   Cache-Control: no-cache        answer without looking in the caches; the answer is stored
//   Cache-Control: no-store        the answer is not stored (a cached one may still answer)
//   Cache-Control: max-age=N       the stored entry lives N s, at most ISARTOR__CACHE_TTL_SECS
//                                  (a client may shorten the operator's TTL, not extend it); 0 = no-store
//   x-isartor-cache: off           neither lookup nor store (a bypass)
//   x-isartor-cache-namespace: X   entries are shared only by requests that name the same X
// With ISARTOR__CACHE_SCOPE=session the first of x-isartor-session-id, x-session-id,
// x-thread-id, x-conversation-id partitions the caches as well; a request with none shares the
// unscoped partition. Unknown directives and malformed values are ignored, as caches do (RFC 9111).
#include <chrono>
#include <string_view>

#include "config/config.h"
#include "http/server.h"
#include "pipeline/layer.h"

namespace isartor::app {

// The policy for one request. `ttl` is the configured entry lifetime (0 = none). Pure.
pipeline::CachePolicy cache_policy(const http::Request& request, config::CacheScope scope, std::chrono::seconds ttl);

// What X-Isartor-Cache says of an answer: "hit" (L1a/L1b answered), "bypass" (the request
// skipped the lookup) or "miss". Pure.
std::string_view cache_outcome(bool looked_up, pipeline::LayerId layer);

}  // namespace isartor::app
