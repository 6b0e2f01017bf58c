#pragma once
// Internal to hf_hub.cpp: blocking libcurl requests with the redirect rules huggingface_hub uses.
// Redirects are followed here, not by curl, so the token never reaches another origin and a HEAD
// can stop at the CDN redirect whose headers carry the file's metadata.
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace isartor::inference::hf {

struct Response {
  long status = 0;
  std::map<std::string, std::string, std::less<>> headers;  // lower-case names; last value wins
  std::string url;   // the URL that gave this response (after followed redirects)
  std::string body;  // first 4 KiB of the body of a non-2xx response (error details)

  // The header's value, or "" when absent. `name` is lower-case.
  std::string header(std::string_view name) const;
};

enum class Redirects {
  kSameOrigin,  // follow redirects within the origin (renamed repos), return one to another (the CDN)
  kAll,         // follow every redirect
};

struct Request {
  std::string method = "GET";        // "GET" or "HEAD"
  std::string url;                   // http or https only
  std::string token;                 // Bearer token, sent only while on the origin of `url`
  std::vector<std::string> headers;  // extra "Name: value" lines, sent on every hop
  Redirects redirects = Redirects::kAll;
  long timeout_secs = 0;  // whole request per hop; 0 = none (a low-speed limit still applies)
};

// Called once with the headers of a 2xx response before its body; false aborts the transfer.
using HeadersFn = std::function<bool(const Response&)>;
// Called with the body bytes of a 2xx response as they arrive; false aborts the transfer.
using BodyFn = std::function<bool(std::string_view)>;

// Performs `request`. The value is the last response, including 4xx/5xx and unfollowed 3xx, or
// one a callback aborted. An error (kUnavailable, with curl's reason) means the transfer failed:
// DNS, connect, TLS, timeout, a connection cut mid-body, or too many redirects. Blocking;
// thread-safe (one curl handle per call).
Result<Response> perform(const Request& request, const HeadersFn& on_headers = {},
                         const BodyFn& on_body = {});

// Whether both URLs parse and share scheme, host and port (the default port when absent). Pure.
bool same_origin(const std::string& a, const std::string& b);

// `location` (absolute, or relative as in a Location header) resolved against `base`; "" when
// either cannot be parsed. Pure.
std::string resolve_location(const std::string& base, const std::string& location);

// Percent-encodes `text` as Python's urllib.parse.quote(text, safe=`safe`) does. Pure.
std::string url_quote(std::string_view text, std::string_view safe);

}  // namespace isartor::inference::hf
