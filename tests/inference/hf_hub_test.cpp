#include "inference/hf_hub.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/log.h"
#include "inference/progress.h"

extern char** environ;

namespace isartor::inference {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr const char* kRepo = "acme/tiny-model";
constexpr std::size_t kBigSize = 1536 * 1024 + 7;  // over the fake's 1 MiB LFS threshold

// ---------------------------------------------------------------------------------------------
// Helpers

std::string digest_hex(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), out, &length, md, nullptr);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", out[i]);
  return hex;
}

std::string sha256(std::string_view data) { return digest_hex(EVP_sha256(), data); }
std::string git_blob_sha1(std::string_view data) {
  std::string object = "blob " + std::to_string(data.size()) + '\0';
  object += data;
  return digest_hex(EVP_sha1(), object);
}
std::string commit_of(std::string_view repo_id) { return digest_hex(EVP_sha1(), repo_id); }

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& path, std::string_view data) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

std::size_t on_curl_body(char* data, std::size_t size, std::size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// A tiny blocking HTTP call for the fake's control endpoints.
std::string http(const std::string& method, const std::string& url) {
  CURL* easy = curl_easy_init();
  std::string body;
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &on_curl_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  CURLcode code = curl_easy_perform(easy);
  curl_easy_cleanup(easy);
  EXPECT_EQ(code, CURLE_OK) << method << ' ' << url;
  return body;
}

// tests/fakes/fake_hf_hub.py in a child process, serving `root`.
class FakeHub {
 public:
  explicit FakeHub(const fs::path& root, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"python3", ISARTOR_SOURCE_DIR "/tests/fakes/fake_hf_hub.py",
                                     "--root", root.string(), "--port", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    int out[2];
    EXPECT_EQ(::pipe(out), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    EXPECT_EQ(posix_spawnp(&pid_, "python3", &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
    ::close(out[0]);
    port_ = std::atoi(line.c_str());
    EXPECT_GT(port_, 0) << "the fake hub did not print its port";
  }
  ~FakeHub() { stop(); }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  nlohmann::json requests() const { return nlohmann::json::parse(http("GET", url() + "/_fake/requests")); }
  void reset() const { http("POST", url() + "/_fake/reset"); }
  void configure(const std::string& query) const { http("POST", url() + "/_fake/config?" + query); }

  // The recorded requests for paths starting with `prefix`.
  std::vector<nlohmann::json> requests_to(std::string_view prefix) const {
    std::vector<nlohmann::json> matching;
    for (auto& request : requests()) {
      if (request["path"].get<std::string>().starts_with(prefix)) matching.push_back(request);
    }
    return matching;
  }

 private:
  pid_t pid_ = 0;
  int port_ = 0;
};

class HfHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/isartor-hf-hub-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    root_ = dir_ / "repos";
    std::mt19937 random(42);
    big_.resize(kBigSize);
    for (auto& byte : big_) byte = static_cast<char>(random());
    write_file(root_ / kRepo / "config.json", small_);
    write_file(root_ / kRepo / "model.bin", big_);
    write_file(root_ / kRepo / "tokenizer/vocab.txt", vocab_);
    log::set_sink([this](std::string_view line) {
      std::lock_guard lock(log_mu_);
      log_.emplace_back(line);
    });
  }

  void TearDown() override {
    log::set_sink({});
    fs::remove_all(dir_);
  }

  HubConfig hub(const FakeHub& fake) const {
    HubConfig config;
    config.endpoint = fake.url();
    config.cache_dir = dir_ / "cache";
    return config;
  }
  fs::path repo_dir() const { return dir_ / "cache" / "models--acme--tiny-model"; }
  fs::path snapshot(const std::string& file) const { return repo_dir() / "snapshots" / commit_ / file; }
  fs::path big_blob() const { return repo_dir() / "blobs" / sha256(big_); }
  std::string logs() {
    std::lock_guard lock(log_mu_);
    std::string all;
    for (auto& line : log_) all += line;
    return all;
  }

  fs::path dir_;
  fs::path root_;
  std::string small_ = "{\"hidden_size\": 384}\n";
  std::string vocab_ = "[PAD]\n[UNK]\nhello\n";
  std::string big_;
  std::string commit_ = commit_of(kRepo);
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

// ---------------------------------------------------------------------------------------------
// Downloads and the cache layout

TEST_F(HfHubTest, DownloadsIntoTheHuggingFaceHubCacheLayout) {
  FakeHub fake(root_);
  auto small = hf_hub_download(hub(fake), kRepo, "config.json");
  auto big = hf_hub_download(hub(fake), kRepo, "model.bin");
  auto nested = hf_hub_download(hub(fake), kRepo, "tokenizer/vocab.txt");
  ASSERT_TRUE(small.has_value()) << small.error().message;
  ASSERT_TRUE(big.has_value()) << big.error().message;
  ASSERT_TRUE(nested.has_value()) << nested.error().message;

  EXPECT_EQ(*small, snapshot("config.json"));
  EXPECT_EQ(*big, snapshot("model.bin"));
  EXPECT_EQ(*nested, snapshot("tokenizer/vocab.txt"));
  // Relative symlinks to blobs named by the git sha1 (small files) or the LFS sha256.
  EXPECT_TRUE(fs::is_symlink(*small));
  EXPECT_EQ(fs::read_symlink(*small), fs::path("../../blobs") / git_blob_sha1(small_));
  EXPECT_EQ(fs::read_symlink(*big), fs::path("../../blobs") / sha256(big_));
  EXPECT_EQ(fs::read_symlink(*nested), fs::path("../../../blobs") / git_blob_sha1(vocab_));
  EXPECT_EQ(read_file(*small), small_);
  EXPECT_EQ(read_file(*big), big_);
  EXPECT_EQ(read_file(*nested), vocab_);
  EXPECT_EQ(read_file(repo_dir() / "refs" / "main"), commit_);  // exactly the hash, no newline

  std::vector<std::string> blobs;
  for (auto& entry : fs::directory_iterator(repo_dir() / "blobs")) blobs.push_back(entry.path().filename());
  std::sort(blobs.begin(), blobs.end());
  std::vector<std::string> expected = {git_blob_sha1(small_), git_blob_sha1(vocab_), sha256(big_)};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(blobs, expected);  // no .incomplete or temporary files left
  EXPECT_TRUE(fs::exists(dir_ / "cache" / ".locks" / "models--acme--tiny-model" / (sha256(big_) + ".lock")));
  EXPECT_THAT(read_file(dir_ / "cache" / "CACHEDIR.TAG"),
              ::testing::StartsWith("Signature: 8a477f597d28d172789f06886806bc55\n"));

  // The LFS file came from the CDN redirect, the small ones straight from resolve.
  EXPECT_THAT(fake.requests_to("/cdn/"), SizeIs(1));
  EXPECT_THAT(logs(), AllOf(HasSubstr("downloading acme/tiny-model/model.bin (1.6 MB)"),
                            HasSubstr("downloaded acme/tiny-model/model.bin (1.6 MB)")));
}

TEST_F(HfHubTest, SecondCallOnlyChecksTheHeadAndReturnsTheSamePath) {
  FakeHub fake(root_);
  auto first = hf_hub_download(hub(fake), kRepo, "model.bin");
  ASSERT_TRUE(first.has_value()) << first.error().message;
  fake.reset();
  auto second = hf_hub_download(hub(fake), kRepo, "model.bin");
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(*second, *first);
  auto requests = fake.requests();
  ASSERT_THAT(requests, SizeIs(1));
  EXPECT_EQ(requests[0]["method"], "HEAD");
  EXPECT_EQ(requests[0]["path"], "/acme/tiny-model/resolve/main/model.bin");
}

TEST_F(HfHubTest, CachedCommitRevisionNeedsNoRequestAtAll) {
  FakeHub fake(root_);
  ASSERT_TRUE(hf_hub_download(hub(fake), kRepo, "config.json").has_value());
  fake.reset();
  auto pinned = hf_hub_download(hub(fake), kRepo, "config.json", commit_);
  ASSERT_TRUE(pinned.has_value()) << pinned.error().message;
  EXPECT_EQ(*pinned, snapshot("config.json"));
  EXPECT_THAT(fake.requests(), IsEmpty());
}

TEST_F(HfHubTest, BlobPresentButSnapshotMissingIsLinkedWithoutDownloading) {
  FakeHub fake(root_);
  ASSERT_TRUE(hf_hub_download(hub(fake), kRepo, "model.bin").has_value());
  fs::remove_all(repo_dir() / "snapshots");
  fake.reset();
  auto again = hf_hub_download(hub(fake), kRepo, "model.bin");
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(read_file(*again), big_);
  EXPECT_THAT(fake.requests_to("/cdn/"), IsEmpty());
}

TEST_F(HfHubTest, RelativeRedirectOfARenamedRepoIsFollowed) {
  FakeHub fake(root_, {"--rename", "acme/old-name=acme/tiny-model"});
  auto path = hf_hub_download(hub(fake), "acme/old-name", "config.json");
  ASSERT_TRUE(path.has_value()) << path.error().message;
  // Cached under the name asked for, as huggingface_hub does.
  EXPECT_EQ(*path, dir_ / "cache" / "models--acme--old-name" / "snapshots" / commit_ / "config.json");
  EXPECT_EQ(read_file(*path), small_);
}

// ---------------------------------------------------------------------------------------------
// Offline and unreachable hub

TEST_F(HfHubTest, OfflineUsesTheCacheWithoutTheNetwork) {
  FakeHub fake(root_);
  HubConfig config = hub(fake);
  auto online = hf_hub_download(config, kRepo, "model.bin");
  ASSERT_TRUE(online.has_value()) << online.error().message;
  fake.stop();
  config.offline = true;
  auto offline = hf_hub_download(config, kRepo, "model.bin");
  ASSERT_TRUE(offline.has_value()) << offline.error().message;
  EXPECT_EQ(*offline, *online);
  EXPECT_EQ(read_file(*offline), big_);
}

TEST_F(HfHubTest, UnreachableHubFallsBackToTheCache) {
  FakeHub fake(root_);
  HubConfig config = hub(fake);
  auto online = hf_hub_download(config, kRepo, "config.json");
  ASSERT_TRUE(online.has_value()) << online.error().message;
  fake.stop();
  auto fallback = hf_hub_download(config, kRepo, "config.json");
  ASSERT_TRUE(fallback.has_value()) << fallback.error().message;
  EXPECT_EQ(*fallback, *online);
  EXPECT_THAT(logs(), AllOf(HasSubstr("WARN"), HasSubstr("could not reach the Hugging Face hub")));
}

TEST_F(HfHubTest, OfflineWithoutCacheExplainsTheWayOut) {
  FakeHub fake(root_);
  HubConfig config = hub(fake);
  config.offline = true;
  auto result = hf_hub_download(config, kRepo, "model.bin");
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(result.error().message,
              AllOf(HasSubstr("acme/tiny-model/model.bin"), HasSubstr("offline"),
                    HasSubstr("isartor models pull"), HasSubstr((dir_ / "cache").string()),
                    HasSubstr("ISARTOR__EMBEDDING__MODEL_PATH / ISARTOR__LAYER2__MODEL_PATH")));
  EXPECT_THAT(fake.requests(), IsEmpty());
}

TEST_F(HfHubTest, UnreachableHubWithoutCacheIsAnError) {
  FakeHub fake(root_);
  HubConfig config = hub(fake);
  fake.stop();
  auto result = hf_hub_download(config, kRepo, "config.json");
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(result.error().message, AllOf(HasSubstr("could not reach the Hugging Face hub"),
                                            HasSubstr("acme/tiny-model/config.json"),
                                            HasSubstr("isartor models pull")));
}

// ---------------------------------------------------------------------------------------------
// Interrupted and corrupt downloads

TEST_F(HfHubTest, ResumesWithARangeAfterTheConnectionIsCut) {
  FakeHub fake(root_);
  fake.configure("cut_after=600000");
  auto path = hf_hub_download(hub(fake), kRepo, "model.bin");
  ASSERT_TRUE(path.has_value()) << path.error().message;
  EXPECT_EQ(read_file(*path), big_);
  auto gets = fake.requests_to("/cdn/");
  ASSERT_THAT(gets, SizeIs(2));
  EXPECT_TRUE(gets[0]["range"].is_null());
  ASSERT_TRUE(gets[1]["range"].is_string());
  auto range = gets[1]["range"].get<std::string>();
  ASSERT_TRUE(range.starts_with("bytes=") && range.ends_with("-")) << range;
  auto resumed_at = std::stoul(range.substr(6));
  EXPECT_GT(resumed_at, 0u);
  EXPECT_LE(resumed_at, 600000u);
  EXPECT_THAT(logs(), HasSubstr("interrupted"));
}

TEST_F(HfHubTest, ResumesTheIncompleteFileOfAnEarlierRun) {
  FakeHub fake(root_);
  write_file(big_blob().string() + ".incomplete", std::string_view(big_).substr(0, 700000));
  auto path = hf_hub_download(hub(fake), kRepo, "model.bin");
  ASSERT_TRUE(path.has_value()) << path.error().message;
  EXPECT_EQ(read_file(*path), big_);
  auto gets = fake.requests_to("/cdn/");
  ASSERT_THAT(gets, SizeIs(1));
  EXPECT_EQ(gets[0]["range"], "bytes=700000-");
  EXPECT_FALSE(fs::exists(big_blob().string() + ".incomplete"));
}

TEST_F(HfHubTest, ServerIgnoringTheRangeRestartsFromZero) {
  FakeHub fake(root_);
  fake.configure("ignore_range=1");
  write_file(big_blob().string() + ".incomplete", std::string_view(big_).substr(0, 700000));
  auto path = hf_hub_download(hub(fake), kRepo, "model.bin");
  ASSERT_TRUE(path.has_value()) << path.error().message;
  EXPECT_EQ(read_file(*path), big_);  // not the first 700000 bytes twice
  auto gets = fake.requests_to("/cdn/");
  ASSERT_THAT(gets, SizeIs(1));
  EXPECT_EQ(gets[0]["range"], "bytes=700000-");
}

TEST_F(HfHubTest, CorruptIncompleteFileFailsTheShaCheckAndIsDownloadedAgain) {
  FakeHub fake(root_);
  write_file(big_blob().string() + ".incomplete", std::string(700000, 'x'));
  auto path = hf_hub_download(hub(fake), kRepo, "model.bin");
  ASSERT_TRUE(path.has_value()) << path.error().message;
  EXPECT_EQ(read_file(*path), big_);
  auto gets = fake.requests_to("/cdn/");
  ASSERT_THAT(gets, SizeIs(2));
  EXPECT_EQ(gets[0]["range"], "bytes=700000-");
  EXPECT_TRUE(gets[1]["range"].is_null());
  EXPECT_THAT(logs(), HasSubstr("sha256 mismatch"));
}

TEST_F(HfHubTest, OversizedIncompleteFileIsDiscarded) {
  FakeHub fake(root_);
  write_file(big_blob().string() + ".incomplete", std::string(kBigSize + 10, 'x'));
  auto path = hf_hub_download(hub(fake), kRepo, "model.bin");
  ASSERT_TRUE(path.has_value()) << path.error().message;
  EXPECT_EQ(read_file(*path), big_);
  auto gets = fake.requests_to("/cdn/");
  ASSERT_THAT(gets, SizeIs(1));
  EXPECT_TRUE(gets[0]["range"].is_null());
}

// ---------------------------------------------------------------------------------------------
// Hub errors

TEST_F(HfHubTest, MissingFileErrorNamesRepoFileAndRevision) {
  FakeHub fake(root_);
  auto result = hf_hub_download(hub(fake), kRepo, "missing.gguf");
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(result.error().upstream_status, 404);
  EXPECT_THAT(result.error().message,
              AllOf(HasSubstr("'missing.gguf'"), HasSubstr("'acme/tiny-model'"), HasSubstr("'main'")));
  // huggingface_hub's marker for a file the commit lacks.
  EXPECT_TRUE(fs::exists(repo_dir() / ".no_exist" / commit_ / "missing.gguf"));
}

TEST_F(HfHubTest, MissingRepoAndRevisionAreNamed) {
  FakeHub fake(root_);
  auto repo = hf_hub_download(hub(fake), "acme/nothing-here", "config.json");
  ASSERT_FALSE(repo.has_value());
  EXPECT_THAT(repo.error().message, AllOf(HasSubstr("repository 'acme/nothing-here' not found"),
                                          HasSubstr("HF_TOKEN")));
  auto revision = hf_hub_download(hub(fake), kRepo, "config.json", "v9.9");
  ASSERT_FALSE(revision.has_value());
  EXPECT_THAT(revision.error().message, HasSubstr("revision 'v9.9' not found"));
}

TEST_F(HfHubTest, MissingFileIsAnErrorEvenWhenAnotherCommitIsCached) {
  FakeHub fake(root_);
  ASSERT_TRUE(hf_hub_download(hub(fake), kRepo, "config.json").has_value());
  fs::remove(root_ / kRepo / "config.json");  // deleted upstream
  auto result = hf_hub_download(hub(fake), kRepo, "config.json");
  ASSERT_FALSE(result.has_value());
  EXPECT_THAT(result.error().message, HasSubstr("not found"));
}

TEST_F(HfHubTest, PrivateRepoNeedsTheTokenWhichNeverLeavesTheHub) {
  FakeHub fake(root_, {"--token", "hf_secret"});
  HubConfig config = hub(fake);
  auto denied = hf_hub_download(config, kRepo, "model.bin");
  ASSERT_FALSE(denied.has_value());
  EXPECT_EQ(denied.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(denied.error().upstream_status, 401);
  EXPECT_THAT(denied.error().message,
              AllOf(HasSubstr("HTTP 401"), HasSubstr("HF_TOKEN"), HasSubstr("No token was sent")));

  config.token = "hf_wrong";
  auto wrong = hf_hub_download(config, kRepo, "model.bin");
  ASSERT_FALSE(wrong.has_value());
  EXPECT_THAT(wrong.error().message, HasSubstr("The token in HF_TOKEN was refused"));

  config.token = "hf_secret";
  fake.reset();
  auto allowed = hf_hub_download(config, kRepo, "model.bin");
  ASSERT_TRUE(allowed.has_value()) << allowed.error().message;
  EXPECT_EQ(read_file(*allowed), big_);
  auto heads = fake.requests_to("/acme/");
  ASSERT_THAT(heads, SizeIs(1));
  EXPECT_EQ(heads[0]["authorization"], "Bearer hf_secret");
  // The CDN is another origin (localhost, not 127.0.0.1): no token there.
  auto gets = fake.requests_to("/cdn/");
  ASSERT_THAT(gets, SizeIs(1));
  EXPECT_TRUE(gets[0]["authorization"].is_null());
}

TEST_F(HfHubTest, InvalidArgumentsFailWithoutTouchingTheNetwork) {
  FakeHub fake(root_);
  for (auto [repo, file, revision] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"../etc", "passwd", "main"},
           {"acme/a/b", "x", "main"},
           {"acme--x/y", "x", "main"},
           {kRepo, "../../../etc/passwd", "main"},
           {kRepo, "/etc/passwd", "main"},
           {kRepo, "a//b", "main"},
           {kRepo, "config.json", "../main"},
           {kRepo, "", "main"}}) {
    auto result = hf_hub_download(hub(fake), repo, file, revision);
    ASSERT_FALSE(result.has_value()) << repo << ' ' << file << ' ' << revision;
    EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  }
  EXPECT_THAT(fake.requests(), IsEmpty());
  EXPECT_FALSE(fs::exists(dir_ / "cache"));
}

// ---------------------------------------------------------------------------------------------
// Concurrency

TEST_F(HfHubTest, ConcurrentDownloadsOfOneFileShareOneBlob) {
  FakeHub fake(root_);
  fake.configure("chunk_delay_ms=40");  // ~1 s, so the second caller waits on the lock
  Result<fs::path> results[2];
  std::thread first([&] { results[0] = hf_hub_download(hub(fake), kRepo, "model.bin"); });
  std::thread second([&] { results[1] = hf_hub_download(hub(fake), kRepo, "model.bin"); });
  first.join();
  second.join();
  ASSERT_TRUE(results[0].has_value()) << results[0].error().message;
  ASSERT_TRUE(results[1].has_value()) << results[1].error().message;
  EXPECT_EQ(*results[0], *results[1]);
  EXPECT_EQ(read_file(*results[0]), big_);
  EXPECT_EQ(read_file(big_blob()), big_);
  EXPECT_THAT(logs(), HasSubstr("waiting for another download of acme/tiny-model/model.bin"));
  EXPECT_THAT(fake.requests_to("/cdn/"), SizeIs(1));  // the second found the blob after the lock
  EXPECT_FALSE(fs::exists(big_blob().string() + ".incomplete"));
}

// ---------------------------------------------------------------------------------------------
// Cache queries

TEST_F(HfHubTest, ListCachedReportsEveryCachedFile) {
  FakeHub fake(root_);
  HubConfig config = hub(fake);
  auto empty = list_cached(config);
  ASSERT_TRUE(empty.has_value());
  EXPECT_THAT(*empty, IsEmpty());  // no cache dir yet

  for (const char* file : {"model.bin", "config.json", "tokenizer/vocab.txt"}) {
    ASSERT_TRUE(hf_hub_download(config, kRepo, file).has_value());
  }
  auto files = list_cached(config);
  ASSERT_TRUE(files.has_value()) << files.error().message;
  ASSERT_THAT(*files, SizeIs(3));
  EXPECT_EQ((*files)[0].filename, "config.json");
  EXPECT_EQ((*files)[1].filename, "model.bin");
  EXPECT_EQ((*files)[2].filename, "tokenizer/vocab.txt");
  EXPECT_EQ((*files)[1].repo_id, kRepo);
  EXPECT_EQ((*files)[1].commit, commit_);
  EXPECT_THAT((*files)[1].refs, ElementsAre("main"));
  EXPECT_EQ((*files)[1].size, kBigSize);
  EXPECT_EQ((*files)[1].path, snapshot("model.bin"));
  EXPECT_EQ((*files)[0].size, small_.size());

  fs::remove(big_blob());  // a dangling snapshot link is not a cached file
  files = list_cached(config);
  ASSERT_TRUE(files.has_value());
  EXPECT_THAT(*files, SizeIs(2));
  EXPECT_FALSE(try_load_from_cache(config, kRepo, "model.bin").has_value());
  EXPECT_EQ(try_load_from_cache(config, kRepo, "config.json"), snapshot("config.json"));
  EXPECT_EQ(try_load_from_cache(config, kRepo, "config.json", commit_), snapshot("config.json"));
  EXPECT_FALSE(try_load_from_cache(config, kRepo, "config.json", "other-branch").has_value());
}

// ---------------------------------------------------------------------------------------------
// Configuration

TEST(HubConfigTest, DefaultsFollowHuggingFaceHub) {
  config::Config config;
  HubConfig hub = hub_config(config, {{"HOME", "/home/ada"}});
  EXPECT_EQ(hub.endpoint, "https://huggingface.co");
  EXPECT_EQ(hub.cache_dir, fs::path("/home/ada/.cache/huggingface/hub"));
  EXPECT_EQ(hub.token, "");
  EXPECT_FALSE(hub.offline);
  EXPECT_EQ(hub_config(config, {{"HOME", "/home/ada"}, {"XDG_CACHE_HOME", "/xdg"}}).cache_dir,
            fs::path("/xdg/huggingface/hub"));
}

TEST(HubConfigTest, CacheDirPrecedence) {
  config::Config config;
  std::map<std::string, std::string> env = {
      {"HOME", "/home/ada"}, {"XDG_CACHE_HOME", "/xdg"}, {"HF_HOME", "/hf-home"}};
  EXPECT_EQ(hub_config(config, env).cache_dir, fs::path("/hf-home/hub"));
  env["HUGGINGFACE_HUB_CACHE"] = "/legacy-cache";
  EXPECT_EQ(hub_config(config, env).cache_dir, fs::path("/legacy-cache"));
  env["HF_HUB_CACHE"] = "~/hub-cache";
  EXPECT_EQ(hub_config(config, env).cache_dir, fs::path("/home/ada/hub-cache"));
  config.hf_cache_dir = "/isartor-cache";
  EXPECT_EQ(hub_config(config, env).cache_dir, fs::path("/isartor-cache"));
}

TEST(HubConfigTest, EndpointTokenAndOffline) {
  config::Config config;
  auto hub = hub_config(config, {{"HOME", "/nonexistent-home"},
                                 {"HF_ENDPOINT", "https://mirror.example/"},
                                 {"HF_TOKEN", " hf_abc \n"},
                                 {"HF_HUB_OFFLINE", "TRUE"}});
  EXPECT_EQ(hub.endpoint, "https://mirror.example");
  EXPECT_EQ(hub.token, "hf_abc");
  EXPECT_TRUE(hub.offline);
  EXPECT_TRUE(hub_config(config, {{"TRANSFORMERS_OFFLINE", "1"}}).offline);
  // A set HF_HUB_OFFLINE wins over TRANSFORMERS_OFFLINE, as in huggingface_hub.
  EXPECT_FALSE(hub_config(config, {{"HF_HUB_OFFLINE", "0"}, {"TRANSFORMERS_OFFLINE", "1"}}).offline);
  EXPECT_FALSE(hub_config(config, {{"HF_HUB_OFFLINE", "no"}}).offline);
  config.offline_mode = true;
  EXPECT_TRUE(hub_config(config, {}).offline);
}

TEST(HubConfigTest, TokenFileUnderHfHomeOrHfTokenPath) {
  char pattern[] = "/tmp/isartor-hf-token-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  fs::path dir = pattern;
  write_file(dir / "token", "hf_from_file\n");
  write_file(dir / "other-token", "hf_other");
  config::Config config;
  EXPECT_EQ(hub_config(config, {{"HF_HOME", dir.string()}}).token, "hf_from_file");
  EXPECT_EQ(hub_config(config, {{"HF_HOME", dir.string()}, {"HF_TOKEN_PATH", (dir / "other-token").string()}}).token,
            "hf_other");
  EXPECT_EQ(hub_config(config, {{"HF_HOME", dir.string()}, {"HF_TOKEN", "hf_env"}}).token, "hf_env");
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------
// Progress

TEST(ProgressTest, FormatsPercentSizesRateAndEta) {
  EXPECT_EQ(format_progress("model.gguf", 500'000'000, 1'000'000'000, 25e6),
            "model.gguf   50% [##########----------] 500.0/1000.0 MB  25.0 MB/s  ETA 0:20");
  EXPECT_EQ(format_progress("model.gguf", 3'000'000, 0, 0), "model.gguf  3.0 MB");
  EXPECT_EQ(format_progress("x", 0, 7'200'000'000, 1e6), "x    0% [--------------------] 0.0/7200.0 MB  1.0 MB/s  ETA 2:00:00");
  EXPECT_EQ(format_megabytes(1'630'500'000), "1630.5 MB");
}

TEST(ProgressTest, BarRedrawsAtMostTenTimesASecondAndEndsTheLine) {
  std::vector<std::string> writes;
  auto start = Progress::Clock::now();
  Progress progress("f", 1000, 0, Progress::Style::kBar, [&](std::string_view s) { writes.emplace_back(s); },
                    start);
  progress.update(10, start);                                     // first draw
  progress.update(20, start + std::chrono::milliseconds(50));     // too soon
  progress.update(500, start + std::chrono::milliseconds(150));   // drawn
  ASSERT_THAT(writes, SizeIs(2));
  EXPECT_TRUE(writes[1].starts_with("\rf   50% "));
  progress.finish(start + std::chrono::milliseconds(160));
  ASSERT_THAT(writes, SizeIs(4));
  EXPECT_EQ(writes.back(), "\n");
}

TEST(ProgressTest, LogStyleWritesEveryTenPercentOrFiveSeconds) {
  std::vector<std::string> lines;
  log::set_sink([&](std::string_view line) { lines.emplace_back(line); });
  auto start = Progress::Clock::now();
  Progress progress("f", 1000, 0, Progress::Style::kLog, {}, start);
  progress.update(50, start + std::chrono::seconds(1));   // under 10 %, under 5 s: quiet
  progress.update(120, start + std::chrono::seconds(2));  // crossed 10 %
  progress.update(150, start + std::chrono::seconds(3));  // quiet
  progress.update(160, start + std::chrono::seconds(8));  // 5 s since the last line
  progress.finish(start + std::chrono::seconds(9));       // the caller logs the end
  log::set_sink({});
  ASSERT_THAT(lines, SizeIs(2));
  EXPECT_THAT(lines[0], AllOf(HasSubstr("INFO"), HasSubstr("isartor::models"), HasSubstr("f   12%")));
  EXPECT_THAT(lines[1], HasSubstr("f   16%"));
}

}  // namespace
}  // namespace isartor::inference
