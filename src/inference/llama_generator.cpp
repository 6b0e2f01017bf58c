#include "inference/llama_generator.h"

#include <fmt/format.h>
#include <llama-cpp.h>
#include <llama.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "core/log.h"
#include "inference/answer_stream.h"
#include "inference/callbacks.h"
#include "inference/llama_runtime.h"

namespace isartor::inference {

namespace {

constexpr const char* kLogTarget = "isartor::inference";
constexpr int kMaxSequences = 256;  // llama.cpp's LLAMA_MAX_SEQ
constexpr int32_t kPenaltyLastN = 64;
using Clock = std::chrono::steady_clock;

std::unexpected<Error> bad_option(const char* field, std::string_view rule) {
  return fail(ErrorCode::kInvalidRequest, fmt::format("generator option {} {}", field, rule), field);
}

Result<void> validate(const LlamaGeneratorOptions& options) {
  if (options.context_tokens < 16) return bad_option("context_tokens", "must be >= 16");
  if (options.max_sequences < 1 || options.max_sequences > kMaxSequences) {
    return bad_option("max_sequences", "must be in [1, 256]");
  }
  if (options.threads < 0) return bad_option("threads", "must be >= 0");
  // Every active sequence contributes one token to each decode.
  if (options.batch_tokens < options.max_sequences) return bad_option("batch_tokens", "must be >= max_sequences");
  if (options.gpu_layers < 0) return bad_option("gpu_layers", "must be >= 0");
  if (options.max_classify_tokens < 1) return bad_option("max_classify_tokens", "must be >= 1");
  return {};
}

Result<void> validate(const GenerateOptions& options) {
  if (options.max_tokens < 1) return fail(ErrorCode::kInvalidRequest, "max_tokens must be >= 1", "max_tokens");
  if (!(options.temperature >= 0)) return fail(ErrorCode::kInvalidRequest, "temperature must be >= 0", "temperature");
  if (!(options.repetition_penalty > 0)) {
    return fail(ErrorCode::kInvalidRequest, "repetition_penalty must be > 0", "repetition_penalty");
  }
  return {};
}

}  // namespace

struct LlamaGenerator::Impl {
  struct Task {
    bool classify = false;
    std::vector<ChatMessage> messages;
    GenerateOptions options;
    TokenCallback on_token;
    ClassifyCallback classify_done;
    GenerateCallback generate_done;
    Cancellation cancel;
    Clock::time_point deadline = Clock::time_point::max();
  };
  // A sequence of the context; owned by the worker thread.
  struct Slot {
    llama_seq_id seq = 0;
    std::unique_ptr<Task> task;  // null: free
    std::vector<llama_token> prompt;
    size_t prefilled = 0;                 // prompt tokens in the KV cache
    size_t chunk = 0;                     // prompt tokens in this step's batch
    llama_pos pos = 0;                    // position of the next token decoded
    llama_token next = LLAMA_TOKEN_NULL;  // sampled, decoded in the next step
    int32_t output = -1;                  // batch index of this step's logits, -1: none
    llama_sampler_ptr sampler;
    std::optional<AnswerStream> stream;
    int completion_tokens = 0;
  };
  struct Counters {
    std::atomic<uint64_t> decodes{0}, prompt_tokens{0}, generated_tokens{0}, classifications{0}, generations{0},
        reused_prompt_tokens{0};
    std::atomic<int> max_sequences_in_decode{0};
  };

  llama_model_ptr model;
  llama_context_ptr ctx;
  const llama_vocab* vocab = nullptr;
  LlamaGeneratorOptions options;
  std::string name;
  std::string chat_template;  // template text or built-in name given to llama_chat_apply_template
  int context_limit = 0;      // tokens per sequence
  // Every classification prompt starts with the same instruction: its tokens are decoded once, at
  // load, into sequence prefix_seq, and each classification starts from a copy (shared cells of
  // the unified KV cache, not recomputed).
  std::vector<llama_token> classify_prefix;
  llama_seq_id prefix_seq = 0;
  llama_token simple_token = LLAMA_TOKEN_NULL;
  llama_token complex_token = LLAMA_TOKEN_NULL;
  Counters counters;

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::unique_ptr<Task>> queue;
  std::vector<std::pair<std::unique_ptr<Task>, Error>> refused;  // answered by the worker
  bool stopping = false;
  std::thread thread;

  Result<std::string> render(const std::vector<ChatMessage>& messages) const {
    std::vector<llama_chat_message> chat;
    size_t chars = 0;
    for (const ChatMessage& m : messages) {
      chat.push_back({m.role.c_str(), m.content.c_str()});
      chars += m.role.size() + m.content.size();
    }
    std::string out(2 * chars + 256, '\0');
    for (int attempt = 0; attempt < 2; ++attempt) {
      const int32_t n =
          llama_chat_apply_template(chat_template.c_str(), chat.data(), chat.size(), /*add_ass=*/true, out.data(),
                                    static_cast<int32_t>(std::min<size_t>(out.size(), INT32_MAX)));
      if (n < 0) return fail(ErrorCode::kUnprocessable, "the model's chat template cannot render these messages");
      const bool fits = static_cast<size_t>(n) <= out.size();
      out.resize(static_cast<size_t>(n));
      if (fits) return out;
    }
    return fail(ErrorCode::kInternal, "chat template output changed size");
  }

  std::vector<llama_token> tokenize(std::string_view text) const {
    // Control-token text is parsed (the template's own turn markers are text).
    std::vector<llama_token> tokens(text.size() + 2);
    for (int attempt = 0; attempt < 2; ++attempt) {
      const int32_t n =
          llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                         static_cast<int32_t>(tokens.size()), /*add_special=*/true, /*parse_special=*/true);
      if (n >= 0) {
        tokens.resize(static_cast<size_t>(n));
        return tokens;
      }
      tokens.resize(static_cast<size_t>(-n));
    }
    return {};
  }

  std::string piece(llama_token token) const {
    char buf[128];
    const int32_t n = llama_token_to_piece(vocab, token, buf, sizeof buf, 0, /*special=*/false);
    if (n >= 0) return std::string(buf, static_cast<size_t>(n));
    std::string out(static_cast<size_t>(-n), '\0');
    const int32_t m = llama_token_to_piece(vocab, token, out.data(), static_cast<int32_t>(out.size()), 0, false);
    out.resize(static_cast<size_t>(std::max(m, 0)));
    return out;
  }

  // The first token the model writes for `label` after the classification prompt: where the
  // tokens of prompt + label part from those of the prompt (a merge across the seam counts).
  Result<llama_token> label_token(std::string_view label) const {
    ASSIGN_OR_RETURN(std::string prompt, render(classification_messages({{"user", "Hello"}})));
    const auto base = tokenize(prompt);
    const auto with_label = tokenize(prompt + std::string(label));
    size_t i = 0;
    while (i < base.size() && i < with_label.size() && base[i] == with_label[i]) ++i;
    if (i >= with_label.size()) return fail(ErrorCode::kUnprocessable, fmt::format("no token for label {}", label));
    return with_label[i];
  }

  // The task's sampler chain: for a kGrammar classification the label grammar and greedy, else
  // the request's penalties and temperature.
  llama_sampler_ptr make_sampler(const Task& task) const {
    llama_sampler_ptr chain(llama_sampler_chain_init(llama_sampler_chain_default_params()));
    if (task.classify) {
      llama_sampler_chain_add(chain.get(), llama_sampler_init_grammar(vocab, kLabelGrammar, "root"));
      llama_sampler_chain_add(chain.get(), llama_sampler_init_greedy());
      return chain;
    }
    const GenerateOptions& o = task.options;
    if (o.repetition_penalty != 1.0f) {
      llama_sampler_chain_add(chain.get(), llama_sampler_init_penalties(llama_vocab_n_tokens(vocab), kPenaltyLastN,
                                                                        o.repetition_penalty, 0.0f, 0.0f));
    }
    if (o.temperature == 0.0f) {
      llama_sampler_chain_add(chain.get(), llama_sampler_init_greedy());
    } else {
      llama_sampler_chain_add(chain.get(), llama_sampler_init_temp(o.temperature));
      llama_sampler_chain_add(chain.get(), llama_sampler_init_dist(o.seed));
    }
    return chain;
  }

  // Whether the slot's task is a classification decided by its label logits (no sampling).
  bool by_logits(const Slot& slot) const {
    return slot.task->classify && options.classify_mode == ClassifyMode::kLogits;
  }

  // A classification's outcome once it ended with `result`: its label from this batch's logits or
  // from the text it wrote under the grammar, or why there is none.
  Result<Label> classification(const Slot& slot, const Result<FinishReason>& result) const {
    RETURN_IF_ERROR(result);
    if (*result == FinishReason::kCancelled) return fail(ErrorCode::kUnavailable, "classification cancelled");
    if (*result == FinishReason::kTimeout) return fail(ErrorCode::kUpstreamTimeout, "classification timed out");
    if (!by_logits(slot)) return parse_label(slot.stream ? slot.stream->text() : std::string());
    const float* logits = slot.output >= 0 ? llama_get_logits_ith(ctx.get(), slot.output) : nullptr;
    if (logits == nullptr) return fail(ErrorCode::kInternal, "llama.cpp returned no logits");
    return logits[simple_token] > logits[complex_token] ? Label::kSimple : Label::kComplex;
  }

  // Ends the slot's request with `result` (an error, or its finish reason) and frees the slot.
  void finish(Slot& slot, Result<FinishReason> result) {
    Task& task = *slot.task;
    if (task.classify) {
      if (slot.stream) (void)slot.stream->finish();
      Result<Label> label = classification(slot, result);
      if (label) counters.classifications.fetch_add(1, std::memory_order_relaxed);
      run_callback(task.classify_done, std::move(label));
    } else {
      counters.generations.fetch_add(1, std::memory_order_relaxed);
      if (!result) {
        run_callback(task.generate_done, Result<Generation>(std::unexpected(result.error())));
      } else {
        if (slot.stream) {
          if (std::string rest = slot.stream->finish(); !rest.empty())
            run_callback(task.on_token, std::string_view(rest));
        }
        Generation generation;
        generation.text = slot.stream ? slot.stream->text() : std::string();
        generation.prompt_tokens = static_cast<int>(slot.prompt.size());
        generation.completion_tokens = slot.completion_tokens;
        generation.finish = *result;
        run_callback(task.generate_done, Result<Generation>(std::move(generation)));
      }
    }
    llama_memory_seq_rm(llama_get_memory(ctx.get()), slot.seq, -1, -1);
    const llama_seq_id seq = slot.seq;
    slot = Slot{};
    slot.seq = seq;
  }

  // Starts a classification's sequence from the shared instruction prefix, as far as its tokens
  // match (at least one token is left to decode, for the logits).
  void reuse_prefix(Slot& slot) {
    const size_t limit = std::min(classify_prefix.size(), slot.prompt.size() - 1);
    size_t same = 0;
    while (same < limit && slot.prompt[same] == classify_prefix[same]) ++same;
    if (same == 0) return;
    llama_memory_seq_cp(llama_get_memory(ctx.get()), prefix_seq, slot.seq, 0, static_cast<llama_pos>(same));
    slot.prefilled = same;
    slot.pos = static_cast<llama_pos>(same);
    counters.reused_prompt_tokens.fetch_add(same, std::memory_order_relaxed);
  }

  // The tokens every classification prompt starts with: the common prefix of two rendered
  // prompts, less the last common token (the request's first word may merge with it).
  std::vector<llama_token> shared_classify_prefix() const {
    auto a = render(classification_messages({{"user", "A"}}));
    auto b = render(classification_messages({{"user", "B"}}));
    if (!a || !b) return {};
    const auto ta = tokenize(*a);
    const auto tb = tokenize(*b);
    size_t same = 0;
    while (same < ta.size() && same < tb.size() && ta[same] == tb[same]) ++same;
    if (same < 2) return {};
    return std::vector<llama_token>(ta.begin(), ta.begin() + static_cast<std::ptrdiff_t>(same - 1));
  }

  // Decodes classify_prefix into prefix_seq; on failure classifications just decode it themselves.
  void decode_prefix() {
    BatchPtr batch = make_batch(options.batch_tokens);
    for (size_t at = 0; at < classify_prefix.size();) {
      batch->n_tokens = 0;
      for (; at < classify_prefix.size() && batch->n_tokens < options.batch_tokens; ++at) {
        const int32_t i = batch->n_tokens++;
        batch->token[i] = classify_prefix[at];
        batch->pos[i] = static_cast<llama_pos>(at);
        batch->n_seq_id[i] = 1;
        batch->seq_id[i][0] = prefix_seq;
        batch->logits[i] = false;
      }
      if (llama_decode(ctx.get(), *batch) != 0) {
        LOG_WARN(kLogTarget, "cannot pre-compute the classification prompt: {}", take_llama_error());
        llama_memory_seq_rm(llama_get_memory(ctx.get()), prefix_seq, -1, -1);
        classify_prefix.clear();
        return;
      }
    }
  }

  // Prepares an admitted request; false when it already ended (bad prompt, cancelled).
  bool start(Slot& slot, std::unique_ptr<Task> task) {
    slot.task = std::move(task);
    Task& t = *slot.task;
    auto prompt = render(t.classify ? classification_messages(t.messages) : t.messages);
    if (!prompt) {
      finish(slot, std::unexpected(prompt.error()));
      return false;
    }
    slot.prompt = tokenize(*prompt);
    // Room for at least the first answer token.
    if (slot.prompt.empty() || slot.prompt.size() >= static_cast<size_t>(context_limit)) {
      finish(slot, fail(ErrorCode::kPayloadTooLarge, fmt::format("prompt of {} tokens does not fit the context of {}",
                                                                 slot.prompt.size(), context_limit)));
      return false;
    }
    if (t.classify) reuse_prefix(slot);
    if (!by_logits(slot)) {
      slot.sampler = make_sampler(t);
      slot.stream.emplace(t.options.stop);
    }
    return true;
  }

  // Cancellation and timeouts, checked before each decode.
  void expire(std::vector<Slot>& slots) {
    const auto now = Clock::now();
    for (Slot& slot : slots) {
      if (!slot.task) continue;
      if (slot.task->cancel.requested()) {
        finish(slot, FinishReason::kCancelled);
      } else if (now >= slot.task->deadline) {
        finish(slot, FinishReason::kTimeout);
      }
    }
  }

  struct Fill {
    int sequences = 0;
    size_t prompt_tokens = 0;
  };

  // Fills `batch` with one token per generating slot and prompt chunks of the others, oldest
  // slot first while the batch has room.
  Fill fill(std::vector<Slot>& slots, llama_batch& batch) {
    batch.n_tokens = 0;
    const auto add = [&](Slot& slot, llama_token token, llama_pos pos, bool logits) {
      const int32_t i = batch.n_tokens++;
      batch.token[i] = token;
      batch.pos[i] = pos;
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = slot.seq;
      batch.logits[i] = logits;
      if (logits) slot.output = i;
    };
    Fill filled;
    for (Slot& slot : slots) {
      slot.output = -1;
      slot.chunk = 0;
      if (slot.task && slot.next != LLAMA_TOKEN_NULL) {
        add(slot, slot.next, slot.pos, true);
        ++filled.sequences;
      }
    }
    const int32_t capacity = static_cast<int32_t>(options.batch_tokens);
    for (Slot& slot : slots) {
      if (!slot.task || slot.prefilled == slot.prompt.size() || batch.n_tokens == capacity) continue;
      const size_t take = std::min(slot.prompt.size() - slot.prefilled, static_cast<size_t>(capacity - batch.n_tokens));
      for (size_t k = 0; k < take; ++k) {
        const size_t p = slot.prefilled + k;
        add(slot, slot.prompt[p], static_cast<llama_pos>(p), p + 1 == slot.prompt.size());
      }
      slot.chunk = take;
      filled.prompt_tokens += take;
      ++filled.sequences;
    }
    return filled;
  }

  // After a successful decode: positions advance, finished prompts and generating slots sample.
  void advance(std::vector<Slot>& slots) {
    for (Slot& slot : slots) {
      if (!slot.task) continue;
      if (slot.next != LLAMA_TOKEN_NULL) {
        ++slot.pos;
      } else {
        slot.prefilled += slot.chunk;
        slot.pos = static_cast<llama_pos>(slot.prefilled);
      }
    }
    for (Slot& slot : slots) {
      if (!slot.task || slot.output < 0) continue;
      if (by_logits(slot)) {
        finish(slot, FinishReason::kStop);
        continue;
      }
      const llama_token token = llama_sampler_sample(slot.sampler.get(), ctx.get(), slot.output);
      ++slot.completion_tokens;
      counters.generated_tokens.fetch_add(1, std::memory_order_relaxed);
      if (llama_vocab_is_eog(vocab, token)) {
        finish(slot, FinishReason::kStop);
        continue;
      }
      if (std::string out = slot.stream->push(piece(token)); !out.empty()) {
        run_callback(slot.task->on_token, std::string_view(out));
      }
      if (slot.stream->stopped()) {
        finish(slot, FinishReason::kStop);
      } else if (slot.completion_tokens >= slot.task->options.max_tokens || slot.pos >= context_limit) {
        finish(slot, FinishReason::kLength);
      } else {
        slot.next = token;
      }
    }
  }

  void work() {
    std::vector<Slot> slots(static_cast<size_t>(options.max_sequences));
    for (size_t i = 0; i < slots.size(); ++i) slots[i].seq = static_cast<llama_seq_id>(i);
    BatchPtr batch = make_batch(options.batch_tokens);
    for (;;) {
      const auto busy = [&] { return std::ranges::any_of(slots, [](const Slot& s) { return s.task != nullptr; }); };
      const auto free_slots = [&] {
        return std::ranges::count_if(slots, [](const Slot& s) { return s.task == nullptr; });
      };
      std::vector<std::unique_ptr<Task>> admitted;
      std::vector<std::pair<std::unique_ptr<Task>, Error>> refusals;
      {
        std::unique_lock lock(mutex);
        const bool active = busy();
        wake.wait(lock, [&] { return stopping || active || !refused.empty() || !queue.empty(); });
        if (stopping) break;
        refusals.swap(refused);
        for (auto n = free_slots(); n > 0 && !queue.empty(); --n) {
          admitted.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      for (auto& [task, error] : refusals) {
        if (task->classify) {
          run_callback(task->classify_done, Result<Label>(std::unexpected(error)));
        } else {
          run_callback(task->generate_done, Result<Generation>(std::unexpected(error)));
        }
      }
      for (auto& task : admitted) {
        auto slot = std::ranges::find_if(slots, [](const Slot& s) { return s.task == nullptr; });
        start(*slot, std::move(task));
      }
      expire(slots);
      const Fill filled = fill(slots, *batch);
      if (batch->n_tokens == 0) continue;
      const int32_t rc = llama_decode(ctx.get(), *batch);
      if (rc != 0) {
        const Error error(ErrorCode::kInternal, fmt::format("llama_decode failed ({}): {}", rc, take_llama_error()));
        LOG_WARN(kLogTarget, "{}", error.message);
        // Every sequence in the failed batch has an unknown cache state: end them all.
        for (Slot& slot : slots) {
          if (slot.task && (slot.chunk > 0 || slot.next != LLAMA_TOKEN_NULL)) finish(slot, std::unexpected(error));
        }
        continue;
      }
      counters.decodes.fetch_add(1, std::memory_order_relaxed);
      int seen = counters.max_sequences_in_decode.load(std::memory_order_relaxed);
      while (filled.sequences > seen &&
             !counters.max_sequences_in_decode.compare_exchange_weak(seen, filled.sequences)) {
      }
      counters.prompt_tokens.fetch_add(filled.prompt_tokens, std::memory_order_relaxed);
      advance(slots);
    }
    for (Slot& slot : slots) {
      if (slot.task) finish(slot, fail(ErrorCode::kUnavailable, "generator stopped"));
    }
  }

  void enqueue(std::unique_ptr<Task> task) {
    {
      std::lock_guard lock(mutex);
      if (queue.size() >= options.max_queued) {
        Error error(ErrorCode::kOverloaded, fmt::format("generator queue full ({} requests waiting)", queue.size()));
        refused.emplace_back(std::move(task), std::move(error));
      } else {
        queue.push_back(std::move(task));
      }
    }
    wake.notify_one();
  }

  void stop() {
    std::deque<std::unique_ptr<Task>> dropped;
    std::vector<std::pair<std::unique_ptr<Task>, Error>> dropped_refusals;
    {
      std::lock_guard lock(mutex);
      stopping = true;
      dropped.swap(queue);
      dropped_refusals.swap(refused);
    }
    wake.notify_all();
    if (thread.joinable()) thread.join();
    const Error stopped(ErrorCode::kUnavailable, "generator stopped");
    for (auto& task : dropped) dropped_refusals.emplace_back(std::move(task), stopped);
    for (auto& [task, error] : dropped_refusals) {
      if (task->classify) {
        run_callback(task->classify_done, Result<Label>(std::unexpected(error)));
      } else {
        run_callback(task->generate_done, Result<Generation>(std::unexpected(error)));
      }
    }
  }
};

LlamaGenerator::LlamaGenerator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LlamaGenerator::~LlamaGenerator() {
  impl_->stop();
}

Result<std::unique_ptr<LlamaGenerator>> LlamaGenerator::load(const std::filesystem::path& gguf,
                                                             LlamaGeneratorOptions options) {
  RETURN_IF_ERROR(validate(options));
  init_llama_runtime();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(gguf, ec)) {
    return fail(ErrorCode::kNotFound, fmt::format("no generator model at {}", gguf.string()));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->name = gguf.filename().string();
  llama_model_params model_params = llama_model_default_params();
  model_params.n_gpu_layers = options.gpu_layers;
  // Returning false from the progress callback aborts the load.
  model_params.progress_callback = [](float, void* stop) {
    return !static_cast<const std::stop_token*>(stop)->stop_requested();
  };
  model_params.progress_callback_user_data = &impl->options.stop_loading;
  impl->model.reset(llama_model_load_from_file(gguf.c_str(), model_params));
  if (!impl->model && options.stop_loading.stop_requested()) {
    return fail(ErrorCode::kUnavailable, fmt::format("loading {} was stopped", gguf.string()));
  }
  if (!impl->model) {
    return fail(ErrorCode::kUnprocessable, fmt::format("cannot load {}: {}", gguf.string(), take_llama_error()));
  }
  impl->vocab = llama_model_get_vocab(impl->model.get());
  if (!options.chat_template.empty()) {
    impl->chat_template = options.chat_template;
  } else if (const char* tmpl = llama_model_chat_template(impl->model.get(), nullptr)) {
    impl->chat_template = tmpl;
  } else {
    return fail(ErrorCode::kUnprocessable, fmt::format("{} has no chat template", gguf.string()));
  }
  if (auto probe = impl->render({{"user", "Hello"}}); !probe) {
    return fail(ErrorCode::kUnprocessable, fmt::format("{}'s chat template is not one llama.cpp knows", gguf.string()));
  }
  ASSIGN_OR_RETURN(llama_token simple, impl->label_token(label_name(Label::kSimple)));
  ASSIGN_OR_RETURN(llama_token complex, impl->label_token(label_name(Label::kComplex)));
  if (simple == complex) {
    return fail(ErrorCode::kUnprocessable,
                fmt::format("{} spells both labels with the same first token", gguf.string()));
  }
  impl->simple_token = simple;
  impl->complex_token = complex;

  impl->classify_prefix = impl->shared_classify_prefix();
  impl->prefix_seq = static_cast<llama_seq_id>(options.max_sequences);

  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = options.threads > 0 ? options.threads : hardware;
  llama_context_params params = llama_context_default_params();
  // Every slot's full context plus the shared classification prefix, in one unified buffer.
  params.n_ctx = static_cast<uint32_t>(options.context_tokens) * static_cast<uint32_t>(options.max_sequences) +
                 static_cast<uint32_t>(impl->classify_prefix.size());
  params.n_batch = static_cast<uint32_t>(options.batch_tokens);
  params.n_ubatch = static_cast<uint32_t>(std::min(options.batch_tokens, 512));
  params.n_seq_max = static_cast<uint32_t>(options.max_sequences) + 1;  // the slots and the prefix
  params.n_threads = threads;
  params.n_threads_batch = threads;
  params.no_perf = true;
  // Unified: the classification prefix's cells are shared by every classifying sequence (a copy is
  // a tag, not data). Each slot keeps to context_tokens, so the slots never run out of cells.
  params.kv_unified = true;
  impl->ctx.reset(llama_init_from_model(impl->model.get(), params));
  if (!impl->ctx) {
    return fail(ErrorCode::kInternal, fmt::format("cannot create llama context: {}", take_llama_error()));
  }
  impl->context_limit = std::min({options.context_tokens, static_cast<int>(llama_n_ctx_seq(impl->ctx.get())),
                                  llama_model_n_ctx_train(impl->model.get())});
  impl->decode_prefix();
  Impl* state = impl.get();
  try {
    state->thread = std::thread([state] { state->work(); });
  } catch (const std::system_error& e) {
    return fail(ErrorCode::kInternal, fmt::format("cannot start generator thread: {}", e.what()));
  }
  LOG_INFO(kLogTarget, "generator model {} loaded: {} slots x {} tokens, {} thread(s), {} GPU layer(s)", state->name,
           options.max_sequences, state->context_limit, threads, options.gpu_layers);
  return std::unique_ptr<LlamaGenerator>(new LlamaGenerator(std::move(impl)));
}

std::string_view LlamaGenerator::name() const {
  return impl_->name;
}

Cancellation LlamaGenerator::classify_async(std::vector<ChatMessage> messages, ClassifyOptions options,
                                            ClassifyCallback done) {
  auto task = std::make_unique<Impl::Task>();
  Cancellation cancel = task->cancel;
  task->classify = true;
  task->messages = std::move(messages);
  // kGrammar: a short greedy answer; kLogits samples nothing.
  task->options.max_tokens = impl_->options.max_classify_tokens;
  task->options.temperature = 0.0f;
  task->options.repetition_penalty = 1.0f;
  if (options.timeout.count() > 0) task->deadline = Clock::now() + options.timeout;
  task->classify_done = std::move(done);
  impl_->enqueue(std::move(task));
  return cancel;
}

Cancellation LlamaGenerator::generate_async(std::vector<ChatMessage> messages, GenerateOptions options,
                                            TokenCallback on_token, GenerateCallback done) {
  auto task = std::make_unique<Impl::Task>();
  Cancellation cancel = task->cancel;
  if (auto valid = validate(options); !valid) {
    // Answered by the worker like any other result, never on the caller's thread.
    task->generate_done = std::move(done);
    {
      std::lock_guard lock(impl_->mutex);
      impl_->refused.emplace_back(std::move(task), valid.error());
    }
    impl_->wake.notify_one();
    return cancel;
  }
  if (options.timeout.count() > 0) task->deadline = Clock::now() + options.timeout;
  task->messages = std::move(messages);
  task->options = std::move(options);
  task->on_token = std::move(on_token);
  task->generate_done = std::move(done);
  impl_->enqueue(std::move(task));
  return cancel;
}

Result<std::string> LlamaGenerator::render_prompt(const std::vector<ChatMessage>& messages) const {
  return impl_->render(messages);
}

LlamaGeneratorStats LlamaGenerator::stats() const {
  const Impl::Counters& c = impl_->counters;
  LlamaGeneratorStats s;
  s.decodes = c.decodes.load(std::memory_order_relaxed);
  s.prompt_tokens = c.prompt_tokens.load(std::memory_order_relaxed);
  s.generated_tokens = c.generated_tokens.load(std::memory_order_relaxed);
  s.classifications = c.classifications.load(std::memory_order_relaxed);
  s.generations = c.generations.load(std::memory_order_relaxed);
  s.max_sequences_in_decode = c.max_sequences_in_decode.load(std::memory_order_relaxed);
  s.reused_prompt_tokens = c.reused_prompt_tokens.load(std::memory_order_relaxed);
  return s;
}

}  // namespace isartor::inference
