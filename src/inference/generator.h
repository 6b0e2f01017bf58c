#pragma once
// L2: a small local language model that classifies a request (can it answer it well?) and answers
// the simple ones. Level 1: LlamaGenerator (a GGUF such as gemma-2-2b-it on llama.cpp,
// in-process); Level 2: an OpenAI-compatible sidecar (llama-server, vLLM) behind the same
// interface.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace isartor::inference {

// One chat turn as the model's chat template sees it. role: "system", "user" or "assistant".
struct ChatMessage {
  std::string role;
  std::string content;
};

// The classifier's verdict. kSimple: the local model may answer; kComplex: send it to L3.
enum class Label { kSimple, kComplex };

// "SIMPLE" / "COMPLEX": the words the classification prompt asks for. Pure.
std::string_view label_name(Label label);

// Reads a label from free text (a sidecar's answer): the first word that is a label name, in any
// case and with any punctuation around it ("simple.", "**SIMPLE**", "Answer: Simple"); anything
// else, empty text and garbage included, is kComplex, the safe choice. Pure.
Label parse_label(std::string_view text);

// Why a generation ended. kStop: end-of-generation token or a stop string; kLength: max_tokens or
// the context is full; kCancelled: Cancellation::cancel() or the generator stopped; kTimeout:
// GenerateOptions::timeout passed.
enum class FinishReason { kStop, kLength, kCancelled, kTimeout };

// "stop", "length", "cancelled", "timeout". Pure.
std::string_view finish_reason_name(FinishReason reason);

// How a classification is decided. kLogits: one decode of the prompt, then the logits of the two
// labels' first tokens are compared (no text is generated; the answer can only be a label).
// kGrammar: the model writes its answer under a grammar that only admits the label words, read
// with parse_label (for sidecars: the request asks the server to constrain its output).
enum class ClassifyMode { kLogits, kGrammar };

// "logits", "grammar". Pure.
std::string_view classify_mode_name(ClassifyMode mode);

// The GBNF grammar of a kGrammar classification: `root ::= "SIMPLE" | "COMPLEX"`.
extern const char* const kLabelGrammar;

// The fixed system message of the classification prompt (see classification_messages).
extern const std::string_view kClassifyInstruction;

// The conversation a classification shows the model for a request's `messages`:
//   system: kClassifyInstruction
//   user:   "Request:\n" + the content alone for a single message, else "<role>: <content>"
//           paragraphs
// Shared by every Generator, so in-process and sidecar models see the same prompt. Pure.
std::vector<ChatMessage> classification_messages(const std::vector<ChatMessage>& messages);

struct ClassifyOptions {
  // From the call, time spent queued included; 0: none. Past it the call fails with kUpstreamTimeout.
  std::chrono::milliseconds timeout{0};
};

struct GenerateOptions {
  int max_tokens = 256;             // completion tokens, >= 1
  float temperature = 0.0f;         // 0: greedy (deterministic)
  float repetition_penalty = 1.1f;  // over the last 64 generated tokens; 1: off
  std::vector<std::string> stop;    // ends the answer before the first occurrence (not streamed)
  uint32_t seed = 0;                // sampling seed when temperature > 0
  // From the call, time spent queued included; 0: none.
  std::chrono::milliseconds timeout{0};
};

struct Generation {
  std::string text;  // valid UTF-8: exactly what on_token received, concatenated
  int prompt_tokens = 0;
  int completion_tokens = 0;  // sampled tokens, the end-of-generation token included
  FinishReason finish = FinishReason::kStop;
};

// kUpstreamTimeout: ClassifyOptions::timeout passed; kUnavailable with "cancelled": the call was
// cancelled.
using ClassifyCallback = std::function<void(Result<Label>)>;
// A non-empty piece of answer text, valid UTF-8 (a character split across tokens is held back
// until complete; invalid bytes become U+FFFD).
using TokenCallback = std::function<void(std::string_view piece)>;
using GenerateCallback = std::function<void(Result<Generation>)>;

// Asks one generate call to stop early; copies share the request. Thread-safe.
class Cancellation {
 public:
  Cancellation() : flag_(std::make_shared<std::atomic<bool>>(false)) {}
  // The request finishes with FinishReason::kCancelled at the next token (or before it starts).
  void cancel() const { flag_->store(true, std::memory_order_relaxed); }
  bool requested() const { return flag_->load(std::memory_order_relaxed); }

 private:
  std::shared_ptr<std::atomic<bool>> flag_;
};

class Generator {
 public:
  virtual ~Generator() = default;

  // The model's identity for logs and responses (e.g. the GGUF's file name). Thread-safe.
  virtual std::string_view name() const = 0;

  // Queues a classification of the request `messages` (prompt: classification_messages); `done`
  // is called once, on a worker thread (never the caller's), with the label or an error; the
  // returned Cancellation ends it early. Thread-safe; never blocks on inference.
  virtual Cancellation classify_async(std::vector<ChatMessage> messages, ClassifyOptions options,
                                      ClassifyCallback done) = 0;

  // Queues an answer to `messages`. `on_token` (may be empty) gets the answer as it is generated,
  // `done` is called once after the last piece, both on a worker thread (never the caller's) and
  // never concurrently for one request. Thread-safe; never blocks on inference.
  virtual Cancellation generate_async(std::vector<ChatMessage> messages, GenerateOptions options,
                                      TokenCallback on_token, GenerateCallback done) = 0;

  // Blocking conveniences over the async calls (start-up, tools, tests). Thread-safe; never
  // call them from a callback.
  Result<Label> classify(std::vector<ChatMessage> messages, ClassifyOptions options = {});
  Result<Generation> generate(std::vector<ChatMessage> messages, GenerateOptions options, TokenCallback on_token = {});
};

}  // namespace isartor::inference
