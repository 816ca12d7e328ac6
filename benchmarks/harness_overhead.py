"""Harness overhead: edgebench's p50 against a bare perf_counter loop over the same session.

Both sides run in fresh processes, one live ONNX Runtime session at a time, with the same
model file, the same intra-op threads and the same warm-up; they alternate in rounds so the
machine's drift (20-40% between minutes on shared hosts) hits both alike. The figure is the
median over rounds of edgebench p50 / bare p50.

    .venv/bin/python benchmarks/harness_overhead.py [--model torchvision:resnet18] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from edgebench.models import onnx_for, resolve_model
from edgebench.sweep.client import LocalWorker

BARE_LOOP = r"""
import json, sys, time
import numpy as np
import onnxruntime as ort
path, name, shape, threads, warmup_s, seconds = json.loads(sys.argv[1])
options = ort.SessionOptions()
options.intra_op_num_threads = threads
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
feeds = {name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
outputs = [o.name for o in session.get_outputs()]
session.run(outputs, feeds)
end = time.perf_counter() + warmup_s
while time.perf_counter() < end:
    session.run(outputs, feeds)
samples = []
end = time.perf_counter() + seconds
while True:
    t0 = time.perf_counter()
    session.run(outputs, feeds)
    t1 = time.perf_counter()
    samples.append((t1 - t0) * 1e3)
    if t1 >= end:
        break
print(json.dumps(samples))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="torchvision:resnet18")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()

    model = resolve_model(args.model)
    path = str(onnx_for(model, 1))
    spec = model.inputs[0]
    shape = model.input_shapes(1)[spec.name]
    request = {
        "protocol": 1, "backend": "onnxruntime", "device": "cpu", "model": {"format": "onnx", "path": path},
        "inputs": [{"name": spec.name, "shape": shape, "dtype": "float32"}], "threads": args.threads,
        "settings": {"min_time_s": args.seconds, "max_time_s": args.seconds, "min_iterations": 1,
                     "warmup_s": args.warmup, "target_ci": 0.0},
        "backend_options": {}, "allow_hooks": False,
    }
    ratios = []
    for round_index in range(args.rounds):
        harness = LocalWorker().run(request, timeout_s=600)
        if harness["status"] != "ok":
            sys.exit(f"edgebench worker failed: {harness['error']}")
        bare = json.loads(subprocess.check_output(
            [sys.executable, "-c", BARE_LOOP,
             json.dumps([path, spec.name, shape, args.threads, args.warmup, args.seconds])]))
        harness_p50 = statistics.median(harness["samples_ms"])
        bare_p50 = statistics.median(bare)
        ratios.append(harness_p50 / bare_p50)
        print(f"round {round_index + 1}: edgebench p50 {harness_p50:.3f} ms (n={len(harness['samples_ms'])}), "
              f"bare loop p50 {bare_p50:.3f} ms (n={len(bare)}), ratio {ratios[-1]:.4f}")
    print(f"{args.model} onnxruntime threads={args.threads}: median ratio {statistics.median(ratios):.4f} "
          f"(range {min(ratios):.4f} to {max(ratios):.4f}) over {args.rounds} rounds")


if __name__ == "__main__":
    main()
