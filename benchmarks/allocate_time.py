"""How long ``edgebench prune --strategy allocate`` takes to a latency budget, from a cold cache.

Usage: python benchmarks/allocate_time.py --out DIR [--model SPEC] [--task digits] [--backend onnxruntime]
       [--budget 0.6] [--round-to 16] [--threads N] [--warm] [--from-json FILE]

Issue 14's goal: MobileNetV2 on the digits (ONNX Runtime, budget 0.6) pruned by allocation in under
10 minutes (the greedy loop had reached 0.68x of the baseline after 18 minutes and was stopped).
The command runs with ``EDGEBENCH_CACHE_DIR=DIR/cache``, emptied first, so its wall time includes
everything a first run on a target pays: training the baseline, learning the latency model, the
allocation's checks, the cut, both fine-tunes and the final paired run (``--warm`` keeps the cache:
the time of a second run). ``DIR/allocate_time_cold.md`` (``_warm.md``) and ``.json`` give the wall
time (process start to exit) and its parts from ``report.json``, the allocation's checks (predicted
and measured), the final ratio to the baseline with its interval, the metric and MACs before and
after, and the goal's verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from method_runs import report_of  # benchmarks/method_runs.py, beside this script
from table_files import environment, environment_line, load_average, measure_and_write, ratio_text, write_table

GOAL_S = 600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="DIR: the run in DIR/run, its cache in DIR/cache")
    parser.add_argument("--model", default="torchvision:mobilenet_v2?num_classes=10")
    parser.add_argument("--task", default="digits")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--budget", type=float, default=0.6)
    parser.add_argument("--round-to", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="passed to edgebench prune (default: its own)")
    parser.add_argument("--warm", action="store_true", help="keep DIR/cache: the time of a run after the first")
    parser.add_argument("--from-json", type=Path, help="write the table again from this allocate_time_*.json, "
                        "nothing measured")
    args = parser.parse_args()
    if args.from_json is not None:
        found = json.loads(args.from_json.read_text(encoding="utf-8"))
        print(write_table(args.out, f"allocate_time_{found['cache']}", markdown(found), found))
        return
    if not 0 < args.budget <= 1:
        parser.error("--budget must be in (0, 1]")
    cache = args.out / "cache"
    if not args.warm:
        shutil.rmtree(cache, ignore_errors=True)
    os.environ["EDGEBENCH_CACHE_DIR"] = str(cache.resolve())  # the prune command inherits it
    options = ["--model", args.model, "--task", args.task, "--backend", args.backend, "--strategy", "allocate",
               "--budget", str(args.budget), "--round-to", str(args.round_to), "--store", str(args.out / "results.db"),
               *(["--threads", str(args.threads)] if args.threads else [])]
    results: dict[str, Any] = {"script": shlex.join(["python", "benchmarks/allocate_time.py", *sys.argv[1:]]),
                               "cache": "warm" if args.warm else "cold", "environment": environment(),
                               "load_average": {"start": load_average(), "end": None}, "interrupted": False,
                               "run": None}

    def measure() -> None:
        results["run"] = report_of("prune", options, args.out / "run")

    measure_and_write("allocate_time.py", results, measure,
                      lambda found: write_table(args.out, f"allocate_time_{found['cache']}", markdown(found), found),
                      markdown)


def markdown(results: dict[str, Any]) -> str:
    lines = ["# Allocation to a latency budget: wall time", "", environment_line(results["environment"]),
             f"`{results['script']}`; cache {results['cache']}; load average {results['load_average']['start']} "
             f"at the start, {results['load_average']['end']} at the end.", ""]
    run = results.get("run")
    if not run:
        return "\n".join(lines + ["Nothing finished."]) + "\n"
    report, wall = run["report"], run["wall_s"]
    learned = report["latency_model"]["backends"]
    training = report["baseline"].get("training") or {}
    lines += [f"{report['model']} on {report['task']}, {', '.join(report['backends'])}, budget {report['budget']:g}, "
              f"`--round-to {report['round_to']}`.", "",
              "| part | seconds |", "| --- | ---: |",
              f"| whole command (process start to exit) | {wall:.0f} |",
              "| baseline training | " + (f"{training['seconds']:.0f} |" if "seconds" in training else
                                          "0 (trained weights from the cache) |")]
    # A cached model's seconds are those of the run that learned it.
    lines += [f"| latency model, {backend} ({item['kind']}) | " + (
        f"{item['seconds']:.0f} |" if item["cache"] == "measured" else f"0 (cached; learning took {item['seconds']:.0f}) |")
        for backend, item in learned.items()]
    lines += ["", "| allocation | " + " | ".join(f"{b} aim | {b} predicted | {b} measured" for b in report["backends"])
              + " |", "| --- |" + " --- | --- | --- |" * len(report["backends"])]
    for number, check in enumerate(report["latency_model"]["checks"], start=1):
        lines.append(f"| {number} | " + " | ".join(
            f"{check['aim'][b]:.3f} | {check['predicted'][b]:.3f} | {ratio_text(check['measured'][b])}"
            for b in report["backends"]) + " |")
    final, base = report["final"], report["baseline"]
    met = wall < GOAL_S and all(final["latency_ratio"].get(b) and final["latency_ratio"][b]["ratio"] <= report["budget"]
                                for b in report["backends"])
    lines += ["", "| final model | value |", "| --- | --- |"]
    lines += [f"| {b} latency / baseline | {ratio_text(final['latency_ratio'].get(b))} |" for b in report["backends"]]
    lines += [f"| {report['metric']} | {base['accuracy']:.2%} -> {final['accuracy']:.2%} |",
              f"| MACs | {base['macs'] / 1e6:.1f} M -> {final['macs'] / 1e6:.1f} M |", "",
              f"**Goal (under {GOAL_S // 60} minutes, at or under the budget): {'met' if met else 'NOT met'}** "
              f"({wall / 60:.1f} minutes)."]
    if report.get("warnings"):
        lines += ["", "Warnings: " + "; ".join(report["warnings"])]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
