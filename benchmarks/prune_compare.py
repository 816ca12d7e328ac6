"""Compare the final models of two `edgebench prune` runs in one paired measurement.

Usage: python benchmarks/prune_compare.py LATENCY_DIR FLOPS_DIR [--backend eager] [--rounds 20] [--store FILE]
       [--out bench/prune_compare]

Each DIR is an `edgebench prune --out` directory. Their `model.pt2` files alternate in blocks in
one worker process (the pruner's own paired measurement), so the ratio does not depend on when
each run happened; accuracies and MACs come from each `report.json`. The table (per run: objective,
accuracy, MACs, parameters, paired p50; then the second over the first with its 95% interval) is
printed and written to ``OUT/prune_compare.md``, every figure in ``OUT/prune_compare.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from edgebench.models import resolve_model
from edgebench.sweep.paired import Pairing, measure_paired
from edgebench.results.record import Settings
from edgebench.session import available_definition, run_session

from table_files import environment, environment_line, markdown_table, ratio_text, write_table  # beside this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--backend", default="eager")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--store", default=":memory:", help="results store for the paired records (default: none kept)")
    parser.add_argument("--out", type=Path, default=Path("bench/prune_compare"),
                        help="directory for prune_compare.md and prune_compare.json")
    args = parser.parse_args()
    reports = [json.loads((d / "report.json").read_text()) for d in (args.first, args.second)]
    shape = "x".join(str(d) for d in json.loads((args.first / "pruning.json").read_text())["input_shape"][1:])
    models = [resolve_model(str(d / "model.pt2"), [shape]) for d in (args.first, args.second)]
    settings = Settings(min_time_s=0, max_time_s=0, min_iterations=1, warmup_s=0.3, target_ci=0, timeout_s=600)
    with run_session(args.store, tags={"command": "prune_compare"}, log=print) as session, \
            session.stage(available_definition("local"), "cpu", measure_power=False) as ready:
        paired = measure_paired(ready.sweep(settings), models, args.backend, Pairing(rounds=args.rounds))
        session.keep_all(entry.record for entry in paired.entries)
    ratio = paired.ratio(1, 0)
    results = {"script": shlex.join(["python", "benchmarks/prune_compare.py", *sys.argv[1:]]),
               "backend": args.backend, "rounds": args.rounds, "environment": environment(),
               "runs": [{"out": str(directory), "objective": report["objective"], "budget": report["budget"],
                         "accuracy": report["final"]["accuracy"], "baseline_accuracy": report["baseline"]["accuracy"],
                         "macs": report["final"]["macs"], "params": report["final"]["params"], "p50_ms": entry.p50_ms}
                        for directory, report, entry in zip((args.first, args.second), reports, paired.entries)],
               "second_over_first": ratio.as_dict() if ratio else None}
    table = markdown(results)
    write_table(args.out, "prune_compare", table, results)
    print(table)


def markdown(results: dict) -> str:
    first, second = (run["out"] for run in results["runs"])
    header = ["# The final models of two `edgebench prune` runs, in one paired run", "", f"`{results['script']}`", "",
              environment_line(results["environment"]), "",
              f"One paired {results['backend']} run, {results['rounds']} rounds; accuracy, MACs and parameters from "
              "each run's report.json.", ""]
    table = markdown_table(
        ["run", "objective, budget", "accuracy (baseline)", "MACs", "params", f"{results['backend']} p50 ms (paired)"],
        [[f"`{run['out']}`", f"{run['objective']}, {run['budget']:g}",
          f"{run['accuracy']:.2%} ({run['baseline_accuracy']:.2%})", f"{run['macs'] / 1e6:.1f} M",
          f"{run['params'] / 1e6:.2f} M", "-" if run["p50_ms"] is None else f"{run['p50_ms']:.3f}"]
         for run in results["runs"]])
    return ("\n".join(header) + "\n" + table + f"\n`{second}` over `{first}`, latency on {results['backend']}: "
            f"{ratio_text(results['second_over_first'])} (95% interval, {results['rounds']} rounds).\n")


if __name__ == "__main__":
    main()
