#include "inference/hf_http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "core/strings.h"

namespace isartor::inference::hf {

namespace {

constexpr int kMaxRedirects = 10;
constexpr std::size_t kMaxErrorBody = 4096;
constexpr long kConnectTimeoutMs = 10000;
// A download slower than 1 KiB/s for 30 s is treated as a dead connection (then resumed).
constexpr long kLowSpeedBytes = 1024;
constexpr long kLowSpeedSecs = 30;

struct CurlUrl {
  CURLU* handle = curl_url();
  ~CurlUrl() { curl_url_cleanup(handle); }
  std::string get(CURLUPart part, unsigned flags = 0) const {
    char* value = nullptr;
    if (curl_url_get(handle, part, &value, flags) != CURLUE_OK) return {};
    std::string out(value);
    curl_free(value);
    return out;
  }
};

// "scheme://host:port", lower-cased, or "" when `url` cannot be parsed.
std::string url_origin(const std::string& url) {
  CurlUrl parsed;
  if (curl_url_set(parsed.handle, CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return {};
  return core::to_lower(parsed.get(CURLUPART_SCHEME) + "://" + parsed.get(CURLUPART_HOST) + ":" +
               parsed.get(CURLUPART_PORT, CURLU_DEFAULT_PORT));
}

// State of one hop, shared with curl's callbacks.
struct Hop {
  const HeadersFn* on_headers = nullptr;
  const BodyFn* on_body = nullptr;
  Response response;
  bool headers_done = false;
  bool aborted = false;

  bool success() const { return response.status >= 200 && response.status < 300; }
};

std::size_t on_header_line(char* data, std::size_t size, std::size_t count, void* user) {
  auto* hop = static_cast<Hop*>(user);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    // A new status line (after 1xx or a proxy's answer) starts a fresh header block.
    hop->response.headers.clear();
    hop->headers_done = false;
    auto space = line.find(' ');
    hop->response.status = space == std::string_view::npos ? 0 : std::atol(line.data() + space + 1);
    return line.size();
  }
  if (core::trim(line).empty()) {
    if (hop->response.status >= 200 && !hop->headers_done) {
      hop->headers_done = true;
      if (hop->success() && *hop->on_headers && !(*hop->on_headers)(hop->response)) {
        hop->aborted = true;
        return 0;
      }
    }
    return line.size();
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    hop->response.headers[core::to_lower(core::trim(line.substr(0, colon)))] = std::string(core::trim(line.substr(colon + 1)));
  }
  return line.size();
}

std::size_t on_body_bytes(char* data, std::size_t size, std::size_t count, void* user) {
  auto* hop = static_cast<Hop*>(user);
  std::string_view bytes(data, size * count);
  if (!hop->success()) {
    auto room = kMaxErrorBody - std::min(kMaxErrorBody, hop->response.body.size());
    hop->response.body.append(bytes.substr(0, room));
    return bytes.size();
  }
  if (*hop->on_body && !(*hop->on_body)(bytes)) {
    hop->aborted = true;
    return 0;
  }
  return bytes.size();
}

// One request without following redirects. An error only for a failed transfer.
Result<Response> perform_hop(const Request& request, const std::string& url, bool send_token,
                             const HeadersFn& on_headers, const BodyFn& on_body) {
  static std::once_flag curl_global;
  std::call_once(curl_global, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });

  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), &curl_easy_cleanup);
  if (!easy) return fail(ErrorCode::kUnavailable, "could not create a curl handle");
  curl_slist* list = nullptr;
  for (const auto& header : request.headers) list = curl_slist_append(list, header.c_str());
  std::string authorization = "Authorization: Bearer " + request.token;
  if (send_token && !request.token.empty()) list = curl_slist_append(list, authorization.c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(list, &curl_slist_free_all);

  Hop hop;
  hop.on_headers = &on_headers;
  hop.on_body = &on_body;
  hop.response.url = url;
  char error_buffer[CURL_ERROR_SIZE] = {};
  CURL* h = easy.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");  // a Location could name file:// etc.
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_USERAGENT, "isartor/" ISARTOR_VERSION);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, kLowSpeedBytes);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, kLowSpeedSecs);
  if (request.timeout_secs > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT, request.timeout_secs);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header_line);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &hop);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body_bytes);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &hop);
  if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }

  CURLcode code = curl_easy_perform(h);
  if (code != CURLE_OK && !hop.aborted) {
    std::string reason = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code);
    return fail(ErrorCode::kUnavailable, reason);
  }
  return std::move(hop.response);
}

}  // namespace

std::string Response::header(std::string_view name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

bool same_origin(const std::string& a, const std::string& b) {
  std::string origin = url_origin(a);
  return !origin.empty() && origin == url_origin(b);
}

std::string resolve_location(const std::string& base, const std::string& location) {
  CurlUrl url;
  if (curl_url_set(url.handle, CURLUPART_URL, base.c_str(), 0) != CURLUE_OK) return {};
  if (curl_url_set(url.handle, CURLUPART_URL, location.c_str(), 0) != CURLUE_OK) return {};
  return url.get(CURLUPART_URL);
}

std::string url_quote(std::string_view text, std::string_view safe) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~' ||
        safe.find(static_cast<char>(c)) != std::string_view::npos) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<Response> perform(const Request& request, const HeadersFn& on_headers, const BodyFn& on_body) {
  std::string url = request.url;
  // Like requests, the token is dropped for good once a redirect leaves the first origin.
  bool send_token = true;
  for (int hops = 0; hops <= kMaxRedirects; ++hops) {
    send_token = send_token && same_origin(url, request.url);
    auto response = perform_hop(request, url, send_token, on_headers, on_body);
    if (!response) return response;
    std::string location = response->header("location");
    if (response->status < 300 || response->status >= 400 || location.empty()) return response;
    std::string target = resolve_location(url, location);
    if (target.empty()) {
      return fail(ErrorCode::kUnavailable, "unusable redirect Location '" + location + "'");
    }
    if (request.redirects == Redirects::kSameOrigin && !same_origin(target, url)) return response;
    url = std::move(target);
  }
  return fail(ErrorCode::kUnavailable, "too many redirects from " + request.url);
}

}  // namespace isartor::inference::hf
