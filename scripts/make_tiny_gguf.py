#!/usr/bin/env python3
"""Writes a tiny random-weight model of the Gemma-2 architecture as GGUF, for L2 tests.

usage: make_tiny_gguf.py OUT.gguf [--vocab VOCAB.gguf] [--seed N]

The weights are random (seeded, so the file is byte-identical for the same arguments) and the
output is nonsense; what is real is everything around it: llama.cpp's gemma2 loader and graph
(sliding-window KV cache, attention and final logit soft-capping), a real SentencePiece
tokenizer copied from a vocab-only GGUF (llama.cpp's ggml-vocab-llama-spm.gguf by default) plus
Gemma's <start_of_turn>/<end_of_turn> control tokens, and Gemma-2's chat template, which
llama_chat_apply_template recognises as "gemma".
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np
import gguf

ARCH = "gemma2"
N_LAYER = 2
N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 2
HEAD_DIM = N_EMBD // N_HEAD
N_FF = 128
CONTEXT_LENGTH = 8192
SLIDING_WINDOW = 4096
# gemma-2-2b-it's values.
ATTN_SOFTCAP = 50.0
FINAL_SOFTCAP = 30.0
RMS_EPS = 1e-6
ROPE_FREQ_BASE = 10000.0
POST_NORM_SCALE = 24.0

# Gemma-2 instruct's template as its tokenizer_config.json has it (Jinja); llama.cpp detects it
# by "<start_of_turn>".
CHAT_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
# Added when the source vocab lacks them; llama.cpp treats <end_of_turn> as end of generation.
TURN_TOKENS = ["<start_of_turn>", "<end_of_turn>"]


def default_vocab() -> Path:
    prefix = os.environ.get("ISARTOR_LLAMA_PREFIX") or str(
        Path.home() / ".cache/isartor/deps/llama-cpp-python-0.3.36")
    return Path(prefix) / "models-vocab" / "ggml-vocab-llama-spm.gguf"


def tokenizer_kvs(vocab_path: Path):
    """The tokenizer.* key/values of a vocab GGUF as (key, value, type, sub_type), turn tokens added."""
    reader = gguf.GGUFReader(str(vocab_path))
    kvs = {}
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub_type = field.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
        kvs[key] = [field.contents(), vtype, sub_type]
    tokens = kvs["tokenizer.ggml.tokens"][0]
    for text in TURN_TOKENS:
        if text in tokens:
            continue
        tokens.append(text)
        kvs["tokenizer.ggml.scores"][0].append(0.0)
        kvs["tokenizer.ggml.token_type"][0].append(int(gguf.TokenType.CONTROL))
    kvs.pop("tokenizer.chat_template", None)
    return kvs, len(tokens)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--vocab", type=Path, default=None, help="vocab-only GGUF with an SPM tokenizer")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    vocab_path = args.vocab or default_vocab()
    if not vocab_path.is_file():
        print(f"no vocab GGUF at {vocab_path}", file=sys.stderr)
        return 1
    kvs, n_vocab = tokenizer_kvs(vocab_path)
    rng = np.random.default_rng(args.seed)

    writer = gguf.GGUFWriter(str(args.out), ARCH)
    writer.add_name("isartor-tiny-gemma2")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_key_length(HEAD_DIM)
    writer.add_value_length(HEAD_DIM)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    writer.add_rope_freq_base(ROPE_FREQ_BASE)
    writer.add_attn_logit_softcapping(ATTN_SOFTCAP)
    writer.add_final_logit_softcapping(FINAL_SOFTCAP)
    writer.add_sliding_window(SLIDING_WINDOW)
    writer.add_vocab_size(n_vocab)
    for key, (value, vtype, sub_type) in kvs.items():
        writer.add_key_value(key, value, vtype, sub_type)
    writer.add_chat_template(CHAT_TEMPLATE)

    def weight(name: str, shape, std: float) -> None:
        # numpy shape is (rows, cols) = ggml's (ne1, ne0).
        writer.add_tensor(name, (rng.standard_normal(shape) * std).astype(np.float32))

    def norm(name: str, scale: float = 1.0) -> None:
        # The GGUF converter stores Gemma's RMSNorm weights as 1 + w, so 1 is the neutral norm.
        writer.add_tensor(name, np.full(N_EMBD, scale, dtype=np.float32))

    # Unit-variance embeddings make the tied output's logits spread widely (std ~ sqrt(n_embd)),
    # so greedy picks are far from ties and stable across batch shapes.
    weight("token_embd.weight", (n_vocab, N_EMBD), 1.0)
    norm("output_norm.weight")
    for i in range(N_LAYER):
        weight(f"blk.{i}.attn_q.weight", (N_HEAD * HEAD_DIM, N_EMBD), N_EMBD ** -0.5)
        weight(f"blk.{i}.attn_k.weight", (N_HEAD_KV * HEAD_DIM, N_EMBD), N_EMBD ** -0.5)
        weight(f"blk.{i}.attn_v.weight", (N_HEAD_KV * HEAD_DIM, N_EMBD), N_EMBD ** -0.5)
        weight(f"blk.{i}.attn_output.weight", (N_EMBD, N_HEAD * HEAD_DIM), N_EMBD ** -0.5)
        weight(f"blk.{i}.ffn_gate.weight", (N_FF, N_EMBD), N_EMBD ** -0.5)
        weight(f"blk.{i}.ffn_up.weight", (N_FF, N_EMBD), N_EMBD ** -0.5)
        weight(f"blk.{i}.ffn_down.weight", (N_EMBD, N_FF), N_FF ** -0.5)
        # Gemma scales the input embedding by sqrt(n_embd); with neutral post-norms the residual
        # stream would stay the input token's own embedding and the tied output would echo it
        # forever. Strong post-norms let attention and the FFN steer the next token.
        norm(f"blk.{i}.attn_norm.weight")
        norm(f"blk.{i}.post_attention_norm.weight", POST_NORM_SCALE)
        norm(f"blk.{i}.ffn_norm.weight")
        norm(f"blk.{i}.post_ffw_norm.weight", POST_NORM_SCALE)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
