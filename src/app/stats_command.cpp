#include "app/stats_command.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <initializer_list>
#include <memory>
#include <vector>

#include "core/strings.h"

namespace isartor::app {
namespace {

constexpr std::array<std::string_view, 4> kLayers{"l1a", "l1b", "l2", "l3"};

double get(const std::map<std::string, double>& samples, const std::string& series) {
  const auto it = samples.find(series);
  return it == samples.end() ? 0 : it->second;
}

// The sum of every sample of `name` whose labels contain each of `labels` ("k=\"v\"").
double sum_of(const std::map<std::string, double>& samples, std::string_view name,
              std::initializer_list<std::string_view> labels = {}) {
  double total = 0;
  for (auto it = samples.lower_bound(std::string(name)); it != samples.end() && it->first.starts_with(name); ++it) {
    const std::string_view series = it->first;
    if (series.size() > name.size() && series[name.size()] != '{') continue;  // another metric's prefix
    bool all = true;
    for (std::string_view label : labels) all = all && series.find(label) != std::string_view::npos;
    if (all) total += it->second;
  }
  return total;
}

// histogram_quantile as Prometheus computes it: linear within the bucket the rank falls in.
double quantile(const std::map<std::string, double>& samples, std::string_view name, std::string_view label,
                double q) {
  std::vector<std::pair<double, double>> buckets;  // (upper bound, cumulative count)
  const std::string prefix = std::string(name) + "_bucket{";
  for (auto it = samples.lower_bound(prefix); it != samples.end() && it->first.starts_with(prefix); ++it) {
    if (it->first.find(label) == std::string::npos) continue;
    const auto le = it->first.find("le=\"");
    if (le == std::string::npos) continue;
    const std::string bound = it->first.substr(le + 4, it->first.find('"', le + 4) - le - 4);
    buckets.emplace_back(bound == "+Inf" ? INFINITY : std::strtod(bound.c_str(), nullptr), it->second);
  }
  std::sort(buckets.begin(), buckets.end());
  if (buckets.empty() || buckets.back().second <= 0) return 0;
  const double rank = q * buckets.back().second;
  double lower = 0, below = 0;
  for (const auto& [bound, count] : buckets) {
    if (count >= rank) {
      if (std::isinf(bound)) return lower;  // beyond the last finite bound: report that bound
      return lower + (bound - lower) * (count == below ? 0 : (rank - below) / (count - below));
    }
    lower = bound;
    below = count;
  }
  return lower;
}

size_t write_body(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

}  // namespace

std::map<std::string, double> parse_exposition(std::string_view text) {
  std::map<std::string, double> samples;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = core::trim(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty() || line.front() == '#') continue;
    // The value follows the last space outside the label set (label values may hold spaces).
    const std::size_t labels_end = line.find('}');
    const std::size_t space = line.find(' ', labels_end == std::string_view::npos ? 0 : labels_end);
    if (space == std::string_view::npos) continue;
    const std::string value(core::trim(line.substr(space + 1)));
    char* parsed_end = nullptr;
    const double number = std::strtod(value.c_str(), &parsed_end);
    if (parsed_end == value.c_str()) continue;
    samples[std::string(line.substr(0, space))] = number;
  }
  return samples;
}

api::Json summarize(const std::map<std::string, double>& samples) {
  api::Json layers = api::Json::object();
  for (std::string_view layer : kLayers) {
    const std::string label = fmt::format("layer=\"{}\"", layer);
    layers[std::string(layer)] = {
        {"answered", sum_of(samples, "isartor_layer_requests_total", {label, "outcome=\"answered\""})},
        {"p50_ms", 1000 * quantile(samples, "isartor_layer_duration_seconds", label, 0.5)},
        {"p95_ms", 1000 * quantile(samples, "isartor_layer_duration_seconds", label, 0.95)}};
  }
  api::Json caches = api::Json::object();
  for (std::string_view cache : {"exact", "semantic"}) {
    const std::string label = fmt::format("cache=\"{}\"", cache);
    caches[std::string(cache)] = {
        {"hits", sum_of(samples, "isartor_cache_events_total", {label, "event=\"hit\""})},
        {"misses", sum_of(samples, "isartor_cache_events_total", {label, "event=\"miss\""})},
        {"entries", sum_of(samples, "isartor_cache_entries", {label})},
        {"bytes", sum_of(samples, "isartor_cache_bytes", {label})}};
  }
  api::Json upstream = api::Json::object();
  const std::string prefix = "isartor_upstream_responses_total{";
  for (auto it = samples.lower_bound(prefix); it != samples.end() && it->first.starts_with(prefix); ++it) {
    const auto at = it->first.find("status=\"");
    if (at == std::string::npos) continue;
    const std::string status = it->first.substr(at + 8, it->first.find('"', at + 8) - at - 8);
    upstream[status] = upstream.value(status, 0.0) + it->second;
  }
  return {{"uptime_seconds", get(samples, "isartor_uptime_seconds")},
          {"requests", sum_of(samples, "isartor_requests_total")},
          {"errors", get(samples, "isartor_errors_total")},
          {"deflected", get(samples, "isartor_deflected_requests_total")},
          {"deflection_ratio", get(samples, "isartor_deflection_ratio")},
          {"tokens_saved", get(samples, "isartor_tokens_saved_total")},
          {"layers", std::move(layers)},
          {"caches", std::move(caches)},
          {"upstream_responses", std::move(upstream)}};
}

std::string format_summary(const api::Json& s) {
  std::string out = fmt::format(
      "requests {:.0f}  errors {:.0f}  up {:.0f} s\n"
      "deflected {:.0f} ({:.1f} %)  tokens saved {:.0f}\n\n"
      "layer   answered     p50 ms     p95 ms\n",
      s["requests"].get<double>(), s["errors"].get<double>(), s["uptime_seconds"].get<double>(),
      s["deflected"].get<double>(), 100 * s["deflection_ratio"].get<double>(), s["tokens_saved"].get<double>());
  for (std::string_view layer : kLayers) {
    const api::Json& l = s["layers"][std::string(layer)];
    out += fmt::format("{:<6} {:>9.0f} {:>10.2f} {:>10.2f}\n", layer, l["answered"].get<double>(),
                       l["p50_ms"].get<double>(), l["p95_ms"].get<double>());
  }
  out += "\ncache      hits   misses  entries      bytes\n";
  for (const auto& [name, c] : s["caches"].items()) {
    out += fmt::format("{:<8} {:>6.0f} {:>8.0f} {:>8.0f} {:>10.0f}\n", name, c["hits"].get<double>(),
                       c["misses"].get<double>(), c["entries"].get<double>(), c["bytes"].get<double>());
  }
  out += "\nupstream answers by status:";
  if (s["upstream_responses"].empty()) out += " none";
  for (const auto& [status, n] : s["upstream_responses"].items()) out += fmt::format(" {}: {:.0f}", status, n.get<double>());
  out += "\n";
  return out;
}

Result<std::string> fetch_metrics(const std::string& url, const std::string& key) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return fail(ErrorCode::kInternal, "cannot start libcurl");
  std::string body;
  const std::string target = url + "/metrics";
  curl_easy_setopt(curl.get(), CURLOPT_URL, target.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(nullptr, curl_slist_free_all);
  if (!key.empty()) {
    headers.reset(curl_slist_append(nullptr, ("Authorization: Bearer " + key).c_str()));
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
  }
  if (const CURLcode rc = curl_easy_perform(curl.get()); rc != CURLE_OK) {
    return fail(ErrorCode::kUnavailable, fmt::format("cannot reach {}: {}", target, curl_easy_strerror(rc)));
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status == 401) {
    return fail(ErrorCode::kUnauthorized, fmt::format("{} wants the gateway key: pass --key or set ISARTOR__GATEWAY_API_KEY", target));
  }
  if (status != 200) return fail(ErrorCode::kUnavailable, fmt::format("{} answered HTTP {}", target, status));
  return body;
}

}  // namespace isartor::app
