"""Harness overhead: edgebench's p50 against a bare perf_counter loop over the same session.

One process, one ONNX Runtime session, the same intra-op threads. Rounds alternate an
edgebench block (the worker's runner and ``timed_loop``, stopping-rule checks included) and a
bare ``perf_counter`` loop calling ``session.run`` directly, in ABBA order so drift hits both
alike. The figure is the median over rounds of edgebench p50 / bare p50.

Comparing separate processes instead measures the machine more than the harness: on a shared
2-core host one process's whole run can sit 20-70% slower than the next one's.

    .venv/bin/python benchmarks/harness_overhead.py [--model torchvision:resnet18] [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

from edgebench.board.harness import LoopSettings, timed_loop
from edgebench.board.synthetic_inputs import make_inputs
from edgebench.models import onnx_for, resolve_model
from edgebench.board.runners.onnxruntime import OnnxRuntimeRunner


def bare_loop(session, outputs, feeds, seconds):
    samples = []
    end = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        session.run(outputs, feeds)
        t1 = time.perf_counter()
        samples.append((t1 - t0) * 1e3)
        if t1 >= end:
            return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="torchvision:resnet18")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each block")
    args = parser.parse_args()

    model = resolve_model(args.model)
    inputs = [spec.as_dict(1) for spec in model.inputs]
    runner = OnnxRuntimeRunner({"model": {"format": "onnx", "path": str(onnx_for(model, 1))}, "inputs": inputs,
                                "threads": args.threads, "device": "cpu"})
    runner.import_backend()
    runner.load()
    runner.bind(make_inputs(inputs))
    settings = LoopSettings(min_time_s=args.seconds, max_time_s=args.seconds, min_iterations=1, warmup_s=0,
                        target_ci=0.0)

    def edgebench_block():
        return timed_loop(runner.infer, runner.synchronize, settings)[0]

    def bare_block():
        return bare_loop(runner.session, runner.output_names, runner.feeds, args.seconds)

    bare_block()  # warm-up
    ratios = []
    for index in range(args.rounds):
        order = (edgebench_block, bare_block) if index % 2 == 0 else (bare_block, edgebench_block)
        results = {block.__name__: statistics.median(block()) for block in order}
        ratios.append(results["edgebench_block"] / results["bare_block"])
        print(f"round {index + 1}: edgebench p50 {results['edgebench_block']:.3f} ms, "
              f"bare p50 {results['bare_block']:.3f} ms, ratio {ratios[-1]:.4f}")
    quartiles = statistics.quantiles(ratios, n=4)
    print(f"{args.model} onnxruntime threads={args.threads}: median ratio {statistics.median(ratios):.4f} "
          f"(quartiles {quartiles[0]:.4f} to {quartiles[2]:.4f}, range {min(ratios):.4f} to {max(ratios):.4f}) "
          f"over {args.rounds} rounds of {args.seconds:g} s blocks")


if __name__ == "__main__":
    main()
