#pragma once
// `isartor stats`: the figures of a running gateway, read from its /metrics.
#include <map>
#include <string>
#include <string_view>

#include "api/wire_format.h"
#include "core/result.h"

namespace isartor::app {

// Prometheus text: every sample by its series ("name{labels}" exactly as written). Comment and
// malformed lines are skipped. Pure.
std::map<std::string, double> parse_exposition(std::string_view text);

// The summary `isartor stats --json` prints: requests and errors, deflection, tokens saved, per
// layer what it answered and its p50/p95 latency (estimated from the histogram buckets), per cache
// hits, misses, entries and bytes, upstream answers by status. Pure.
api::Json summarize(const std::map<std::string, double>& samples);

// The same as text for a terminal. Pure.
std::string format_summary(const api::Json& summary);

// GET `url` + "/metrics" with the key as a bearer token (none when empty), 5 s at most. Blocking.
Result<std::string> fetch_metrics(const std::string& url, const std::string& key);

}  // namespace isartor::app
