// GET /v1/models in process: both list shapes read and written, the provider's list kept and
// merged behind the served models, a failed fetch not repeated until its retry time.
#include "app/models_route.h"

#include <gtest/gtest.h>

#include <thread>

#include "fakes/fake_provider_client.h"
#include "support/run_coroutine.h"

namespace isartor::app {
namespace {

using testing::run_coroutine;

std::vector<std::string> ids(const std::vector<ModelEntry>& models) {
  std::vector<std::string> out;
  for (const auto& m : models) out.push_back(m.id);
  return out;
}

TEST(ModelList, ReadsOpenAIsShape) {
  auto body = api::Json::parse(R"({"object":"list","data":[
      {"id":"gpt-4o","object":"model","created":1715367049,"owned_by":"system"},
      {"object":"model"}, 7, {"id":"o1"}]})");
  auto models = parse_model_list(body, "openai");
  ASSERT_EQ(ids(models), (std::vector<std::string>{"gpt-4o", "o1"}));
  EXPECT_EQ(models[0].created, 1715367049);
  EXPECT_EQ(models[0].owner, "system");
  EXPECT_EQ(models[1].owner, "openai");  // named by none: the provider's
  EXPECT_EQ(models[1].display_name, "o1");
  EXPECT_TRUE(parse_model_list(api::Json::parse(R"({"data":{}})"), "x").empty());
}

TEST(ModelList, ReadsAnthropicsShapeAndWritesBoth) {
  auto body = api::Json::parse(R"({"data":[{"type":"model","id":"claude-sonnet-4-5","display_name":"Claude Sonnet 4.5",
      "created_at":"2025-09-29T00:00:00Z"},{"id":"odd","created_at":"yesterday"}],"has_more":false})");
  auto models = parse_model_list(body, "anthropic");
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].created, 1759104000);
  EXPECT_EQ(models[0].display_name, "Claude Sonnet 4.5");
  EXPECT_EQ(models[1].created, 0);

  auto openai = render_model_list(models, false);
  EXPECT_EQ(openai["object"], "list");
  EXPECT_EQ(openai["data"][0], api::Json::parse(R"({"id":"claude-sonnet-4-5","object":"model","created":1759104000,
      "owned_by":"anthropic"})"));
  auto anthropic = render_model_list(models, true);
  EXPECT_EQ(anthropic["data"][0]["created_at"], "2025-09-29T00:00:00Z");
  EXPECT_EQ(anthropic["data"][1]["created_at"], "1970-01-01T00:00:00Z");
  EXPECT_EQ(anthropic["first_id"], "claude-sonnet-4-5");
  EXPECT_EQ(anthropic["last_id"], "odd");
  EXPECT_EQ(anthropic["has_more"], false);
  EXPECT_TRUE(render_model_list({}, true)["first_id"].is_null());
}

class ModelCatalogTest : public ::testing::Test {
 protected:
  std::unique_ptr<fakes::FakeProviderClient> owned_ = std::make_unique<fakes::FakeProviderClient>();
  fakes::FakeProviderClient& provider_ = *owned_;
  std::shared_ptr<providers::UpstreamChain> upstream_ = fakes::chain_of(std::move(owned_));

  static std::vector<ModelEntry> served() {
    std::vector<ModelEntry> s(2);
    s[0] = {"gpt-4o-mini", "openai", 0, "gpt-4o-mini"};
    s[1] = {"all-MiniLM-L6-v2", "isartor", 0, "all-MiniLM-L6-v2"};
    return s;
  }
  void SetUp() override {
    provider_.native_answer = api::Json::parse(R"({"object":"list","data":[
        {"id":"gpt-4o","created":2,"owned_by":"system"},{"id":"gpt-4o-mini","created":1,"owned_by":"system"}]})");
  }
};

TEST_F(ModelCatalogTest, ServedModelsFirstThenTheProvidersKeptForTheTtl) {
  ModelCatalog catalog(*upstream_, served(), std::chrono::seconds(300), std::chrono::seconds(30));
  auto first = run_coroutine(catalog.list());
  EXPECT_EQ(ids(first), (std::vector<std::string>{"gpt-4o-mini", "all-MiniLM-L6-v2", "gpt-4o"}));
  EXPECT_EQ(first[0].owner, "system");  // the provider's entry for a model it lists
  EXPECT_EQ(first[0].created, 1);
  ASSERT_EQ(provider_.native_requests.size(), 1u);
  EXPECT_EQ(provider_.native_requests[0].endpoint, providers::NativeEndpoint::kModels);
  run_coroutine(catalog.list());
  EXPECT_EQ(provider_.calls.load(), 1);
}

TEST_F(ModelCatalogTest, AFailedFetchListsTheServedModelsAndWaitsForItsRetry) {
  provider_.fail_next.push_back(Error(ErrorCode::kUpstream, "down"));
  ModelCatalog catalog(*upstream_, served(), std::chrono::seconds(300), std::chrono::seconds(1));
  EXPECT_EQ(ids(run_coroutine(catalog.list())), (std::vector<std::string>{"gpt-4o-mini", "all-MiniLM-L6-v2"}));
  run_coroutine(catalog.list());
  EXPECT_EQ(provider_.calls.load(), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(run_coroutine(catalog.list()).size(), 3u);
  EXPECT_EQ(provider_.calls.load(), 2);
}

TEST_F(ModelCatalogTest, AStaleListIsRefetchedAndKeptWhenTheRefetchFails) {
  ModelCatalog catalog(*upstream_, served(), std::chrono::seconds(0), std::chrono::seconds(0));
  EXPECT_EQ(run_coroutine(catalog.list()).size(), 3u);
  provider_.fail_next.push_back(Error(ErrorCode::kUpstream, "down"));
  EXPECT_EQ(run_coroutine(catalog.list()).size(), 3u);
  EXPECT_EQ(provider_.calls.load(), 2);
}

}  // namespace
}  // namespace isartor::app
