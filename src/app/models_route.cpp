#include "app/models_route.h"

#include <ctime>
#include <unordered_set>

#include "core/log.h"

namespace isartor::app {
namespace asio = boost::asio;

namespace {

constexpr std::string_view kTarget = "isartor::models";
constexpr std::size_t kMaxModels = 10000;

// "2025-02-19T00:00:00Z" (Anthropic's created_at) as Unix seconds; 0 when it is not that form.
int64_t parse_created_at(const std::string& text) {
  std::tm utc{};
  char zone = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &utc.tm_year, &utc.tm_mon, &utc.tm_mday, &utc.tm_hour,
                  &utc.tm_min, &utc.tm_sec, &zone) < 6) {
    return 0;
  }
  utc.tm_year -= 1900;
  utc.tm_mon -= 1;
  const std::time_t seconds = timegm(&utc);
  return seconds < 0 ? 0 : static_cast<int64_t>(seconds);
}

std::string created_at(int64_t seconds) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string string_member(const api::Json& object, const char* name) {
  const auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::vector<ModelEntry> parse_model_list(const api::Json& body, const std::string& owner) {
  std::vector<ModelEntry> models;
  const auto data = body.find("data");
  if (data == body.end() || !data->is_array()) return models;
  for (const auto& item : *data) {
    if (models.size() == kMaxModels) break;
    if (!item.is_object()) continue;
    ModelEntry model;
    model.id = string_member(item, "id");
    if (model.id.empty()) continue;
    model.owner = string_member(item, "owned_by");
    if (model.owner.empty()) model.owner = owner;
    model.display_name = string_member(item, "display_name");
    if (model.display_name.empty()) model.display_name = model.id;
    const auto created = item.find("created");
    if (created != item.end() && created->is_number_integer()) {
      model.created = std::max<int64_t>(0, created->get<int64_t>());
    } else {
      model.created = parse_created_at(string_member(item, "created_at"));
    }
    models.push_back(std::move(model));
  }
  return models;
}

api::Json render_model(const ModelEntry& model, bool anthropic) {
  if (anthropic) {
    return {{"type", "model"},
            {"id", model.id},
            {"display_name", model.display_name},
            {"created_at", created_at(model.created)}};
  }
  return {{"id", model.id}, {"object", "model"}, {"created", model.created}, {"owned_by", model.owner}};
}

api::Json render_model_list(const std::vector<ModelEntry>& models, bool anthropic) {
  api::Json data = api::Json::array();
  for (const auto& model : models) data.push_back(render_model(model, anthropic));
  if (!anthropic) return {{"object", "list"}, {"data", std::move(data)}};
  api::Json first = models.empty() ? api::Json() : api::Json(models.front().id);
  api::Json last = models.empty() ? api::Json() : api::Json(models.back().id);
  return {{"data", std::move(data)}, {"has_more", false}, {"first_id", std::move(first)}, {"last_id", std::move(last)}};
}

ModelCatalog::ModelCatalog(providers::UpstreamChain& upstream, std::vector<ModelEntry> served, std::chrono::seconds ttl,
                           std::chrono::seconds retry)
    : upstream_(upstream), served_(std::move(served)), ttl_(ttl), retry_(retry) {}

asio::awaitable<std::vector<ModelEntry>> ModelCatalog::list() {
  bool fetch = false;
  {
    std::lock_guard lock(mutex_);
    if (!fetching_ && std::chrono::steady_clock::now() >= next_fetch_) fetching_ = fetch = true;
  }
  if (fetch) co_await refresh();
  std::lock_guard lock(mutex_);
  co_return merged();
}

asio::awaitable<void> ModelCatalog::refresh() {
  // However the fetch ends (an exception included), the next one may start.
  struct Done {
    ModelCatalog& catalog;
    ~Done() {
      std::lock_guard lock(catalog.mutex_);
      catalog.fetching_ = false;
    }
  } done{*this};
  // A named request: g++ 12 destroys a braced temporary in a co_await expression twice.
  providers::NativeRequest request;
  request.endpoint = providers::NativeEndpoint::kModels;
  auto body = co_await upstream_.call_native(request);
  const std::string owner = served_.empty() ? std::string() : served_.front().owner;
  std::optional<std::vector<ModelEntry>> listed;
  if (body) {
    listed = parse_model_list(*body, owner);
    LOG_DEBUG(kTarget, "the provider lists {} models", listed->size());
  } else {
    LOG_WARN(kTarget, "the provider's model list is unavailable ({}); listing the configured models",
             body.error().message);
  }
  std::lock_guard lock(mutex_);
  next_fetch_ = std::chrono::steady_clock::now() + (listed ? ttl_ : retry_);
  if (listed) listed_ = std::move(listed);
}

std::vector<ModelEntry> ModelCatalog::merged() const {
  std::vector<ModelEntry> models = served_;
  if (!listed_) return models;
  std::unordered_set<std::string> named;
  for (auto& model : models) {
    named.insert(model.id);
    // The provider's entry says more (created, owner) about a model it serves.
    for (const auto& listed : *listed_) {
      if (listed.id == model.id) model = listed;
    }
  }
  for (const auto& model : *listed_) {
    if (named.insert(model.id).second) models.push_back(model);
  }
  return models;
}

}  // namespace isartor::app
