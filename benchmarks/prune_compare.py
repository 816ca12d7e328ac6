"""Compare the final models of two `edgebench prune` runs in one paired measurement.

Usage: python benchmarks/prune_compare.py LATENCY_DIR FLOPS_DIR [--backend eager] [--rounds 20] [--store FILE]

Each DIR is an `edgebench prune --out` directory. Their `model.pt2` files alternate in blocks in
one worker process (the pruner's own paired measurement), so the ratio does not depend on when
each run happened; accuracies and MACs come from each `report.json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgebench.models import resolve_model
from edgebench.sweep.paired import Pairing, measure_paired
from edgebench.results.record import Settings
from edgebench.session import available_definition, run_session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--backend", default="eager")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--store", default=":memory:", help="results store for the paired records (default: none kept)")
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
    for directory, report, entry in zip((args.first, args.second), reports, paired.entries):
        print(f"{directory}: objective {report['objective']}, accuracy {report['final']['accuracy']:.2%} "
              f"(baseline {report['baseline']['accuracy']:.2%}), MACs {report['final']['macs'] / 1e6:.1f} M, "
              f"params {report['final']['params'] / 1e6:.2f} M, {args.backend} p50 {entry.p50_ms:.3f} ms (paired)")
    print(f"{args.second} / {args.first} latency on {args.backend}: {ratio} (95% interval, {ratio.rounds} rounds)")


if __name__ == "__main__":
    main()
