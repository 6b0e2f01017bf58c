#include "inference/bert_gguf.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <ggml.h>
#include <gguf.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <tuple>
#include <utility>

#include "inference/llama_runtime.h"

namespace isartor::inference {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Bumped whenever the output for the same input changes, so ensure_bert_gguf rewrites old files.
constexpr uint32_t kConverterVersion = 1;
constexpr const char* kSourceKey = "isartor.source";
constexpr const char* kConverterVersionKey = "isartor.converter_version";

// safetensors refuses headers above 100 MB; so do we, before parsing untrusted JSON.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

// llama.cpp's enums as convert_hf_to_gguf.py writes them (llama.h / gguf-py constants).
constexpr uint32_t kPoolingMean = 1;
constexpr uint32_t kPoolingCls = 2;
constexpr uint32_t kPoolingLast = 3;
constexpr int32_t kTokenNormal = 1;
constexpr int32_t kTokenControl = 3;
constexpr int32_t kTokenUnused = 5;
constexpr uint32_t kFileTypeAllF32 = 0;
constexpr uint32_t kFileTypeMostlyF16 = 1;

// Files whose size and mtime make up the signature ensure_bert_gguf compares.
constexpr const char* kInputFiles[] = {"config.json",           "model.safetensors",         "vocab.txt",
                                       "tokenizer_config.json", "sentence_bert_config.json", "1_Pooling/config.json"};

struct DtypeInfo {
  std::string_view name;
  SafetensorsFile::Dtype dtype;
  size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {"F32", SafetensorsFile::Dtype::kF32, 4},      {"F16", SafetensorsFile::Dtype::kF16, 2},
    {"BF16", SafetensorsFile::Dtype::kBF16, 2},    {"F64", SafetensorsFile::Dtype::kOther, 8},
    {"I64", SafetensorsFile::Dtype::kOther, 8},    {"U64", SafetensorsFile::Dtype::kOther, 8},
    {"I32", SafetensorsFile::Dtype::kOther, 4},    {"U32", SafetensorsFile::Dtype::kOther, 4},
    {"I16", SafetensorsFile::Dtype::kOther, 2},    {"U16", SafetensorsFile::Dtype::kOther, 2},
    {"I8", SafetensorsFile::Dtype::kOther, 1},     {"U8", SafetensorsFile::Dtype::kOther, 1},
    {"BOOL", SafetensorsFile::Dtype::kOther, 1},   {"F8_E4M3", SafetensorsFile::Dtype::kOther, 1},
    {"F8_E5M2", SafetensorsFile::Dtype::kOther, 1}};

const DtypeInfo* find_dtype(std::string_view name) {
  for (const DtypeInfo& info : kDtypes) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

std::unexpected<Error> unprocessable(const fs::path& file, std::string_view what) {
  return fail(ErrorCode::kUnprocessable, fmt::format("{}: {}", file.string(), what));
}

// A non-negative JSON integer, or nullopt.
std::optional<uint64_t> as_unsigned(const json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) return value.get<uint64_t>();
  return std::nullopt;
}

Result<SafetensorsFile::Tensor> parse_tensor_entry(const fs::path& path, const std::string& name, const json& entry,
                                                   std::span<const std::byte> data) {
  const auto bad = [&](std::string_view what) {
    return unprocessable(path, fmt::format("tensor '{}': {}", name, what));
  };
  if (!entry.is_object()) return bad("header entry is not an object");
  const auto dtype_it = entry.find("dtype");
  const auto shape_it = entry.find("shape");
  const auto offsets_it = entry.find("data_offsets");
  if (dtype_it == entry.end() || !dtype_it->is_string()) return bad("no dtype");
  if (shape_it == entry.end() || !shape_it->is_array()) return bad("no shape");
  if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
    return bad("no data_offsets pair");
  }
  SafetensorsFile::Tensor tensor;
  tensor.name = name;
  tensor.dtype_name = dtype_it->get<std::string>();
  const DtypeInfo* info = find_dtype(tensor.dtype_name);
  if (info == nullptr) return bad(fmt::format("unknown dtype '{}'", tensor.dtype_name));
  tensor.dtype = info->dtype;

  uint64_t bytes = info->size;
  for (const json& dim : *shape_it) {
    const auto extent = as_unsigned(dim);
    if (!extent || *extent > static_cast<uint64_t>(INT64_MAX)) return bad("bad shape");
    if (__builtin_mul_overflow(bytes, *extent, &bytes)) return bad("shape overflows");
    tensor.shape.push_back(static_cast<int64_t>(*extent));
  }
  const auto begin = as_unsigned((*offsets_it)[0]);
  const auto end = as_unsigned((*offsets_it)[1]);
  if (!begin || !end || *begin > *end || *end > data.size()) {
    return bad("data_offsets outside the file (truncated?)");
  }
  if (*end - *begin != bytes) return bad("byte size does not match shape and dtype");
  tensor.data = data.subspan(*begin, *end - *begin);
  return tensor;
}

Result<std::string> read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    const bool missing = !fs::exists(path, ec);
    return fail(missing ? ErrorCode::kNotFound : ErrorCode::kUnprocessable,
                fmt::format("cannot read {}", path.string()));
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return unprocessable(path, "read error");
  return text;
}

Result<json> read_json_object(const fs::path& path) {
  ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) return unprocessable(path, "not a JSON object");
  return parsed;
}

// Optional files are absent in some checkouts; present but broken is still an error.
Result<json> read_optional_json_object(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return json::object();
  return read_json_object(path);
}

Result<uint32_t> positive_u32(const json& obj, const char* key, const fs::path& file) {
  const auto it = obj.find(key);
  const auto value = it == obj.end() ? std::nullopt : as_unsigned(*it);
  if (!value || *value == 0 || *value > UINT32_MAX) {
    return unprocessable(file, fmt::format("'{}' must be a positive integer", key));
  }
  return static_cast<uint32_t>(*value);
}

std::string string_or(const json& obj, const char* key, std::string fallback) {
  const auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  // Newer tokenizer_config.json files spell special tokens as {"content": "[CLS]", ...}.
  if (it->is_object()) {
    const auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  return fallback;
}

std::optional<bool> bool_member(const json& obj, const char* key) {
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_boolean()) return std::nullopt;
  return it->get<bool>();
}

struct SpecialTokens {
  uint32_t cls = 0, sep = 0, unk = 0;
  std::optional<uint32_t> pad, mask;
};

struct Vocab {
  std::vector<std::string> tokens;  // already in llama.cpp's phantom-space form
  std::vector<int32_t> types;
  SpecialTokens special;
  bool lowercase = true;
  std::optional<bool> strip_accents;
};

struct BertParams {
  std::string name;
  uint32_t n_layer = 0, n_embd = 0, n_ff = 0, n_head = 0, n_ctx = 0, n_vocab = 0;
  uint32_t n_token_types = 2;
  float norm_eps = 1e-12f;
  uint32_t max_seq_length = 0;
  uint32_t pooling = kPoolingMean;
};

Result<BertParams> read_params(const fs::path& dir) {
  const fs::path config_path = dir / "config.json";
  ASSIGN_OR_RETURN(json config, read_json_object(config_path));
  if (string_or(config, "model_type", "bert") != "bert") {
    return unprocessable(config_path, "model_type is not 'bert'");
  }
  // llama.cpp's BERT graph hard-codes erf GELU and learned absolute positions.
  if (string_or(config, "hidden_act", "gelu") != "gelu") {
    return unprocessable(config_path, "hidden_act other than 'gelu' is not supported");
  }
  if (string_or(config, "position_embedding_type", "absolute") != "absolute") {
    return unprocessable(config_path, "position_embedding_type other than 'absolute'");
  }
  BertParams params;
  params.name = string_or(config, "_name_or_path", dir.filename().string());
  struct Field {
    const char* key;
    uint32_t* value;
  };
  for (const Field& field : {Field{"num_hidden_layers", &params.n_layer}, Field{"hidden_size", &params.n_embd},
                             Field{"intermediate_size", &params.n_ff}, Field{"num_attention_heads", &params.n_head},
                             Field{"max_position_embeddings", &params.n_ctx}, Field{"vocab_size", &params.n_vocab}}) {
    ASSIGN_OR_RETURN(*field.value, positive_u32(config, field.key, config_path));
  }
  if (config.contains("type_vocab_size")) {
    ASSIGN_OR_RETURN(params.n_token_types, positive_u32(config, "type_vocab_size", config_path));
  }
  if (params.n_embd % params.n_head != 0) {
    return unprocessable(config_path, "hidden_size is not a multiple of num_attention_heads");
  }
  if (const auto eps = config.find("layer_norm_eps"); eps != config.end()) {
    if (!eps->is_number() || eps->get<double>() <= 0) {
      return unprocessable(config_path, "layer_norm_eps must be a positive number");
    }
    params.norm_eps = static_cast<float>(eps->get<double>());
  }

  const fs::path st_config_path = dir / "sentence_bert_config.json";
  ASSIGN_OR_RETURN(json st_config, read_optional_json_object(st_config_path));
  params.max_seq_length = params.n_ctx;
  if (st_config.contains("max_seq_length")) {
    ASSIGN_OR_RETURN(uint32_t value, positive_u32(st_config, "max_seq_length", st_config_path));
    params.max_seq_length = std::min(value, params.n_ctx);
  }

  const fs::path pooling_path = dir / "1_Pooling" / "config.json";
  ASSIGN_OR_RETURN(json pooling, read_optional_json_object(pooling_path));
  if (!pooling.empty()) {
    if (bool_member(pooling, "pooling_mode_mean_tokens").value_or(false)) {
      params.pooling = kPoolingMean;
    } else if (bool_member(pooling, "pooling_mode_cls_token").value_or(false)) {
      params.pooling = kPoolingCls;
    } else if (bool_member(pooling, "pooling_mode_lasttoken").value_or(false)) {
      params.pooling = kPoolingLast;
    } else {
      return unprocessable(pooling_path, "only mean, CLS or last-token pooling is supported");
    }
  }
  return params;
}

// WordPiece vocabulary in llama.cpp's form: a word-initial piece gets the "▁" phantom space, a
// continuation drops its "##", special tokens stay as written (convert_hf_to_gguf.py does the same).
Result<Vocab> read_vocab(const fs::path& dir, uint32_t n_vocab) {
  const fs::path vocab_path = dir / "vocab.txt";
  ASSIGN_OR_RETURN(std::string text, read_text_file(vocab_path));
  std::vector<std::string> pieces;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    pieces.push_back(std::move(line));
  }
  if (pieces.empty() || pieces.size() > n_vocab) {
    return unprocessable(vocab_path, fmt::format("{} tokens for vocab_size {}", pieces.size(), n_vocab));
  }

  const fs::path tok_config_path = dir / "tokenizer_config.json";
  ASSIGN_OR_RETURN(json tok_config, read_json_object(tok_config_path));

  const auto id_of = [&](const std::string& piece) -> std::optional<uint32_t> {
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (pieces[i] == piece) return static_cast<uint32_t>(i);
    }
    return std::nullopt;
  };
  Vocab vocab;
  std::set<uint32_t> control;
  for (auto [key, fallback, target] :
       {std::tuple{"cls_token", "[CLS]", &vocab.special.cls}, std::tuple{"sep_token", "[SEP]", &vocab.special.sep},
        std::tuple{"unk_token", "[UNK]", &vocab.special.unk}}) {
    const std::string piece = string_or(tok_config, key, fallback);
    const auto id = id_of(piece);
    if (!id) return unprocessable(vocab_path, fmt::format("no {} '{}'", key, piece));
    *target = *id;
    control.insert(*id);
  }
  for (auto [key, fallback, target] : {std::tuple{"pad_token", "[PAD]", &vocab.special.pad},
                                       std::tuple{"mask_token", "[MASK]", &vocab.special.mask}}) {
    *target = id_of(string_or(tok_config, key, fallback));
    if (*target) control.insert(**target);
  }
  vocab.lowercase = bool_member(tok_config, "do_lower_case").value_or(true);
  vocab.strip_accents = bool_member(tok_config, "strip_accents");

  vocab.tokens.reserve(n_vocab);
  vocab.types.reserve(n_vocab);
  for (size_t i = 0; i < pieces.size(); ++i) {
    std::string& piece = pieces[i];
    if (control.contains(static_cast<uint32_t>(i))) {
      vocab.tokens.push_back(std::move(piece));
      vocab.types.push_back(kTokenControl);
    } else {
      vocab.tokens.push_back(piece.starts_with("##") ? piece.substr(2) : "\xe2\x96\x81" + piece);
      vocab.types.push_back(kTokenNormal);
    }
  }
  for (size_t i = pieces.size(); i < n_vocab; ++i) {
    vocab.tokens.push_back(fmt::format("[PAD{}]", i));
    vocab.types.push_back(kTokenUnused);
  }
  return vocab;
}

// GGUF name for a Hugging Face BERT tensor name; nullopt for tensors llama.cpp does not use.
Result<std::optional<std::string>> gguf_tensor_name(std::string_view name, uint32_t n_layer, const fs::path& file) {
  if (name.starts_with("bert.")) name.remove_prefix(5);
  if (name == "embeddings.position_ids" || name.starts_with("pooler.") || name.starts_with("cls.")) {
    return std::nullopt;
  }
  std::string leaf;
  const size_t dot = name.rfind('.');
  const std::string_view last = dot == std::string_view::npos ? name : name.substr(dot + 1);
  if (last == "weight" || last == "gamma") {
    leaf = "weight";
  } else if (last == "bias" || last == "beta") {
    leaf = "bias";
  }
  const auto unknown = [&] { return unprocessable(file, fmt::format("unexpected tensor '{}'", name)); };
  if (leaf.empty()) return unknown();
  const std::string_view stem = name.substr(0, dot);

  static constexpr std::pair<std::string_view, std::string_view> kEmbeddings[] = {
      {"embeddings.word_embeddings", "token_embd"},
      {"embeddings.position_embeddings", "position_embd"},
      {"embeddings.token_type_embeddings", "token_types"},
      {"embeddings.LayerNorm", "token_embd_norm"}};
  for (const auto& [hf, gguf] : kEmbeddings) {
    if (stem == hf) return fmt::format("{}.{}", gguf, leaf);
  }

  static constexpr std::pair<std::string_view, std::string_view> kLayer[] = {
      {"attention.self.query", "attn_q"},
      {"attention.self.key", "attn_k"},
      {"attention.self.value", "attn_v"},
      {"attention.output.dense", "attn_output"},
      {"attention.output.LayerNorm", "attn_output_norm"},
      {"intermediate.dense", "ffn_up"},
      {"output.dense", "ffn_down"},
      {"output.LayerNorm", "layer_output_norm"}};
  constexpr std::string_view kLayerPrefix = "encoder.layer.";
  if (!stem.starts_with(kLayerPrefix)) return unknown();
  std::string_view rest = stem.substr(kLayerPrefix.size());
  uint32_t layer = 0;
  const auto [layer_end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), layer);
  if (ec != std::errc() || layer >= n_layer || layer_end == rest.data() + rest.size() || *layer_end != '.') {
    return unknown();
  }
  rest.remove_prefix(static_cast<size_t>(layer_end - rest.data()) + 1);
  for (const auto& [hf, gguf] : kLayer) {
    if (rest == hf) return fmt::format("blk.{}.{}.{}", layer, gguf, leaf);
  }
  return unknown();
}

// The names llama.cpp's BERT loader requires (token_types and biases beyond these are optional).
std::vector<std::string> required_tensor_names(uint32_t n_layer) {
  std::vector<std::string> names = {"token_embd.weight", "position_embd.weight", "token_embd_norm.weight",
                                    "token_embd_norm.bias"};
  for (uint32_t i = 0; i < n_layer; ++i) {
    for (const char* part : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_up", "ffn_down"}) {
      names.push_back(fmt::format("blk.{}.{}.weight", i, part));
    }
    for (const char* norm : {"attn_output_norm", "layer_output_norm"}) {
      names.push_back(fmt::format("blk.{}.{}.weight", i, norm));
      names.push_back(fmt::format("blk.{}.{}.bias", i, norm));
    }
  }
  return names;
}

struct ConvertedTensor {
  std::string name;
  ggml_type type = GGML_TYPE_F32;
  std::vector<int64_t> ne;  // innermost first, the reverse of the safetensors shape
  std::vector<std::byte> bytes;
};

// memcpy into typed storage: safetensors data has no alignment guarantee.
template <class T>
std::vector<T> copy_elements(std::span<const std::byte> data) {
  std::vector<T> out(data.size() / sizeof(T));
  std::memcpy(out.data(), data.data(), out.size() * sizeof(T));
  return out;
}

Result<ConvertedTensor> convert_tensor(const SafetensorsFile::Tensor& source, std::string name, GgufWeightType weights,
                                       const fs::path& file) {
  if (source.shape.empty() || source.shape.size() > 2) {
    return unprocessable(file, fmt::format("tensor '{}' is not 1-D or 2-D", source.name));
  }
  std::vector<float> values;
  switch (source.dtype) {
    case SafetensorsFile::Dtype::kF32:
      values = copy_elements<float>(source.data);
      break;
    case SafetensorsFile::Dtype::kF16: {
      const auto halves = copy_elements<ggml_fp16_t>(source.data);
      values.resize(halves.size());
      ggml_fp16_to_fp32_row(halves.data(), values.data(), static_cast<int64_t>(halves.size()));
      break;
    }
    case SafetensorsFile::Dtype::kBF16: {
      const auto halves = copy_elements<ggml_bf16_t>(source.data);
      values.resize(halves.size());
      ggml_bf16_to_fp32_row(halves.data(), values.data(), static_cast<int64_t>(halves.size()));
      break;
    }
    case SafetensorsFile::Dtype::kOther:
      return unprocessable(file,
                           fmt::format("tensor '{}' has dtype {}, not F32/F16/BF16", source.name, source.dtype_name));
  }

  ConvertedTensor out;
  out.ne.assign(source.shape.rbegin(), source.shape.rend());
  // Like convert_hf_to_gguf.py: llama.cpp reads norms, biases and the position / token-type
  // tables as F32; only the big matrices may be F16.
  const bool keep_f32 = out.ne.size() == 1 || name.ends_with("_norm.weight") || name.starts_with("position_embd.") ||
                        name.starts_with("token_types.");
  out.type = keep_f32 || weights == GgufWeightType::kF32 ? GGML_TYPE_F32 : GGML_TYPE_F16;
  if (out.type == GGML_TYPE_F32) {
    out.bytes.resize(values.size() * sizeof(float));
    std::memcpy(out.bytes.data(), values.data(), out.bytes.size());
  } else {
    out.bytes.resize(values.size() * sizeof(ggml_fp16_t));
    ggml_fp32_to_fp16_row(values.data(), reinterpret_cast<ggml_fp16_t*>(out.bytes.data()),
                          static_cast<int64_t>(values.size()));
  }
  out.name = std::move(name);
  return out;
}

Result<std::vector<ConvertedTensor>> convert_tensors(const fs::path& dir, const BertParams& params,
                                                     GgufWeightType weights) {
  const fs::path path = dir / "model.safetensors";
  ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::open(path));
  std::vector<ConvertedTensor> converted;
  std::set<std::string> names;
  for (const SafetensorsFile::Tensor& tensor : file.tensors()) {
    ASSIGN_OR_RETURN(std::optional<std::string> name, gguf_tensor_name(tensor.name, params.n_layer, path));
    if (!name) continue;
    if (!names.insert(*name).second) {
      return unprocessable(path, fmt::format("tensor '{}' appears twice", tensor.name));
    }
    ASSIGN_OR_RETURN(ConvertedTensor out, convert_tensor(tensor, std::move(*name), weights, path));
    converted.push_back(std::move(out));
  }
  for (const std::string& required : required_tensor_names(params.n_layer)) {
    if (!names.contains(required)) {
      return unprocessable(path, fmt::format("no tensor for '{}'", required));
    }
  }
  return converted;
}

// "config.json:612:1732540000000000000;model.safetensors:...;sentence_bert_config.json:-;..."
std::string source_signature(const fs::path& dir, GgufWeightType weights) {
  std::string signature = weights == GgufWeightType::kF16 ? "f16" : "f32";
  for (const char* name : kInputFiles) {
    std::error_code size_ec, time_ec;
    const auto size = fs::file_size(dir / name, size_ec);
    const auto mtime = fs::last_write_time(dir / name, time_ec);
    if (size_ec || time_ec) {
      signature += fmt::format(";{}:-", name);
    } else {
      signature += fmt::format(";{}:{}:{}", name, size, mtime.time_since_epoch().count());
    }
  }
  return signature;
}

using GgufPtr = std::unique_ptr<gguf_context, decltype(&gguf_free)>;
using GgmlPtr = std::unique_ptr<ggml_context, decltype(&ggml_free)>;

void set_metadata(gguf_context* gguf, const BertParams& params, const Vocab& vocab, GgufWeightType weights,
                  const std::string& signature) {
  gguf_set_val_str(gguf, "general.architecture", "bert");
  gguf_set_val_str(gguf, "general.type", "model");
  gguf_set_val_str(gguf, "general.name", params.name.c_str());
  gguf_set_val_u32(gguf, "general.file_type", weights == GgufWeightType::kF16 ? kFileTypeMostlyF16 : kFileTypeAllF32);
  gguf_set_val_u32(gguf, "general.quantization_version", 2);

  gguf_set_val_u32(gguf, "bert.block_count", params.n_layer);
  gguf_set_val_u32(gguf, "bert.context_length", params.n_ctx);
  gguf_set_val_u32(gguf, "bert.embedding_length", params.n_embd);
  gguf_set_val_u32(gguf, "bert.feed_forward_length", params.n_ff);
  gguf_set_val_u32(gguf, "bert.attention.head_count", params.n_head);
  gguf_set_val_f32(gguf, "bert.attention.layer_norm_epsilon", params.norm_eps);
  gguf_set_val_bool(gguf, "bert.attention.causal", false);
  gguf_set_val_u32(gguf, "bert.pooling_type", params.pooling);

  gguf_set_val_u32(gguf, "tokenizer.ggml.token_type_count", params.n_token_types);
  gguf_set_val_str(gguf, "tokenizer.ggml.model", "bert");
  // llama.cpp ignores the pre-tokenizer name for WordPiece vocabularies.
  gguf_set_val_str(gguf, "tokenizer.ggml.pre", "default");
  std::vector<const char*> tokens;
  tokens.reserve(vocab.tokens.size());
  for (const std::string& token : vocab.tokens) tokens.push_back(token.c_str());
  gguf_set_arr_str(gguf, "tokenizer.ggml.tokens", tokens.data(), tokens.size());
  gguf_set_arr_data(gguf, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, vocab.types.data(), vocab.types.size());
  gguf_set_val_u32(gguf, "tokenizer.ggml.bos_token_id", vocab.special.cls);
  gguf_set_val_u32(gguf, "tokenizer.ggml.eos_token_id", vocab.special.sep);
  gguf_set_val_u32(gguf, "tokenizer.ggml.unknown_token_id", vocab.special.unk);
  gguf_set_val_u32(gguf, "tokenizer.ggml.seperator_token_id", vocab.special.sep);  // sic
  if (vocab.special.pad) gguf_set_val_u32(gguf, "tokenizer.ggml.padding_token_id", *vocab.special.pad);
  if (vocab.special.mask) gguf_set_val_u32(gguf, "tokenizer.ggml.mask_token_id", *vocab.special.mask);
  gguf_set_val_bool(gguf, "tokenizer.ggml.add_bos_token", true);
  gguf_set_val_bool(gguf, "tokenizer.ggml.add_eos_token", true);
  gguf_set_val_bool(gguf, "tokenizer.ggml.add_sep_token", false);
  gguf_set_val_bool(gguf, "tokenizer.ggml.normalizer.lowercase", vocab.lowercase);
  if (vocab.strip_accents) {
    gguf_set_val_bool(gguf, "tokenizer.ggml.normalizer.strip_accents", *vocab.strip_accents);
  }

  gguf_set_val_u32(gguf, kGgufMaxSeqLengthKey, params.max_seq_length);
  gguf_set_val_str(gguf, kSourceKey, signature.c_str());
  gguf_set_val_u32(gguf, kConverterVersionKey, kConverterVersion);
}

// Writes to a unique temporary beside `out`, flushes it to disk, then renames it over `out`, so
// readers never see a partial file.
Result<void> write_atomically(const gguf_context* gguf, const fs::path& out) {
  static std::atomic<uint64_t> counter{0};
  std::error_code ec;
  if (out.has_parent_path()) fs::create_directories(out.parent_path(), ec);
  if (ec) {
    return fail(ErrorCode::kInternal, fmt::format("cannot create {}: {}", out.parent_path().string(), ec.message()));
  }
  fs::path tmp = out;
  tmp += fmt::format(".tmp-{}-{}", ::getpid(), counter.fetch_add(1));
  FILE* file = std::fopen(tmp.c_str(), "wb");
  if (file == nullptr) {
    return fail(ErrorCode::kInternal, fmt::format("cannot create {}: {}", tmp.string(), std::strerror(errno)));
  }
  bool ok = gguf_write_to_file_ptr(gguf, file, /*only_meta=*/false);
  ok = std::fflush(file) == 0 && ok;
  ok = ::fsync(::fileno(file)) == 0 && ok;
  ok = std::fclose(file) == 0 && ok;
  if (ok) fs::rename(tmp, out, ec);
  if (!ok || ec) {
    fs::remove(tmp, ec);
    return fail(ErrorCode::kInternal, fmt::format("cannot write {}", out.string()));
  }
  return {};
}

bool up_to_date(const fs::path& out, const std::string& signature) {
  std::error_code ec;
  if (!fs::is_regular_file(out, ec)) return false;
  GgufPtr gguf(gguf_init_from_file(out.c_str(), gguf_init_params{/*no_alloc=*/true, nullptr}), gguf_free);
  if (!gguf) {
    take_llama_error();  // an unreadable old output is simply rewritten
    return false;
  }
  const int64_t source = gguf_find_key(gguf.get(), kSourceKey);
  const int64_t version = gguf_find_key(gguf.get(), kConverterVersionKey);
  return source >= 0 && version >= 0 && gguf_get_kv_type(gguf.get(), source) == GGUF_TYPE_STRING &&
         gguf_get_kv_type(gguf.get(), version) == GGUF_TYPE_UINT32 &&
         signature == gguf_get_val_str(gguf.get(), source) &&
         gguf_get_val_u32(gguf.get(), version) == kConverterVersion;
}

}  // namespace

Result<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return fail(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kUnprocessable,
                fmt::format("cannot open {}: {}", path.string(), std::strerror(err)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 8) {
    ::close(fd);
    return unprocessable(path, "not a safetensors file (too short)");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) {
    return fail(ErrorCode::kInternal, fmt::format("cannot map {}: {}", path.string(), std::strerror(errno)));
  }
  SafetensorsFile file;
  file.map_ = map;
  file.map_size_ = size;
  const std::span<const std::byte> bytes(static_cast<const std::byte*>(map), size);

  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<uint8_t>(bytes[i]);
  if (header_size > size - 8 || header_size > kMaxHeaderBytes) {
    return unprocessable(path, "header length exceeds the file");
  }
  const char* header_begin = reinterpret_cast<const char*>(bytes.data() + 8);
  const json header = json::parse(header_begin, header_begin + header_size, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return unprocessable(path, "header is not a JSON object");
  }
  const auto data = bytes.subspan(8 + header_size);
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    ASSIGN_OR_RETURN(Tensor tensor, parse_tensor_entry(path, name, entry, data));
    file.tensors_.push_back(std::move(tensor));
  }
  return file;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : map_(std::exchange(other.map_, nullptr)),
      map_size_(std::exchange(other.map_size_, 0)),
      tensors_(std::move(other.tensors_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    release();
    map_ = std::exchange(other.map_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
    tensors_ = std::move(other.tensors_);
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() {
  release();
}

void SafetensorsFile::release() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
  map_ = nullptr;
  map_size_ = 0;
  tensors_.clear();
}

const SafetensorsFile::Tensor* SafetensorsFile::find(std::string_view name) const {
  for (const Tensor& tensor : tensors_) {
    if (tensor.name == name) return &tensor;
  }
  return nullptr;
}

Result<void> convert_bert_to_gguf(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                                  BertGgufOptions options) {
  init_llama_runtime();
  ASSIGN_OR_RETURN(BertParams params, read_params(model_dir));
  ASSIGN_OR_RETURN(Vocab vocab, read_vocab(model_dir, params.n_vocab));
  // Before reading the weights, so a checkout changing underneath us is not recorded as current.
  const std::string signature = source_signature(model_dir, options.weights);
  ASSIGN_OR_RETURN(std::vector<ConvertedTensor> tensors, convert_tensors(model_dir, params, options.weights));

  GgufPtr gguf(gguf_init_empty(), gguf_free);
  set_metadata(gguf.get(), params, vocab, options.weights, signature);
  // Metadata only: the tensor data stays in `tensors` and is written straight from there.
  GgmlPtr ggml(ggml_init(ggml_init_params{ggml_tensor_overhead() * (tensors.size() + 1), nullptr,
                                          /*no_alloc=*/true}),
               ggml_free);
  if (!ggml) return fail(ErrorCode::kInternal, "ggml_init failed");
  for (ConvertedTensor& tensor : tensors) {
    ggml_tensor* t = ggml_new_tensor(ggml.get(), tensor.type, static_cast<int>(tensor.ne.size()), tensor.ne.data());
    ggml_set_name(t, tensor.name.c_str());
    t->data = tensor.bytes.data();
    gguf_add_tensor(gguf.get(), t);
  }
  return write_atomically(gguf.get(), out);
}

Result<std::filesystem::path> ensure_bert_gguf(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                                               BertGgufOptions options) {
  init_llama_runtime();
  if (up_to_date(out, source_signature(model_dir, options.weights))) return out;
  RETURN_IF_ERROR(convert_bert_to_gguf(model_dir, out, options));
  return out;
}

}  // namespace isartor::inference
