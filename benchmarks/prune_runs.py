"""The pruner's four whole runs (docs/benchmarks.md, the pruner section), each one `edgebench prune`, in one table.

Usage: python benchmarks/prune_runs.py --out DIR [--runs latency-0.5,flops-0.5,both-0.7,floor] [--threads N]
       [--store FILE]

ResNet-18 (``torchvision:resnet18?num_classes=10``, trained from random weights by the pruner) on
the ``digits`` task, the pruner's defaults otherwise, one run each:

- ``latency-0.5``: ``--objective latency --budget 0.5``, eager;
- ``flops-0.5``: ``--objective flops --budget 0.5``;
- ``both-0.7``: ``--objective latency --backend eager,onnxruntime --budget 0.7``;
- ``floor``: ``--objective latency --budget 0.2``, which stops at the accuracy floor first.

Each run's outputs go to ``DIR/NAME`` and its records to ``--store`` (default ``DIR/results.db``).
The script times each command (wall, process start to exit) and reads its ``report.json``: kept
steps over candidates measured, the keep rule's confirmations (how many chosen candidates its fresh
paired run confirmed faster, and how many it refuted), why the loop stopped, the final paired ratio
to the baseline per backend with its 95% interval and both p50s, accuracy, MACs and parameters
before and after. ``DIR/table.md`` and ``DIR/table.json`` are rewritten as each run finishes, so a
stopped script leaves the rows it finished. A run whose ``DIR/NAME/report.json`` exists is not run
again (say so, reuse it; remove the folder to run it again; a report of another run's objective,
budget or backends is refused): its command and wall time come from ``DIR/NAME/timing.json`` when
this script ran it, else the command it would run and the loop's own wall time. The header gives the date, the machine, library
versions and the 1-minute load average at the start and after the last run.

Each run takes 5 to 15 minutes on a quiet 2-core CPU; other work on the machine moves the ratios.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

from cli_run import edgebench  # benchmarks/cli_run.py, beside this script
from edgebench.prune.tasks import load_task
from table_files import environment, environment_line, load_average, markdown_table, ratio_text, write_table

MODEL = "torchvision:resnet18?num_classes=10"
TASK = "digits"
# Name -> (the docs' label, the options after --model, --task and --out), as the docs' table runs them.
RUNS = {
    "latency-0.5": ("latency, budget 0.5", ["--objective", "latency", "--budget", "0.5"]),
    "flops-0.5": ("flops, budget 0.5", ["--objective", "flops", "--budget", "0.5"]),
    "both-0.7": ("latency on eager and ONNX Runtime, budget 0.7",
                 ["--objective", "latency", "--backend", "eager,onnxruntime", "--budget", "0.7"]),
    "floor": ("latency, to the accuracy floor", ["--objective", "latency", "--budget", "0.2"]),
}
TIMING = "timing.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="DIR: DIR/NAME per run, DIR/table.md, DIR/table.json")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {', '.join(RUNS)}")
    parser.add_argument("--threads", type=int, default=None, help="passed to edgebench prune (default: its own)")
    parser.add_argument("--store", default=None, help="results store for every run (default: DIR/results.db)")
    args = parser.parse_args()
    names = [name.strip() for name in args.runs.split(",") if name.strip()]
    unknown = [name for name in names if name not in RUNS]
    if unknown or not names:
        sys.exit(f"prune_runs.py: error: unknown run {', '.join(unknown) or '(none given)'}; "
                 f"choose from {', '.join(RUNS)}")
    store = args.store or str(args.out / "results.db")
    results = {"script": shlex.join(["python", "benchmarks/prune_runs.py", *sys.argv[1:]]), "model": MODEL,
               "task": TASK, "threads": args.threads, "store": store, "environment": environment(),
               "load_average": {"start": load_average(), "end": None}, "runs": []}
    for name in names:
        run_dir = args.out / name
        try:
            timing = prune(name, run_dir, command(name, run_dir, store, args.threads))
        except subprocess.CalledProcessError as exc:
            sys.exit(f"prune_runs.py: error: edgebench prune for {name} failed (exit {exc.returncode}); "
                     f"{args.out / 'table.md'} holds the runs finished before it")
        except KeyboardInterrupt:
            sys.exit(f"prune_runs.py: interrupted during {name}; {args.out / 'table.md'} holds the runs finished")
        report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
        mismatch = different(name, report)
        if mismatch:
            sys.exit(f"prune_runs.py: error: {run_dir / 'report.json'} is not a {name} run ({mismatch}); "
                     "remove the folder to run it again")
        results["runs"].append(summarise(name, run_dir, report, timing))
        results["load_average"]["end"] = load_average()
        table = write_table(args.out, "table", markdown(results), results)
        print(f"{name}: row written to {table}", flush=True)
    print(markdown(results))


def command(name: str, run_dir: Path, store: str, threads: Optional[int]) -> list[str]:
    """The ``edgebench prune`` arguments of one run."""
    return ["prune", "--model", MODEL, "--task", TASK, "--out", str(run_dir), *RUNS[name][1], "--store", store,
            *(["--threads", str(threads)] if threads else [])]


def different(name: str, report: dict[str, Any]) -> str:
    """What in a report.json (one reused from an earlier invocation) is not what run ``name`` runs; empty if none."""
    options = dict(zip(RUNS[name][1][::2], RUNS[name][1][1::2]))
    # A report names its task as the task names itself, with its defaults ("digits?size=32").
    expected = {"model": MODEL, "task": load_task(TASK).name, "objective": options["--objective"],
                "budget": float(options["--budget"]), "backends": options.get("--backend", "eager").split(",")}
    return ", ".join(f"{key} {report.get(key)!r}, not {value!r}" for key, value in expected.items()
                     if report.get(key) != value)


def prune(name: str, run_dir: Path, arguments: list[str]) -> dict[str, Any]:
    """Run ``edgebench ARGUMENTS`` unless the run's report.json is there already; the command and its
    timing (of a reused run: what this script recorded when it ran it, if it did)."""
    shown = shlex.join(["edgebench", *arguments])
    if (run_dir / "report.json").is_file():
        print(f"{run_dir} holds a finished prune run: reusing it (remove it to run {name} again)", flush=True)
        timing_file = run_dir / TIMING
        timing = json.loads(timing_file.read_text(encoding="utf-8")) if timing_file.is_file() else {}
        return {"command": shown, **timing, "reused": True}
    before, started = load_average(), time.perf_counter()
    edgebench(*arguments)
    timing = {"command": shown, "wall_s": round(time.perf_counter() - started, 1),
              "load_average": [before, load_average()]}
    (run_dir / TIMING).write_text(json.dumps(timing, indent=2) + "\n", encoding="utf-8")
    return {**timing, "reused": False}


def summarise(name: str, run_dir: Path, report: dict[str, Any], timing: dict[str, Any]) -> dict[str, Any]:
    """What the table shows of one run, from its report.json and ``prune``'s command and timing."""
    steps = report["steps"]
    tried = [step for step in steps if step.get("confirmation") is not None]
    confirmed = sum(step["verdict"] == "kept" for step in tried)
    base, final = report["baseline"], report["final"]
    return {
        "name": name, "label": RUNS[name][0], "out": str(run_dir), "command": timing["command"],
        "objective": report["objective"], "budget": report["budget"], "backends": report["backends"],
        "kept": report["kept_steps"], "candidates": len(steps), "stop_reason": report["stop_reason"],
        "keep_rule": report.get("keep_rule"),
        "confirmations": {"tried": len(tried), "confirmed": confirmed, "refuted": len(tried) - confirmed},
        "latency": {backend: {"ratio": final["latency_ratio"].get(backend),
                              "baseline_p50_ms": base["latency_ms"].get(backend),
                              "final_p50_ms": final["latency_ms"].get(backend)} for backend in report["backends"]},
        "metric": report["metric"], "accuracy": [base["accuracy"], final["accuracy"]],
        "macs": [base["macs"], final["macs"]], "params": [base["params"], final["params"]],
        "wall_s": timing.get("wall_s"), "loop_wall_s": report["wall_s"], "reused": timing.get("reused", False),
        "load_average": timing.get("load_average"), "warnings": report["warnings"],
    }


def markdown(results: dict[str, Any]) -> str:
    rows = results["runs"]
    load = results["load_average"]
    keep_rule = next((row["keep_rule"] for row in rows if row["keep_rule"]), None)
    header = [
        f"# The pruner's runs: {results['model']} on {results['task']}",
        "",
        f"`{results['script']}`",
        "",
        environment_line(results["environment"]) + f" Threads: {results['threads'] or 'the pruner default'}; "
        f"1-minute load average {_load(load['start'])} at the start, {_load(load['end'])} after the last run.",
        "",
        "Latency: the final model's paired ratio to the baseline per backend, 95% interval, then both p50s. "
        "Confirmations: chosen candidates the keep rule's fresh paired run confirmed faster, of those it measured "
        "(a refuted one keeps nothing; two refuted in a row end the run). Wall: the command, process start to exit.",
    ]
    if keep_rule:
        header += ["", f"Keep rule: {keep_rule['name']} ({keep_rule['screen']}; then {keep_rule['confirm']})."]
    table = markdown_table(
        ["run", "command", "kept / candidates", "confirmed / confirmations", "stopped",
         "latency / baseline [95% CI] (p50)", "accuracy", "MACs", "params", "wall"],
        [[row["label"], f"`{row['command']}`", f"{row['kept']} / {row['candidates']}",
          _confirmations(row), row["stop_reason"], _latency(row), _before_after(row["accuracy"], "{:.2%}"),
          _before_after([m / 1e6 for m in row["macs"]], "{:.1f}") + " M",
          _before_after([p / 1e6 for p in row["params"]], "{:.2f}") + " M", _wall(row)] for row in rows])
    notes = [f"- {row['label']}: warning: {warning}" for row in rows for warning in row["warnings"]]
    return "\n".join(header + ["", table.rstrip("\n")] + ([""] + notes if notes else [])) + "\n"


def _confirmations(row: dict[str, Any]) -> str:
    if not row["keep_rule"]:
        return f"- (no keep rule: {row['objective']} objective)"
    found = row["confirmations"]
    return f"{found['confirmed']} / {found['tried']}"


def _latency(row: dict[str, Any]) -> str:
    shown = []
    for backend, found in row["latency"].items():
        p50s = found["baseline_p50_ms"], found["final_p50_ms"]
        scale = "" if None in p50s else f" ({p50s[0]:.2f} → {p50s[1]:.2f} ms)"
        shown.append(f"{backend} {ratio_text(found['ratio'])}{scale}")
    return "; ".join(shown)


def _before_after(values: list[float], form: str) -> str:
    return " → ".join(form.format(value) for value in values)


def _wall(row: dict[str, Any]) -> str:
    """The command's wall time; for a reused run this script did not time, the loop's own (from report.json)."""
    if row["wall_s"] is None:
        return f"{_minutes(row['loop_wall_s'])} (report.json's, loop only)"
    return _minutes(row["wall_s"]) + (" (earlier invocation)" if row["reused"] else "")


def _minutes(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s"


def _load(value: Optional[float]) -> str:
    return "unknown" if value is None else f"{value:g}"


if __name__ == "__main__":
    main()
