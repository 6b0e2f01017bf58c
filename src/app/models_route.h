#pragma once
// GET /v1/models and /v1/models/{id}: the provider's model list, fetched through L3 and kept for
// a while, merged with the configured model and the local embedding model; rendered in OpenAI's
// shape, or Anthropic's for clients that send anthropic-version.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/wire_format.h"
#include "providers/upstream_chain.h"

namespace isartor::app {

struct ModelEntry {
  std::string id;
  std::string owner;         // OpenAI's owned_by
  int64_t created = 0;       // Unix seconds; 0 when unknown
  std::string display_name;  // Anthropic's; the id when the provider names none
};

// The models of a provider's list body, in OpenAI's shape ({"data":[{"id","created","owned_by"}]})
// or Anthropic's ({"data":[{"id","display_name","created_at"}]}); entries without a string id are
// skipped, at most 10 000 are taken. `owner`: for entries that name none. Pure.
std::vector<ModelEntry> parse_model_list(const api::Json& body, const std::string& owner);

// The list body in OpenAI's shape or Anthropic's (has_more false, first_id, last_id). Pure.
api::Json render_model_list(const std::vector<ModelEntry>& models, bool anthropic);
// One model in OpenAI's shape or Anthropic's. Pure.
api::Json render_model(const ModelEntry& model, bool anthropic);

class ModelCatalog {
 public:
  // `served`: what the gateway names itself (the configured model, the local embedding model),
  // listed first; `ttl`: how long a provider list is kept; `retry`: how soon a failed fetch is
  // tried again. `upstream` must outlive the catalog.
  ModelCatalog(providers::UpstreamChain& upstream, std::vector<ModelEntry> served, std::chrono::seconds ttl,
               std::chrono::seconds retry);

  // The served models then the provider's others. When the kept list is stale one caller awaits
  // a new one and the others meanwhile get the kept one; a failed fetch keeps the last list (or
  // the served models alone) until `retry` has passed (logged). Thread-safe; never fails.
  boost::asio::awaitable<std::vector<ModelEntry>> list();

 private:
  boost::asio::awaitable<void> refresh();
  std::vector<ModelEntry> merged() const;  // mutex_ held

  providers::UpstreamChain& upstream_;
  const std::vector<ModelEntry> served_;
  const std::chrono::seconds ttl_, retry_;
  mutable std::mutex mutex_;                       // guards the three below
  std::optional<std::vector<ModelEntry>> listed_;  // the provider's last list
  std::chrono::steady_clock::time_point next_fetch_{};
  bool fetching_ = false;
};

}  // namespace isartor::app
