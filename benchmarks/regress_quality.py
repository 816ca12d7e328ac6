"""Quality of `edgebench regress` on real measurements: false alarms and detection rates.

    .venv/bin/python benchmarks/regress_quality.py [--runs 12] [--model torchvision:mobilenet_v3_small]

Measures the same setup several times, each a separate `edgebench run` invocation (fresh worker
processes, as in CI) into a scratch store, then replays every pair of runs (earlier run as the
baseline, later as the contender) through the real detector (`edgebench.results.regress.judge`,
given the runs before the contender as its history, as `edgebench regress` gives it):

- A/A: the pair as measured. Any "regression" is a false positive (goal: at most 1%).
- Injected slowdowns: the contender's raw samples and per-process p50s multiplied by 1.05 and
  1.10. The share flagged "regression" is the detection rate (goal: 10% found in at least 95%).

- Change points (``edgebench.results.change_points``): the runs taken as nights in order, a 3% step
  injected at each night that leaves at least 5 nights before it and 5 after (every later run's
  samples x 1.03); for each, how many nights after the step until the change point is dated at the
  step's first night (goal: within 5), and the change points of the series as measured (each is a
  false one).

For contrast it also applies the rule the detector does not use, threshold + one-sided
Mann-Whitney U on the raw samples at the same alpha, to the same pairs.

N runs give N(N-1)/2 pairs; showing a false-positive rate below 1% takes about 300 pairs
without one (25 runs; a development run with shorter settings took 12 s a run). Pairs share
runs, so they are not independent: the intervals printed (Clopper-Pearson, 95%) treat them as
if they were and are optimistic. A goal counts as met or missed only when the whole interval
says so. `--store FILE --runs 0` re-analyses a store measured before; `--runs N` with
`--store FILE` adds N runs to it.
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
from scipy import stats as scipy_stats

from edgebench.board import stats
from edgebench.results import change_points
from edgebench.results.compare import key_text
from edgebench.results.record import Latency, Record
from edgebench.results.regress import ALPHA, DEFAULT_THRESHOLD, HISTORY_RUNS, MIN_HISTORY, Verdict, judge
from edgebench.results.store import Store

SLOWDOWNS = (1.05, 1.10)
STEP = 1.03  # the change-point goal: a 3% step dated within STEP_NIGHTS nights
STEP_NIGHTS = 5
FALSE_POSITIVE_GOAL = 0.01
DETECTION_GOAL = 0.95  # for the 10% slowdown


def main() -> None:
    args = _arguments()
    with tempfile.TemporaryDirectory() as scratch:
        store_path = Path(args.store) if args.store else Path(scratch) / "regress-quality.db"
        started = time.monotonic()
        for index in range(args.runs):
            _measure_once(args, store_path)
            print(f"run {index + 1}/{args.runs} measured ({time.monotonic() - started:.0f} s)", flush=True)
        with Store.open(store_path, create=False) as store:
            records = [r for r in store.records(method="sweep") if r.status == "ok"]
    for key, runs in _runs_by_key(records).items():
        _report(key, runs, args)
    print(f"\nreproduce: {_command(args)}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="torchvision:mobilenet_v3_small")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=12, help="separate `edgebench run` invocations to make")
    parser.add_argument("--processes", type=int, default=3, help="worker processes per run")
    parser.add_argument("--min-time", type=float, default=3.0, help="timed seconds per run, all processes")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per process")
    parser.add_argument("--metric", default="p50")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--store", help="keep the measurements in this store (default: a scratch file)")
    args = parser.parse_args()
    if args.runs < 1 and not args.store:
        parser.error("--runs 0 re-analyses a store: give it with --store")
    return args


def _measure_once(args: argparse.Namespace, store_path: Path) -> None:
    command = [sys.executable, "-m", "edgebench", "run", "--model", args.model, "--backend", args.backend,
               "--threads", str(args.threads), "--processes", str(args.processes), "--min-time", str(args.min_time),
               "--max-time", str(args.min_time * 3), "--warmup", str(args.warmup), "--store", str(store_path),
               "--json", "--tag", "purpose=regress-quality"]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"edgebench run failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")


def _runs_by_key(records: list[Record]) -> dict[tuple, list[Record]]:
    """Each key's records in the order they were measured."""
    by_key: dict[tuple, list[Record]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.created_at, r.run_id)):
        by_key[record.key].append(record)
    return by_key


def _history(runs: list[Record], contender: int) -> list[Record]:
    """What `edgebench regress` would use: the runs before the contender, newest first."""
    return runs[:contender][::-1][:HISTORY_RUNS]


def slowed(record: Record, factor: float) -> Record:
    """The record as if every inference had taken ``factor`` times as long."""
    samples = [sample * factor for sample in record.samples_ms]
    process_p50s = [p50 * factor for p50 in record.stability.process_p50s]
    return record.model_copy(update={
        "samples_ms": samples,
        "latency_ms": Latency(**stats.summarize(samples)),
        "stability": record.stability.model_copy(update={"process_p50s": process_p50s}),
    })


def _report(key: tuple, runs: list[Record], args: argparse.Namespace) -> None:
    pairs = list(combinations(range(len(runs)), 2))
    print(f"\n{key_text(runs[0])}: {len(runs)} runs, {len(pairs)} ordered pairs (earlier run = baseline)")
    if not pairs:
        print("  at least two runs are needed")
        return
    _describe_noise(runs, args.metric)
    verdicts = {
        factor: [judge(runs[i], slowed(runs[j], factor), args.metric, args.threshold, history=_history(runs, j))
                 for i, j in pairs]
        for factor in (1.0, *SLOWDOWNS)
    }
    for factor, judged in verdicts.items():
        flagged = _count(judged, "regression")
        naive = sum(_naive_flags(runs[i], slowed(runs[j], factor), args.metric, args.threshold) for i, j in pairs)
        label = "A/A (no change)" if factor == 1.0 else f"slowdown x{factor:.2f}"
        print(f"  {label:17} detector flags {_rate(flagged, len(pairs))}; "
              f"threshold + raw-sample Mann-Whitney would flag {_rate(naive, len(pairs))}")
    print(f"  A/A pairs called improvements: {_rate(_count(verdicts[1.0], 'improvement'), len(pairs))}")
    sources = Counter(v.significance.noise for v in verdicts[1.0])
    print(f"  noise estimate used: {', '.join(f'{source} {count}' for source, count in sources.most_common())} "
          f"(history: the key's earlier runs, needs {MIN_HISTORY}; pairs with a contender among the first "
          f"{MIN_HISTORY} runs have none)")
    detectable = [v.significance.detectable for v in verdicts[1.0]]
    print(f"  detectable change per pair at alpha {ALPHA:g}: median {statistics.median(detectable):.1%} "
          f"(range {min(detectable):.1%} to {max(detectable):.1%})")
    false_positives = _interval(_count(verdicts[1.0], "regression"), len(pairs))
    detections = _interval(_count(verdicts[SLOWDOWNS[-1]], "regression"), len(pairs))
    print(f"  goal, false positives <= {FALSE_POSITIVE_GOAL:.0%}: "
          f"{_judged(false_positives.high <= FALSE_POSITIVE_GOAL, false_positives.low > FALSE_POSITIVE_GOAL)}; "
          f"goal, 10% slowdown detected >= {DETECTION_GOAL:.0%}: "
          f"{_judged(detections.low >= DETECTION_GOAL, detections.high < DETECTION_GOAL)}")
    _report_change_points(runs)


def _report_change_points(runs: list[Record]) -> None:
    starts = range(change_points.MIN_POINTS - 1, len(runs) - STEP_NIGHTS + 1)
    if not starts:
        print(f"  change points: needs at least {change_points.MIN_POINTS - 1 + STEP_NIGHTS} runs")
        return
    delays = [_nights_to_date(runs, start) for start in starts]
    found = [delay for delay in delays if delay is not None]
    spread = f" (nights needed: median {statistics.median(found):g}, most {max(found)})" if found else ""
    print(f"  {STEP - 1:.0%} step, change points: dated at its first night within {STEP_NIGHTS} nights for "
          f"{_rate(len(found), len(delays))} of the step positions{spread}")
    measured = change_points.find(runs).points
    print(f"  change points in the series as measured (false ones): {len(measured)}"
          + "".join(f"; run {p.index + 1} {p.change:+.1%} (p = {p.p_value:.2g})" for p in measured))


def _nights_to_date(runs: list[Record], start: int) -> int | None:
    """Nights after a step injected at ``start`` until the change points date it there; None: not
    within ``STEP_NIGHTS``."""
    stepped = runs[:start] + [slowed(record, STEP) for record in runs[start:]]
    return next((nights for nights in range(1, STEP_NIGHTS + 1)
                 if any(p.index == start for p in change_points.find(stepped[:start + nights]).points)), None)


def _count(verdicts: list[Verdict], outcome: str) -> int:
    return sum(verdict.outcome == outcome for verdict in verdicts)


def _describe_noise(runs: list[Record], metric: str) -> None:
    """How much separate runs of one setup differ, which bounds what any detector can do."""
    values = np.log([getattr(r.latency_ms, metric) for r in runs])
    spreads = [r.stability.process_spread for r in runs if r.stability and r.stability.process_spread is not None]
    print(f"  run-to-run: {metric} {min(np.exp(values)):.3f} to {max(np.exp(values)):.3f} ms, "
          f"SD of log {metric} {np.std(values, ddof=1):.1%}, so SD of an A/A pair's log ratio about "
          f"{np.std(values, ddof=1) * np.sqrt(2):.1%}")
    # Even a test that knew the noise exactly needs |log 1.10| >= (z_alpha + z_0.95) x SD of an A/A log ratio.
    needed = math.log(1.10) / (scipy_stats.norm.isf(ALPHA) + scipy_stats.norm.isf(1 - DETECTION_GOAL))
    print(f"  (finding a 10% slowdown {DETECTION_GOAL:.0%} of the time at alpha {ALPHA:g} needs that figure "
          f"below about {needed:.1%}, whatever the test)")
    if spreads:
        print("  within runs: per-process p50 spread (max-min)/median, median over runs "
              f"{statistics.median(spreads):.1%}")


def _naive_flags(baseline: Record, contender: Record, metric: str, threshold: float) -> bool:
    change = getattr(contender.latency_ms, metric) / getattr(baseline.latency_ms, metric) - 1
    test = scipy_stats.mannwhitneyu(contender.samples_ms, baseline.samples_ms, alternative="greater")
    return change > threshold and test.pvalue < ALPHA


def _interval(count: int, total: int):
    """Clopper-Pearson 95% interval of the rate (optimistic: pairs share runs)."""
    return scipy_stats.binomtest(count, total).proportion_ci(confidence_level=0.95, method="exact")


def _rate(count: int, total: int) -> str:
    interval = _interval(count, total)
    return f"{count}/{total} = {count / total:.1%} [95% CI {interval.low:.1%}, {interval.high:.1%}]"


def _judged(met: bool, missed: bool) -> str:
    """Met or missed when the whole interval says so; otherwise more pairs are needed to tell."""
    if met:
        return "met"
    return "NOT met" if missed else "undecided (interval spans the goal: measure more runs)"


def _command(args: argparse.Namespace) -> str:
    options = ["--runs", str(args.runs), "--metric", args.metric, "--threshold", f"{args.threshold:g}"]
    if args.runs > 0:
        options += ["--model", args.model, "--backend", args.backend, "--threads", str(args.threads), "--processes",
                    str(args.processes), "--min-time", f"{args.min_time:g}", "--warmup", f"{args.warmup:g}"]
    if args.store:
        options += ["--store", args.store]
    return shlex.join([".venv/bin/python", "benchmarks/regress_quality.py", *options])


if __name__ == "__main__":
    main()
