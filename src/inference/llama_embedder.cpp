#include "inference/llama_embedder.h"

#include <fmt/format.h>
#include <llama-cpp.h>
#include <llama.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "core/log.h"
#include "inference/bert_gguf.h"
#include "inference/llama_runtime.h"

namespace isartor::inference {

namespace {

constexpr const char* kLogTarget = "isartor::inference";
constexpr int kMaxWorkers = 64;
constexpr int kMaxSequencesPerBatch = 256;  // llama.cpp's LLAMA_MAX_SEQ

std::unexpected<Error> bad_option(const char* field, std::string_view rule) {
  return fail(ErrorCode::kInvalidRequest, fmt::format("embedder option {} {}", field, rule), field);
}

Result<void> validate(const LlamaEmbedderOptions& options) {
  if (options.threads < 0) return bad_option("threads", "must be >= 0");
  if (options.workers < 1 || options.workers > kMaxWorkers) {
    return bad_option("workers", "must be in [1, 64]");
  }
  if (options.max_batch_sequences < 1 || options.max_batch_sequences > kMaxSequencesPerBatch) {
    return bad_option("max_batch_sequences", "must be in [1, 256]");
  }
  // Room for [CLS], one word piece and [SEP].
  if (options.max_sequence_tokens < 3) return bad_option("max_sequence_tokens", "must be >= 3");
  if (options.max_batch_tokens < 1) return bad_option("max_batch_tokens", "must be >= 1");
  if (options.max_pending_texts < 1) return bad_option("max_pending_texts", "must be >= 1");
  return {};
}

// The model's own input limit: isartor.max_seq_length when the converter recorded it, else the
// trained context (position-embedding count).
int model_max_tokens(const llama_model* model) {
  int limit = llama_model_n_ctx_train(model);
  char buf[32];
  const int n = llama_model_meta_val_str(model, kGgufMaxSeqLengthKey, buf, sizeof buf);
  int recorded = 0;
  if (n > 0 && std::from_chars(buf, buf + std::min<int>(n, sizeof buf - 1), recorded).ec == std::errc() &&
      recorded > 0) {
    limit = std::min(limit, recorded);
  }
  return limit;
}

void normalize(std::span<float> v) {
  double sum = 0;
  for (float x : v) sum += static_cast<double>(x) * x;
  if (sum <= 0) return;
  const float scale = static_cast<float>(1.0 / std::sqrt(sum));
  for (float& x : v) x *= scale;
}

}  // namespace

struct LlamaEmbedder::Impl {
  struct Request {
    std::vector<std::string> texts;
    EmbedCallback done;
    std::vector<Embedding> vectors;
    std::atomic<size_t> remaining{0};  // texts not yet embedded or failed; 0 runs `done`
    std::mutex error_mutex;            // workers may fail parts of one request concurrently
    std::optional<Error> error;
    size_t next = 0;  // first text no worker has claimed; guarded by Impl::mutex
  };
  struct Item {
    std::shared_ptr<Request> request;
    size_t index = 0;
    std::vector<llama_token> tokens;
  };

  llama_model_ptr model;
  const llama_vocab* vocab = nullptr;
  LlamaEmbedderOptions options;
  int dims = 0;
  int max_tokens = 0;  // effective per-text cap
  llama_token sep = LLAMA_TOKEN_NULL;

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::shared_ptr<Request>> queue;
  size_t pending_texts = 0;  // unclaimed texts in `queue`
  bool stopping = false;
  std::vector<std::thread> threads;

  std::vector<llama_token> tokenize_all(std::string_view text) const {
    text = text.substr(0, std::min<size_t>(text.size(), INT32_MAX));
    // WordPiece yields at most one piece per byte, plus [CLS] and [SEP].
    std::vector<llama_token> tokens(text.size() + 2);
    const int32_t n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                                     static_cast<int32_t>(std::min<size_t>(tokens.size(), INT32_MAX)),
                                     /*add_special=*/true, /*parse_special=*/true);
    tokens.resize(static_cast<size_t>(std::max(n, 0)));
    return tokens;
  }

  std::vector<llama_token> truncated(std::vector<llama_token> tokens) const {
    if (tokens.size() > static_cast<size_t>(max_tokens)) {
      tokens.resize(static_cast<size_t>(max_tokens));
      tokens.back() = sep;
    }
    return tokens;
  }

  std::vector<llama_token> tokenize(std::string_view text) const {
    // WordPiece never joins across whitespace, so a prefix cut at whitespace tokenizes to a
    // prefix of the whole text's pieces. A long prompt then costs a few KB of tokenizing, not
    // all of it; growing windows cover texts that are mostly spaces.
    for (size_t window = static_cast<size_t>(max_tokens) * 16; window < text.size(); window *= 4) {
      const size_t cut = text.find_last_of(" \t\r\n", window);
      if (cut == std::string_view::npos || cut == 0) continue;
      auto tokens = tokenize_all(text.substr(0, cut));
      if (tokens.size() > static_cast<size_t>(max_tokens)) return truncated(std::move(tokens));
    }
    return truncated(tokenize_all(text));
  }

  void fail_item(const Item& item, const Error& error) {
    std::lock_guard lock(item.request->error_mutex);
    if (!item.request->error) item.request->error = error;
  }

  static void finish(Request& request) {
    EmbedCallback done = std::move(request.done);
    Result<std::vector<Embedding>> result =
        request.error ? Result<std::vector<Embedding>>(std::unexpected(std::move(*request.error)))
                      : std::move(request.vectors);
    try {
      done(std::move(result));
    } catch (const std::exception& e) {
      LOG_ERROR(kLogTarget, "embedding callback threw: {}", e.what());
    } catch (...) {
      LOG_ERROR(kLogTarget, "embedding callback threw");
    }
  }

  static void complete(const Item& item) {
    if (item.request->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      finish(*item.request);
    }
  }

  // Under `mutex`: up to max_batch_sequences texts from the front of the queue, oldest first.
  // Requests with no texts (empty or refused) are popped into `settled`.
  void claim(std::vector<Item>& items, std::vector<std::shared_ptr<Request>>& settled) {
    size_t room = static_cast<size_t>(options.max_batch_sequences);
    while (!queue.empty() && room > 0) {
      const std::shared_ptr<Request>& request = queue.front();
      const size_t take = std::min(room, request->texts.size() - request->next);
      for (size_t k = 0; k < take; ++k) items.push_back({request, request->next + k, {}});
      request->next += take;
      room -= take;
      pending_texts -= take;
      if (request->next == request->texts.size()) {
        if (request->texts.empty()) settled.push_back(request);
        queue.pop_front();
      }
    }
  }

  // One llama_encode over `items` (their tokens fit max_batch_tokens), one sequence each.
  void encode(llama_context* ctx, llama_batch& batch, std::span<Item> items) {
    batch.n_tokens = 0;
    for (size_t s = 0; s < items.size(); ++s) {
      const std::vector<llama_token>& tokens = items[s].tokens;
      for (size_t p = 0; p < tokens.size(); ++p) {
        const int32_t i = batch.n_tokens++;
        batch.token[i] = tokens[p];
        batch.pos[i] = static_cast<llama_pos>(p);
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = static_cast<llama_seq_id>(s);
        batch.logits[i] = 1;
      }
    }
    const int32_t rc = llama_encode(ctx, batch);
    if (rc != 0) {
      const Error error(ErrorCode::kInternal, fmt::format("llama_encode failed ({}): {}", rc, take_llama_error()));
      LOG_WARN(kLogTarget, "{}", error.message);
      for (const Item& item : items) fail_item(item, error);
      return;
    }
    for (size_t s = 0; s < items.size(); ++s) {
      const float* pooled = llama_get_embeddings_seq(ctx, static_cast<llama_seq_id>(s));
      if (pooled == nullptr) {
        fail_item(items[s], Error(ErrorCode::kInternal, "llama.cpp returned no pooled embedding"));
        continue;
      }
      Embedding vector(pooled, pooled + dims);
      normalize(vector);
      items[s].request->vectors[items[s].index] = std::move(vector);
    }
  }

  void work(llama_context_ptr ctx) {
    const int max_batch_tokens = std::max(options.max_batch_tokens, max_tokens);
    BatchPtr batch = make_batch(max_batch_tokens);
    for (;;) {
      std::vector<Item> items;
      std::vector<std::shared_ptr<Request>> settled;
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;  // stopping
        claim(items, settled);
        if (!queue.empty()) wake.notify_one();  // more than one batch queued: wake a peer
      }
      for (const auto& request : settled) finish(*request);
      for (Item& item : items) item.tokens = tokenize(item.request->texts[item.index]);
      for (size_t begin = 0; begin < items.size();) {
        size_t end = begin;
        size_t tokens = 0;
        while (end < items.size() && tokens + items[end].tokens.size() <= static_cast<size_t>(max_batch_tokens)) {
          tokens += items[end++].tokens.size();
        }
        encode(ctx.get(), *batch, std::span(items).subspan(begin, end - begin));
        begin = end;
      }
      for (const Item& item : items) complete(item);
    }
  }

  void enqueue(std::vector<std::string> texts, EmbedCallback done) {
    auto request = std::make_shared<Request>();
    request->done = std::move(done);
    const size_t n = texts.size();
    {
      std::lock_guard lock(mutex);
      if (pending_texts > 0 && pending_texts + n > options.max_pending_texts) {
        // Refused at the front, so a worker answers it without waiting for the backlog.
        request->error =
            Error(ErrorCode::kOverloaded, fmt::format("embedding queue full ({} texts pending)", pending_texts));
        queue.push_front(std::move(request));
      } else {
        request->texts = std::move(texts);
        request->vectors.resize(n);
        request->remaining.store(n, std::memory_order_relaxed);
        pending_texts += n;
        queue.push_back(std::move(request));
      }
    }
    wake.notify_one();
  }

  void stop() {
    std::deque<std::shared_ptr<Request>> dropped;
    {
      std::lock_guard lock(mutex);
      stopping = true;
      dropped.swap(queue);
      pending_texts = 0;
    }
    wake.notify_all();
    for (std::thread& thread : threads) thread.join();
    // Workers are gone, so a partly claimed request's claimed texts are all accounted for.
    for (const auto& request : dropped) {
      if (!request->error) request->error = Error(ErrorCode::kUnavailable, "embedder stopped");
      const size_t unclaimed = request->texts.size() - request->next;
      if (unclaimed == 0 || request->remaining.fetch_sub(unclaimed) == unclaimed) finish(*request);
    }
  }
};

LlamaEmbedder::LlamaEmbedder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LlamaEmbedder::~LlamaEmbedder() {
  impl_->stop();
}

Result<std::unique_ptr<LlamaEmbedder>> LlamaEmbedder::load(const std::filesystem::path& gguf,
                                                           LlamaEmbedderOptions options) {
  RETURN_IF_ERROR(validate(options));
  init_llama_runtime();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(gguf, ec)) {
    return fail(ErrorCode::kNotFound, fmt::format("no embedding model at {}", gguf.string()));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  llama_model_params model_params = llama_model_default_params();
  impl->model.reset(llama_model_load_from_file(gguf.c_str(), model_params));
  if (!impl->model) {
    return fail(ErrorCode::kUnprocessable, fmt::format("cannot load {}: {}", gguf.string(), take_llama_error()));
  }
  impl->vocab = llama_model_get_vocab(impl->model.get());
  impl->dims = llama_model_n_embd_out(impl->model.get());
  impl->sep = llama_vocab_sep(impl->vocab);
  if (impl->sep == LLAMA_TOKEN_NULL) impl->sep = llama_vocab_eos(impl->vocab);
  impl->max_tokens = std::min(options.max_sequence_tokens, model_max_tokens(impl->model.get()));
  if (impl->sep == LLAMA_TOKEN_NULL || impl->max_tokens < 3) {
    return fail(ErrorCode::kUnprocessable, fmt::format("{} is not a sentence-embedding model", gguf.string()));
  }

  const int batch_tokens = std::max(options.max_batch_tokens, impl->max_tokens);
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = options.threads > 0 ? options.threads : std::max(1, hardware / options.workers);
  llama_context_params params = llama_context_default_params();
  // BERT keeps no KV cache, so n_ctx only sets the per-sequence limit (n_ctx / n_seq_max, which
  // llama.cpp pads to a multiple of 256): the per-text cap.
  params.n_ctx = static_cast<uint32_t>(options.max_batch_sequences * ((impl->max_tokens + 255) / 256 * 256));
  params.n_batch = static_cast<uint32_t>(batch_tokens);
  params.n_ubatch = static_cast<uint32_t>(batch_tokens);
  params.n_seq_max = static_cast<uint32_t>(options.max_batch_sequences);
  params.n_threads = threads;
  params.n_threads_batch = threads;
  params.embeddings = true;
  params.no_perf = true;
  // AUTO turns flash attention on for the CPU backend: measured 2-3x faster than without for
  // 256-piece texts and batches of 32, still >= 0.99999 cosine to sentence-transformers.
  params.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO;

  std::vector<llama_context_ptr> contexts;
  for (int i = 0; i < options.workers; ++i) {
    llama_context_ptr ctx(llama_init_from_model(impl->model.get(), params));
    if (!ctx) {
      return fail(ErrorCode::kInternal, fmt::format("cannot create llama context: {}", take_llama_error()));
    }
    const enum llama_pooling_type pooling = llama_pooling_type(ctx.get());
    if (pooling != LLAMA_POOLING_TYPE_MEAN && pooling != LLAMA_POOLING_TYPE_CLS && pooling != LLAMA_POOLING_TYPE_LAST) {
      return fail(ErrorCode::kUnprocessable, fmt::format("{} has no sentence pooling", gguf.string()));
    }
    contexts.push_back(std::move(ctx));
  }
  Impl* state = impl.get();
  try {
    for (llama_context_ptr& ctx : contexts) {
      state->threads.emplace_back([state, ctx = std::move(ctx)]() mutable { state->work(std::move(ctx)); });
    }
  } catch (const std::system_error& e) {
    state->stop();  // joins the workers already started
    return fail(ErrorCode::kInternal, fmt::format("cannot start embedder threads: {}", e.what()));
  }
  LOG_INFO(kLogTarget, "embedding model {} loaded: {} dims, {} tokens per text, {} worker(s) x {} thread(s)",
           gguf.filename().string(), state->dims, state->max_tokens, options.workers, threads);
  return std::unique_ptr<LlamaEmbedder>(new LlamaEmbedder(std::move(impl)));
}

int LlamaEmbedder::dimensions() const {
  return impl_->dims;
}

void LlamaEmbedder::embed_async(std::vector<std::string> texts, EmbedCallback done) {
  impl_->enqueue(std::move(texts), std::move(done));
}

std::vector<int32_t> LlamaEmbedder::tokenize(std::string_view text) const {
  return impl_->tokenize(text);
}

std::size_t LlamaEmbedder::count_tokens(std::string_view text) const {
  return impl_->tokenize_all(text).size();
}

int LlamaEmbedder::max_sequence_tokens() const {
  return impl_->max_tokens;
}

}  // namespace isartor::inference
