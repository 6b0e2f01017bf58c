#pragma once
// Converts a sentence-transformers BERT checkout (all-MiniLM-L6-v2 and kin) into the GGUF file
// that llama.cpp's "bert" architecture loads, in-process and without Python: the same keys and
// tensor names as llama.cpp's convert_hf_to_gguf.py writes for BertModel, plus a few isartor.*
// keys (max_seq_length, the source files' signature).
//
// Inputs read from the checkout: config.json, model.safetensors, vocab.txt, tokenizer_config.json,
// and when present sentence_bert_config.json (max_seq_length) and 1_Pooling/config.json (pooling).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace isartor::inference {

// A read-only, memory-mapped .safetensors file: an 8-byte little-endian header length, a JSON
// header naming each tensor's dtype, shape and byte range, then the raw little-endian data.
class SafetensorsFile {
 public:
  enum class Dtype { kF32, kF16, kBF16, kOther };
  struct Tensor {
    std::string name;
    Dtype dtype = Dtype::kOther;
    std::string dtype_name;           // as written in the header: "F32", "I64", ...
    std::vector<int64_t> shape;       // outermost dimension first, as PyTorch writes it
    std::span<const std::byte> data;  // inside the mapping; its size matches shape × dtype
  };

  // Maps and validates `path`: every tensor's range lies inside the file and matches its shape
  // and dtype. kNotFound when the file is missing, kUnprocessable when it is truncated or garbled.
  // Thread-safe.
  static Result<SafetensorsFile> open(const std::filesystem::path& path);

  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  // Sorted by name, without "__metadata__". The views stay valid while this object lives.
  const std::vector<Tensor>& tensors() const { return tensors_; }
  // The tensor called `name`, or nullptr.
  const Tensor* find(std::string_view name) const;

 private:
  SafetensorsFile() = default;
  void release();

  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::vector<Tensor> tensors_;
};

enum class GgufWeightType { kF16, kF32 };

struct BertGgufOptions {
  // Storage of the 2-D weight matrices (token embeddings, attention and FFN). Norms, biases,
  // position and token-type embeddings are always F32, as llama.cpp's converter keeps them.
  GgufWeightType weights = GgufWeightType::kF16;
};

// Key holding the longest input, in word pieces with [CLS] and [SEP], the model was trained to
// embed (sentence_bert_config.json's max_seq_length; else the position-embedding count).
inline constexpr const char* kGgufMaxSeqLengthKey = "isartor.max_seq_length";

// Writes the GGUF conversion of `model_dir` to `out` atomically (a temporary file beside it, then
// rename), creating `out`'s directory. Errors: kNotFound for a missing input file, kUnprocessable
// for input it cannot convert (not BERT, garbled JSON or safetensors, missing tensors), kInternal
// for write failures. Thread-safe for distinct outputs; concurrent writers of one output leave
// one complete file.
Result<void> convert_bert_to_gguf(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                                  BertGgufOptions options = {});

// Returns `out` once it holds the conversion of `model_dir`: an existing file is reused when the
// signature it records (size and mtime of each input file, weight type, converter version) still
// matches the checkout; otherwise convert_bert_to_gguf (re)writes it. Errors as there. Thread-safe.
Result<std::filesystem::path> ensure_bert_gguf(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                                               BertGgufOptions options = {});

}  // namespace isartor::inference
