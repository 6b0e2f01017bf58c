// ISARTOR__MODEL_DIR (`isartor up --model-dir DIR`): the models found by file name in a local
// folder laid out as `huggingface-cli download ... --local-dir DIR` leaves it, or in a Hugging Face
// cache copied into it; missing files named; the hub never asked (its endpoint here is a dead port).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "inference/hf_hub.h"
#include "inference/model_manager.h"

namespace isartor::inference {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr const char* kGguf = "gemma-2-2b-it.Q4_K_M.gguf";
constexpr const char* kCommit = "0123456789abcdef0123456789abcdef01234567";
const char* const kCheckoutFiles[] = {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"};

void write_file(const fs::path& path, std::string_view data = "x") {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

// The required sentence-transformers files in `folder`, all but `skip`.
void write_checkout(const fs::path& folder, std::string_view skip = "") {
  for (const char* name : kCheckoutFiles) {
    if (name != skip) write_file(folder / name);
  }
}

// `filename` of `repo_id` at "main" in a Hugging Face cache at `cache` (snapshot symlink to a blob).
fs::path write_cached(const fs::path& cache, const std::string& repo_id, const std::string& filename) {
  std::string folder = "models--" + repo_id;
  for (size_t at = folder.find('/'); at != std::string::npos; at = folder.find('/')) folder.replace(at, 1, "--");
  const fs::path repo = cache / folder;
  const fs::path blob = repo / "blobs" / ("blob-" + std::to_string(std::hash<std::string>{}(filename)));
  const fs::path link = repo / "snapshots" / kCommit / filename;
  write_file(repo / "refs" / "main", kCommit);
  write_file(blob, filename);
  fs::create_directories(link.parent_path());
  fs::create_symlink(fs::relative(blob, link.parent_path()), link);
  return link;
}

class ModelDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "isartor-modeldir-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    dir_ = root_ / "models";
    fs::create_directories(dir_);
    config_.model_dir = dir_.string();
    // Anything that tried the hub would fail on this endpoint instead of finding the files.
    hub_.endpoint = "http://127.0.0.1:9";
    hub_.cache_dir = root_ / "hf-cache";
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path root_;
  fs::path dir_;
  config::Config config_;
  HubConfig hub_;
};

TEST_F(ModelDirTest, LocalModelIsTheConfiguredGgufFileInTheFolder) {
  write_file(dir_ / kGguf);
  write_file(dir_ / "tokenizer.json");  // what the spec's second download leaves beside it; not needed
  auto path = find_local_model_in_model_dir(config_);
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(*path, dir_ / kGguf);
  auto resolved = resolve_local_model_gguf(config_, hub_);
  ASSERT_TRUE(resolved) << resolved.error().message;
  EXPECT_EQ(*resolved, dir_ / kGguf);
}

TEST_F(ModelDirTest, LocalModelFollowsTheConfiguredFilename) {
  config_.layer2.gguf_filename = "SmolLM2-135M-Instruct.Q4_1.gguf";
  write_file(dir_ / kGguf);
  write_file(dir_ / "SmolLM2-135M-Instruct.Q4_1.gguf");
  auto path = find_local_model_in_model_dir(config_);
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(path->filename(), "SmolLM2-135M-Instruct.Q4_1.gguf");
}

TEST_F(ModelDirTest, MissingLocalModelIsNamedAndNotLookedForOnTheHub) {
  auto path = resolve_local_model_gguf(config_, hub_);
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(path.error().message, AllOf(HasSubstr("ISARTOR__MODEL_DIR=" + dir_.string()),
                                          HasSubstr((dir_ / kGguf).string()),
                                          HasSubstr("mradermacher/gemma-2-2b-it-GGUF")));
  EXPECT_THAT(path.error().message, ::testing::Not(HasSubstr("127.0.0.1:9")));
  EXPECT_FALSE(fs::exists(hub_.cache_dir)) << "nothing may be written to the hub cache";
}

TEST_F(ModelDirTest, ExplicitModelPathWinsOverTheModelDir) {
  write_file(dir_ / kGguf);
  write_file(root_ / "other.gguf");
  config_.layer2.model_path = (root_ / "other.gguf").string();
  auto path = resolve_local_model_gguf(config_, hub_);
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(*path, root_ / "other.gguf");
}

TEST_F(ModelDirTest, ModelDirThatIsNoFolderIsNamed) {
  config_.model_dir = (root_ / "nowhere").string();
  for (const auto& result : {find_local_model_in_model_dir(config_), find_embedding_in_model_dir(config_)}) {
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().message, "ISARTOR__MODEL_DIR=" + (root_ / "nowhere").string() + " is not a folder");
  }
}

TEST_F(ModelDirTest, EmbeddingCheckoutInAFolderNamedAfterTheRepo) {
  write_checkout(dir_ / "all-MiniLM-L6-v2");
  write_checkout(dir_);  // the named folder comes first
  auto path = find_embedding_in_model_dir(config_);
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(*path, dir_ / "all-MiniLM-L6-v2");
}

TEST_F(ModelDirTest, EmbeddingCheckoutUnderOrgAndName) {
  write_checkout(dir_ / "sentence-transformers" / "all-MiniLM-L6-v2");
  auto path = find_embedding_in_model_dir(config_);
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(*path, dir_ / "sentence-transformers" / "all-MiniLM-L6-v2");
}

TEST_F(ModelDirTest, EmbeddingCheckoutDirectlyInTheFolder) {
  write_checkout(dir_);
  write_file(dir_ / kGguf);  // the L2 model may share the folder
  auto path = find_embedding_in_model_dir(config_);
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(*path, dir_);
}

TEST_F(ModelDirTest, IncompleteEmbeddingCheckoutNamesTheMissingFile) {
  write_checkout(dir_ / "all-MiniLM-L6-v2", "model.safetensors");
  auto path = find_embedding_in_model_dir(config_);
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(path.error().message,
              AllOf(HasSubstr("ISARTOR__MODEL_DIR=" + dir_.string()),
                    HasSubstr("sentence-transformers/all-MiniLM-L6-v2"),
                    HasSubstr((dir_ / "all-MiniLM-L6-v2").string() + ": no model.safetensors"),
                    HasSubstr((dir_ / "sentence-transformers" / "all-MiniLM-L6-v2").string() + ": no such folder"),
                    HasSubstr(dir_.string() + ": no config.json")));
}

TEST_F(ModelDirTest, MissingEmbeddingIsAStartupErrorNotAHubCall) {
  auto gguf = resolve_embedding_gguf(config_, hub_);
  ASSERT_FALSE(gguf);
  EXPECT_THAT(gguf.error().message, HasSubstr("holds no embedding model"));
  EXPECT_FALSE(fs::exists(hub_.cache_dir));
}

TEST_F(ModelDirTest, CopiedHuggingFaceCacheIsReadOffline) {
  const fs::path gguf = write_cached(dir_, "mradermacher/gemma-2-2b-it-GGUF", kGguf);
  for (const char* name : kCheckoutFiles) write_cached(dir_, "sentence-transformers/all-MiniLM-L6-v2", name);
  auto local = find_local_model_in_model_dir(config_);
  ASSERT_TRUE(local) << local.error().message;
  EXPECT_EQ(*local, gguf);
  auto checkout = find_embedding_in_model_dir(config_);
  ASSERT_TRUE(checkout) << checkout.error().message;
  EXPECT_EQ(*checkout, dir_ / "models--sentence-transformers--all-MiniLM-L6-v2" / "snapshots" / kCommit);
}

TEST_F(ModelDirTest, CopiedHfHomeWithItsHubFolderIsReadToo) {
  const fs::path gguf = write_cached(dir_ / "hub", "mradermacher/gemma-2-2b-it-GGUF", kGguf);
  auto local = find_local_model_in_model_dir(config_);
  ASSERT_TRUE(local) << local.error().message;
  EXPECT_EQ(*local, gguf);
}

TEST_F(ModelDirTest, NoHubFilesAreListedWithAModelDir) {
  config_.enable_slm_router = true;
  EXPECT_THAT(embedding_files(config_), IsEmpty());
  EXPECT_THAT(local_model_files(config_), IsEmpty());
  config_.model_dir.clear();
  EXPECT_EQ(embedding_files(config_).size(), 7u);
  EXPECT_EQ(local_model_files(config_).size(), 1u);
}

}  // namespace
}  // namespace isartor::inference
