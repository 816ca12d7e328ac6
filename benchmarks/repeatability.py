"""Repeatability: p50 across separate `edgebench run` invocations.

    .venv/bin/python benchmarks/repeatability.py [--model torchvision:resnet18] [--runs 3]

Each invocation is a separate `edgebench run --json` process writing to a scratch store;
the figure is (max p50 - min p50) / median p50 per backend.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="torchvision:resnet18")
    parser.add_argument("--backend", default="onnxruntime,eager")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    p50s: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(args.runs):
            proc = subprocess.run(
                [sys.executable, "-m", "edgebench", "run", "--model", args.model, "--backend", args.backend,
                 "--threads", args.threads, "--json", "--store", str(Path(scratch) / "store.db")],
                capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"edgebench run failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
            for record in json.loads(proc.stdout):
                p50s.setdefault(record["backend"], []).append(record["latency_ms"]["p50"])
                print(f"invocation {index + 1}: {record['backend']} p50 {record['latency_ms']['p50']:.3f} ms "
                      f"ci95 {record['latency_ms']['ci95']} warnings {len(record['warnings'])}")
    for backend, values in p50s.items():
        spread = (max(values) - min(values)) / statistics.median(values)
        print(f"{args.model} {backend}: p50 {', '.join(f'{v:.3f}' for v in values)} ms; spread {spread * 100:.2f}%")


if __name__ == "__main__":
    main()
