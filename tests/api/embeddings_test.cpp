#include "api/embeddings.h"

#include <gtest/gtest.h>

#include <cstring>

namespace isartor::api {
namespace {

Result<EmbeddingsRequest> parse(const char* body) { return parse_embeddings_request(Json::parse(body)); }

std::string param_of(const char* body) {
  auto r = parse(body);
  EXPECT_FALSE(r) << body;
  return r ? std::string() : r.error().param;
}

TEST(EmbeddingsRequest, TakesEachInputShapeOpenAITakes) {
  auto one = parse(R"({"model":"m","input":"hello"})");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->texts, std::vector<std::string>{"hello"});
  EXPECT_FALSE(one->token_ids || one->base64 || one->dimensions);
  auto many = parse(R"({"model":"m","input":["a","b"],"encoding_format":"base64","dimensions":8})");
  ASSERT_TRUE(many);
  EXPECT_EQ(many->texts, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(many->base64);
  EXPECT_EQ(many->dimensions, 8);
  for (const char* ids : {R"({"model":"m","input":[1,2,3]})", R"({"model":"m","input":[[1,2],[3]]})"}) {
    auto r = parse(ids);
    ASSERT_TRUE(r) << ids;
    EXPECT_TRUE(r->token_ids);
    EXPECT_TRUE(r->texts.empty());
  }
}

TEST(EmbeddingsRequest, NamesTheFieldItRefuses) {
  EXPECT_EQ(param_of(R"({"input":"x"})"), "model");
  EXPECT_EQ(param_of(R"({"model":"","input":"x"})"), "model");
  EXPECT_EQ(param_of(R"({"model":"m"})"), "input");
  for (const char* bad : {R"({"model":"m","input":""})", R"({"model":"m","input":[]})",
                          R"({"model":"m","input":["a",""]})", R"({"model":"m","input":["a",1]})",
                          R"({"model":"m","input":[[1],"a"]})", R"({"model":"m","input":[-1]})",
                          R"({"model":"m","input":{"a":1}})"}) {
    EXPECT_EQ(param_of(bad), "input") << bad;
  }
  EXPECT_EQ(param_of(R"({"model":"m","input":"x","encoding_format":"int8"})"), "encoding_format");
  EXPECT_EQ(param_of(R"({"model":"m","input":"x","dimensions":0})"), "dimensions");
  EXPECT_EQ(param_of(R"({"model":"m","input":"x","dimensions":"8"})"), "dimensions");
  Json too_many{{"model", "m"}, {"input", Json::array()}};
  for (std::size_t i = 0; i <= kMaxEmbeddingInputs; ++i) too_many["input"].push_back("t");
  EXPECT_EQ(parse_embeddings_request(too_many).error().param, "input");
}

TEST(EmbeddingsResponse, FloatsOrTheirLittleEndianBytesInBase64) {
  const std::vector<std::vector<float>> vectors{{1.0f, -0.5f}, {0.25f, 0.0f}};
  Json floats = make_embeddings_response(vectors, "m", false, 7);
  EXPECT_EQ(floats["object"], "list");
  EXPECT_EQ(floats["model"], "m");
  EXPECT_EQ(floats["usage"], (Json{{"prompt_tokens", 7}, {"total_tokens", 7}}));
  ASSERT_EQ(floats["data"].size(), 2u);
  EXPECT_EQ(floats["data"][1]["index"], 1);
  EXPECT_EQ(floats["data"][1]["object"], "embedding");
  EXPECT_EQ(floats["data"][0]["embedding"], (Json{1.0, -0.5}));
  Json packed = make_embeddings_response(vectors, "m", true, 7);
  // 1.0f = 00 00 80 3f, -0.5f = 00 00 00 bf
  EXPECT_EQ(packed["data"][0]["embedding"], "AACAPwAAAL8=");
}

}  // namespace
}  // namespace isartor::api
