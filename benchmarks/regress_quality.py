"""Quality of `edgebench regress` on slowdowns injected into the model graph: the paired confirmation's
false positives and detection rates, change points on nights of real runs, and what each costs.

    .venv/bin/python benchmarks/regress_quality.py [--out bench/regress_quality] [--aa-trials 400]
        [--slow-trials 100] [--threshold 0.03] [--sessions 3] [--rounds 200] [--block-time 0.01]
        [--threads 1] [--model torchvision:mobilenet_v3_small] [--input-shape 3x224x224]
        [--max-minutes M] [--store FILE] [--quick]

Every figure comes from real measurements of real models through edgebench's own path (worker
processes, the ONNX Runtime runner, the store, the artifact store); nothing is multiplied afterwards.

1. **Models.** The base model is exported to ONNX (MobileNetV3-small with random weights at
   224x224: about 3 ms per inference with one ONNX Runtime thread here). Slower variants are the
   same graph with a side branch of extra 3x3 convolutions whose result is multiplied by zero and
   added to the output (``edgebench.models.graph_slowdown``): the outputs are the base model's,
   only the time grows. Calibration paired runs measure candidates with 4 to 32 extra
   convolutions against the base; a line through the origin fitted to their log ratios gives the
   number of convolutions for each target (3%, 5%, 10%), so the sizes follow the machine.
2. **True slowdowns.** A long paired run (``--true-rounds``, 600) of each variant against the base,
   the two alone in one worker as a confirmation measures them (and of an identical copy, the A/A
   control): each variant's measured slowdown, with its 95% interval, printed beside its target.
   The detection rates below are "for a measured x% slowdown".
3. **Nights.** Real `edgebench run` invocations (subprocesses, timed) of one model name,
   ``net.onnx``, with the settings of ``docs/examples/nightly-suite.toml`` (min 5 s, max 60 s,
   3 worker processes; no power sampling, which this machine does not have): ``--base-nights``
   of the base model and ``--step-nights`` of the 3% variant, interleaved in time so that a drift
   of the machine during the script is not taken for the step, then one night each of the 5% and
   the 10% variant. Their wall times are today's cost of measuring a key once. After each night,
   its golden pairing, as `regress --confirm --golden RUN --golden-all` runs it (``confirm``'s
   golden pairing, one paired session with the confirmation's rounds and blocks): the night's
   file from the artifact store against the golden run's, the golden run being the first night.
4. **Change points** (``edgebench.results.change_points``, as `regress` runs them) over two
   series of the same nights: each night's p50, and each night's ratio to the golden run. The base
   nights in order, then the 3% nights, with the step at every position that leaves at least
   ``MIN_POINTS - 1`` base nights before it; for each, after how many step nights the step is dated
   at its first night (goal: within 5). Positions share nights, so they are not independent
   trials. Change points in the base nights alone are false ones. Beside them, for contrast, what
   `regress` without --confirm (``judge``) makes of the same nights: every ordered pair of base
   nights (A/A), and the 5% and 10% nights against each base night (no extra measurement).
5. **Paired confirmation.** Each trial is one key through ``edgebench.results.confirm.confirm``
   (what `edgebench regress --confirm` calls), with the key's threshold set to ``--threshold``:
   the model files are restored from the artifact store and measured against each other in fresh
   worker processes, up to ``--sessions`` sessions of ``--rounds`` rounds, judged by ``decide``
   with ``one_sided_p`` x sessions (Bonferroni over the looks) at regress's ``ALPHA``;
   Benjamini-Hochberg over one key changes nothing. Cases: A/A, as `regress`'s A/A checks run
   (``confirm(..., aa=[key])``: the last base night's file restored twice; any "regression" is a
   false positive; goal at most 0.5% over at least 400 trials); the 5% night's key, its history
   verdict forced to "regression" so it is always confirmed, against the last base night (goal:
   detected at least 95%); the same for the 10% night (at least 99%). The cases are interleaved
   over the run. The detection rates are conditional on a key being confirmed at all (the history
   verdict decides that).
6. **Cost per key**: each trial's wall time (restoring the files, the sessions, judging), its
   median and the share of keys that needed more than one session, beside the median wall time of
   one night's `edgebench run` of the key. A `regress --confirm` run adds its own start-up once.

**Threshold** (``--threshold``, default 0.03): a nightly that must catch a 5% slowdown cannot use
regress's default 0.05, since a key measured right at the threshold is flagged only about half
the time. 0.03 leaves two points under 5% for the error of the measured ratio (each trial's
interval is in the JSON) and keeps the threshold as far above 1 as that allows, which is what
protects A/A keys; it is also the step the change points are asked to find. A lower threshold
would call fewer A/A keys "same" in one session (the interval must fit inside 1 +/- threshold)
and so cost more sessions.

**Goals** are judged on the point estimate; the Clopper-Pearson 95% interval is printed beside,
with whether it shows the goal met or missed, or spans it.

**Time**: about 9 s a trial when it decides in one session, 20 s a night and its golden pairing
on the 2-core development machine: the full defaults take about 100 minutes. The progress lines
show the pace and the time left; ``--max-minutes`` ends the trials early, and
since the cases are interleaved each keeps its share. ``--quick`` is a smoke run of under 2
minutes with tiny settings: its figures mean nothing.

Writes ``OUT/regress_quality.md`` (the tables) and ``OUT/regress_quality.json`` (settings,
versions, the load average at the start, the end and after every night and trial, the calibration,
every night and every trial) through ``benchmarks/table_files.py``, rewritten after each step
and each trial, so Ctrl-C keeps what was done. The store (records, kept model files) is a scratch
file unless ``--store`` names one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

from scipy import stats as scipy_stats

from edgebench.errors import UsageError
from edgebench.models import resolve_model
from edgebench.models.artifacts import onnx_for
from edgebench.models.graph_slowdown import slowed
from edgebench.results import change_points
from edgebench.results.confirm import DEFAULT_SESSIONS, PAIRED_TIMEOUT_S, Confirmation, confirm
from edgebench.results.record import Record, Settings
from edgebench.results.regress import ALPHA, HISTORY_RUNS, RegressRule, Verdict, judge, regress
from edgebench.results.store import Store
from edgebench.session import RunSession, available_definition, run_session
from edgebench.sweep.paired import CONFIRM_BLOCK_S, CONFIRM_ROUNDS, Pairing, Ratio, measure_paired
from edgebench.sweep.suite import load_suite
from edgebench.vcs import git_commit

from table_files import (environment, environment_line, load_average, markdown_table, measure_and_write,
                         ratio_text, write_table)

REPO = Path(__file__).resolve().parents[1]
NIGHTLY_SUITE = REPO / "docs" / "examples" / "nightly-suite.toml"
TAGS = {"command": "benchmark-regress-quality"}
NIGHT_NAME = "net.onnx"  # every night measures this name, as a nightly follows a model by its name
STEP, SLOWDOWNS = 1.03, (1.05, 1.10)
TARGETS = (STEP, *SLOWDOWNS)
CASES = {"A/A": 1.0, "5%": 1.05, "10%": 1.10}  # confirmation cases: the variant the contender runs
FALSE_POSITIVE_GOAL = 0.005
DETECTION_GOALS = {1.05: 0.95, 1.10: 0.99}
STEP_NIGHTS_GOAL = 5
CALIBRATION_CONVS = (4, 8, 16, 32)
DEFAULT_THRESHOLD = 0.03  # the module docstring says why

# Full and --quick values of the options left unset; --quick only checks that everything runs.
FULL = {"aa_trials": 400, "slow_trials": 100, "rounds": CONFIRM_ROUNDS, "block_time": CONFIRM_BLOCK_S,
        "sessions": DEFAULT_SESSIONS, "base_nights": 10, "step_nights": 5, "calibration_rounds": 200,
        "true_rounds": 600, "night_min_time": None, "night_max_time": None, "night_processes": None,
        "night_warmup": 1.0}
QUICK = {"aa_trials": 2, "slow_trials": 1, "rounds": 4, "block_time": 0.03, "sessions": 2, "base_nights": 5,
         "step_nights": 2, "calibration_rounds": 4, "true_rounds": 6, "night_min_time": 0.3, "night_max_time": 1.0,
         "night_processes": 1, "night_warmup": 0.1}


def main() -> None:
    args = _arguments()
    if args.from_json is not None:  # the tables again from a finished run's JSON, nothing measured
        results = json.loads(args.from_json.read_text(encoding="utf-8"))
        print(f"written: {_write(args.out, results)}")
        return
    results = _started(args)
    started = time.monotonic()

    def measure() -> None:
        with tempfile.TemporaryDirectory(prefix="regress-quality-") as scratch:
            work = Path(scratch)
            store = Path(args.store) if args.store else work / "regress-quality.db"
            deadline = None if args.max_minutes is None else started + args.max_minutes * 60
            _measure(args, results, work, store, deadline)

    measure_and_write("regress_quality.py", results, measure, lambda done: _write(args.out, done), _markdown)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/regress_quality"))
    parser.add_argument("--model", default="torchvision:mobilenet_v3_small",
                        help="the base model: a spec exported to ONNX, or an .onnx file")
    parser.add_argument("--input-shape", default="3x224x224", help="as `edgebench run --input-shape`")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads everywhere")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"relative change that counts (default {DEFAULT_THRESHOLD}: see the docstring)")
    parser.add_argument("--aa-trials", type=int, help=f"A/A confirmations (default {FULL['aa_trials']})")
    parser.add_argument("--slow-trials", type=int,
                        help=f"confirmations of each slowdown, 5%% and 10%% (default {FULL['slow_trials']})")
    parser.add_argument("--sessions", type=int, help=f"paired sessions per key at most (default {DEFAULT_SESSIONS}, "
                        "as regress --confirm-sessions)")
    parser.add_argument("--rounds", type=int, help=f"paired rounds per session (default {CONFIRM_ROUNDS}, "
                        "as regress --confirm-rounds)")
    parser.add_argument("--block-time", type=float,
                        help=f"seconds per timed block (default {CONFIRM_BLOCK_S}, as regress --block-time)")
    parser.add_argument("--base-nights", type=int, help=f"nights of the base model (default {FULL['base_nights']})")
    parser.add_argument("--step-nights", type=int, help=f"nights of the 3%% variant (default {FULL['step_nights']})")
    parser.add_argument("--calibration-rounds", type=int,
                        help=f"rounds of the calibration paired run (default {FULL['calibration_rounds']})")
    parser.add_argument("--true-rounds", type=int, help=f"rounds of the paired run that measures each variant's "
                        f"true slowdown (default {FULL['true_rounds']})")
    parser.add_argument("--night-min-time", type=float, help="`edgebench run --min-time` of a night "
                        "(default: docs/examples/nightly-suite.toml's min_time)")
    parser.add_argument("--night-max-time", type=float, help="`edgebench run --max-time` of a night "
                        "(default: the nightly suite's max_time)")
    parser.add_argument("--night-processes", type=int, help="`edgebench run --processes` of a night "
                        "(default: the nightly suite's)")
    parser.add_argument("--night-warmup", type=float, help="`edgebench run --warmup` of a night (default 1, run's)")
    parser.add_argument("--max-minutes", type=float,
                        help="end the trials after the one that crosses this wall time since the start (the cases "
                             "are interleaved, so each keeps its share)")
    parser.add_argument("--store", help="keep the records and model files in this store (default: a scratch file)")
    parser.add_argument("--from-json", type=Path, help="write the tables again from this regress_quality.json "
                        "(a finished run's), measuring nothing")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about 2 minutes; figures mean nothing")
    args = parser.parse_args()
    for name in FULL:
        if getattr(args, name) is None:
            setattr(args, name, (QUICK if args.quick else FULL)[name])
    suite = load_suite(NIGHTLY_SUITE).settings
    args.night_min_time = suite.min_time if args.night_min_time is None else args.night_min_time
    args.night_max_time = suite.max_time if args.night_max_time is None else args.night_max_time
    args.night_processes = args.night_processes or suite.processes
    if args.aa_trials < 0 or args.slow_trials < 0 or args.sessions < 1 or args.rounds < 2:
        parser.error("--aa-trials and --slow-trials must be at least 0, --sessions 1, --rounds 2")
    if args.base_nights < change_points.MIN_POINTS - 1 or args.step_nights < 1:
        parser.error(f"--base-nights must be at least {change_points.MIN_POINTS - 1} (a change point needs "
                     f"{change_points.MIN_POINTS} points), --step-nights at least 1")
    if not 0 < args.threshold < 1:
        parser.error("--threshold is a fraction between 0 and 1")
    return args


def _started(args: argparse.Namespace) -> dict:
    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    return {"environment": {**environment(), "git_commit": git_commit(REPO)}, "settings": {**settings, "alpha": ALPHA},
            "load_average": {"start": load_average(), "end": None}, "interrupted": False, "calibration": None,
            "variants": None, "nights": [], "change_points": None, "history": None, "trials": []}


def _measure(args: argparse.Namespace, results: dict, work: Path, store: Path, deadline: float | None) -> None:
    base = _base_model(args, work)
    print(f"base model: {args.model} at {args.input_shape} -> {base.name}", flush=True)
    definition = available_definition("local")
    settings = Settings(min_time_s=0.0, max_time_s=0.0, min_iterations=1, warmup_s=Pairing().warmup_s, target_ci=0.0,
                        timeout_s=PAIRED_TIMEOUT_S, threads=args.threads, processes=1)
    with run_session(store, tags=TAGS) as session, \
            session.stage(definition, definition.default_device, measure_power=False) as ready:
        sweep = ready.sweep(settings, threads=args.threads)

        def paired(file: Path, role: str, rounds: int) -> Ratio:
            """``file`` over the base in a paired worker run of the two alone, as a confirmation
            measures a key (more models in one process would share its caches differently)."""
            roles = ["base", role]
            measured = measure_paired(sweep, [resolve_model(str(f)) for f in (base, file)], "onnxruntime",
                                      Pairing(rounds, args.block_time), roles=roles)
            session.keep_all(entry.record for entry in measured.entries)
            failed = [f"{role}: {entry.error}" for role, entry in zip(roles, measured.entries) if not entry.ok]
            if failed:
                raise UsageError("a paired measurement failed: " + "; ".join(failed))
            return measured.ratio(1)

        results["calibration"] = _calibrate(args, base, work, paired)
        _write(args.out, results)
        results["variants"], files = _variants(args, base, work, results["calibration"], paired)
        _write(args.out, results)
    records, golden_ratios = _nights(args, results, work, store, files)
    results["change_points"] = {
        "p50": _change_points(records[1.0], records[STEP], change_points.p50),
        "golden_ratio": _change_points(records[1.0], records[STEP], lambda record: golden_ratios[record.run_id])}
    results["history"] = _history_verdicts(records, args.threshold)
    _write(args.out, results)
    _confirmations(args, results, store, records, deadline)


def _base_model(args: argparse.Namespace, work: Path) -> Path:
    """The base model as one ONNX file in ``work``."""
    resolved = resolve_model(args.model, [args.input_shape] if args.input_shape else [])
    base = work / "base.onnx"
    shutil.copyfile(onnx_for(resolved, batch=1), base)
    return base


def _calibrate(args: argparse.Namespace, base: Path, work: Path, paired) -> dict:
    """Extra convolutions per target, from a paired run of each candidate against the base: the log
    ratio per convolution, fitted through the origin (besides its convolutions the branch is a few nodes on a
    handful of numbers; a fitted intercept would only add the noise of the smallest candidates)."""
    candidates = [slowed(base, work / f"calibrate-{convs}.onnx", convs) for convs in CALIBRATION_CONVS]
    ratios = []
    for convs, candidate in zip(CALIBRATION_CONVS, candidates):
        ratios.append(paired(candidate, f"+{convs} convs", args.calibration_rounds))
        print(f"calibration: +{convs} convolutions measured {ratios[-1]} of the base", flush=True)
    slope = sum(c * math.log(r.ratio) for c, r in zip(CALIBRATION_CONVS, ratios)) / sum(
        c * c for c in CALIBRATION_CONVS)
    if slope <= 0:
        raise UsageError("the calibration measured no slowdown growing with the extra convolutions: the machine "
                         "is too noisy now, or ONNX Runtime removed the side branch")
    chosen = {str(target): max(1, round(math.log(target) / slope)) for target in TARGETS}
    print(f"calibration: {math.expm1(slope):.2%} per convolution; chosen "
          + ", ".join(f"{float(t) - 1:.0%}: {c}" for t, c in chosen.items()), flush=True)
    return {"rounds": args.calibration_rounds, "per_conv": math.expm1(slope), "chosen_convs": chosen,
            "candidates": [{"convs": c, **r.as_dict()} for c, r in zip(CALIBRATION_CONVS, ratios)]}


def _variants(args: argparse.Namespace, base: Path, work: Path, calibration: dict,
              paired) -> tuple[list[dict], dict[float, Path]]:
    """The variants built, and each one's true slowdown from a long paired run against the base (a
    copy of the base as the A/A control); the model file of each variant, the base's as 1.0."""
    copy = work / "base-copy.onnx"
    shutil.copyfile(base, copy)
    convs = [calibration["chosen_convs"][str(target)] for target in TARGETS]
    files = [slowed(base, work / f"slowed-{target:.2f}.onnx", count) for target, count in zip(TARGETS, convs)]
    print(f"measuring the true slowdowns: {args.true_rounds} paired rounds each", flush=True)
    variants = []
    for target, count, file in zip((1.0, *TARGETS), (0, *convs), (copy, *files)):
        ratio = paired(file, f"{target:.2f}", args.true_rounds)
        variants.append({"target": target, "convs": count, **ratio.as_dict()})
        print(f"  target {target:.2f} (+{count} convolutions): measured {ratio}", flush=True)
    return variants, {1.0: base, **dict(zip(TARGETS, files))}


def _night_order(base_nights: int, step_nights: int) -> list[float]:
    """Base and 3% nights spread evenly through each other in time, then one 5% and one 10% night."""
    slots = sorted([((i + 0.5) / base_nights, 1.0) for i in range(base_nights)]
                   + [((i + 0.5) / step_nights, STEP) for i in range(step_nights)])
    return [variant for _, variant in slots] + list(SLOWDOWNS)


def _nights(args: argparse.Namespace, results: dict, work: Path, store: Path,
            files: dict[float, Path]) -> tuple[dict[float, list[Record]], dict[str, float]]:
    """Every night's record, by variant, in the order measured; and each night's ratio to the
    golden run (the first night), by the night's run id."""
    nightly = work / "nightly"
    nightly.mkdir()
    order = _night_order(args.base_nights, args.step_nights)
    records: dict[float, list[Record]] = {variant: [] for variant in files}
    golden_ratios: dict[str, float] = {}
    for number, variant in enumerate(order, 1):
        shutil.copyfile(files[variant], nightly / NIGHT_NAME)
        command = [sys.executable, "-m", "edgebench", "run", "-m", NIGHT_NAME, "-b", "onnxruntime",
                   "--threads", str(args.threads), "--min-time", f"{args.night_min_time:g}",
                   "--max-time", f"{args.night_max_time:g}", "--processes", str(args.night_processes),
                   "--warmup", f"{args.night_warmup:g}", "--no-power", "--store", str(store.resolve()), "--json",
                   "--tag", "purpose=regress-quality", "--tag", f"variant={variant:.2f}"]
        started = time.monotonic()
        proc = subprocess.run(command, cwd=nightly, capture_output=True, text=True)
        wall = time.monotonic() - started
        if proc.returncode != 0:
            raise UsageError(f"night {number}: edgebench run exited {proc.returncode}: "
                             f"{(proc.stderr.strip().splitlines() or ['no message'])[-1]}")
        (measured,) = json.loads(proc.stdout)
        with Store.open(store, create=False) as opened:
            (record,) = opened.records(measured["run_id"])
        records[variant].append(record)
        golden = records[1.0][0]  # the first night, a base night, is the golden run
        started = time.monotonic()
        golden_ratios[record.run_id] = _golden_pairing(args, store, golden)
        golden_wall = time.monotonic() - started
        results["nights"].append({"night": number, "variant": variant, "run_id": record.run_id, "wall_s": wall,
                                  "p50_ms": record.latency_ms.p50, "golden_ratio": golden_ratios[record.run_id],
                                  "golden_wall_s": golden_wall, "load_average": load_average()})
        _write(args.out, results)
        print(f"night {number}/{len(order)}: variant {variant:.2f}, p50 {record.latency_ms.p50:.3f} ms, "
              f"`edgebench run` took {wall:.1f} s; against golden {golden_ratios[record.run_id]:.3f} "
              f"({golden_wall:.1f} s)", flush=True)
    return records, golden_ratios


def _golden_pairing(args: argparse.Namespace, store: Path, golden: Record) -> float:
    """Tonight's ratio to the golden run's file, as `regress --confirm --golden RUN --golden-all`
    measures an unsuspected key each night: ``confirm``'s golden pairing, one paired session."""
    with Store.open(store, create=False) as opened:
        report = regress(opened)  # tonight's key; made unsuspected, so only the golden pairing measures it
    tonight = dataclasses.replace(report.verdicts[0], outcome="unchanged", significance=None)
    with run_session(store, tags=TAGS) as session:
        checked = confirm(dataclasses.replace(report, verdicts=[tonight]), session, sessions=1,
                          pairing=Pairing(args.rounds, args.block_time),
                          golden={tonight.contender.history_key: golden}, golden_all=True)
    (pairing,) = checked.golden_pairings.values()
    if pairing.ratio is None:
        raise UsageError(f"the golden pairing failed: {pairing.reason}")
    return pairing.ratio.ratio


def _change_points(base: list[Record], stepped: list[Record], value: change_points.Value) -> dict:
    """Over the series ``value`` gives (a night's p50, or its golden ratio): for each step position,
    the step nights needed until the change points date the step at its first night (None: not
    within the step nights measured); the false ones in the base nights."""
    positions = []
    for start in range(change_points.MIN_POINTS - 1, len(base) + 1):
        series = base[:start] + stepped
        nights = next((n for n in range(1, len(stepped) + 1)
                       if any(p.index == start for p in change_points.find(series[:start + n], value).points)), None)
        positions.append({"base_nights": start, "nights_to_date": nights})
    false_points = change_points.find(base, value).points
    values = [value(r) for r in base]
    return {"positions": positions, "false_points": [{"index": p.index, "change": p.change, "p_value": p.p_value}
                                                     for p in false_points],
            "base_values": values, "step_values": [value(r) for r in stepped],
            "base_log_sd": statistics.stdev(math.log(v) for v in values)}


def _history_verdicts(records: dict[float, list[Record]], threshold: float) -> dict:
    """What `regress` without --confirm makes of the same nights (``judge``, the history of a
    contender being the base nights before it, newest first): every ordered pair of base nights
    (A/A), and the 5% and 10% nights against each base night. No measurement: the nights'
    records, as measured."""
    base = records[1.0]

    def flagged(pairs: list[tuple[Record, Record, list[Record]]]) -> dict:
        verdicts = [judge(baseline, contender, "p50", threshold, ALPHA, history[::-1][:HISTORY_RUNS])
                    for baseline, contender, history in pairs]
        return {"pairs": len(verdicts), "regressions": sum(v.outcome == "regression" for v in verdicts),
                "detectable_median": statistics.median(v.significance.detectable for v in verdicts)}

    found = {"A/A": flagged([(base[i], base[j], base[:j]) for i, j in combinations(range(len(base)), 2)])}
    for variant in SLOWDOWNS:
        found[f"{variant - 1:.0%}"] = flagged([(night, records[variant][0], base) for night in base])
    return found


def _schedule(counts: dict[str, int]) -> list[str]:
    """The trials in an order that spreads each case evenly over the run."""
    return [case for _, case in sorted(((index + 0.5) / count, case) for case, count in counts.items()
                                       for index in range(count))]


def _confirmations(args: argparse.Namespace, results: dict, store: Path, records: dict[float, list[Record]],
                   deadline: float | None) -> None:
    """The trials: one key confirmed per trial, through ``confirm`` as `regress --confirm` runs it,
    until ``deadline`` (``time.monotonic``) if given."""
    with Store.open(store, create=False) as opened:
        report = regress(opened)  # the last night's key (net.onnx): its verdict is the template
    rule = RegressRule(report.metric, args.threshold)
    pairing = Pairing(args.rounds, args.block_time)
    base = records[1.0]

    def verdict(reference: Record, contender: Record) -> Verdict:
        return dataclasses.replace(report.verdicts[0], outcome="regression", baseline=reference, contender=contender,
                                   rule=rule, reason="benchmark trial: confirmed whatever the history says")

    def trial(case: str, session: RunSession) -> Confirmation:
        """One key through ``confirm``: A/A as `regress`'s A/A checks (the last base night's file
        restored twice), a slowdown as a suspected key against the last base night."""
        if case == "A/A":
            checked = confirm(dataclasses.replace(report, verdicts=[]), session, sessions=args.sessions,
                              pairing=pairing, aa=[verdict(base[-1], base[-1])])
            (confirmation,) = checked.aa.values()
        else:
            suspect = verdict(base[-1], records[CASES[case]][0])
            checked = confirm(dataclasses.replace(report, verdicts=[suspect]), session, sessions=args.sessions,
                              pairing=pairing)
            (confirmation,) = checked.confirmations.values()
        return confirmation

    counts = {"A/A": args.aa_trials, "5%": args.slow_trials, "10%": args.slow_trials}
    order = _schedule({case: count for case, count in counts.items() if count})
    started = time.monotonic()
    with run_session(store, tags=TAGS) as session:
        for number, case in enumerate(order, 1):
            began = time.monotonic()
            confirmation = trial(case, session)
            wall = time.monotonic() - began
            outcome = "failed" if confirmation.ratio is None else confirmation.outcome
            results["trials"].append({
                "trial": number, "case": case, "outcome": outcome, "sessions": confirmation.sessions, "wall_s": wall,
                "ratio": confirmation.ratio.as_dict() if confirmation.ratio else None,
                "p_value": confirmation.p_value, "reason": confirmation.reason,
                "load_average": load_average()})
            _write(args.out, results)
            elapsed = time.monotonic() - started
            left = elapsed / number * (len(order) - number)
            print(f"trial {number}/{len(order)} {case}: {outcome} after {confirmation.sessions} session(s), "
                  f"ratio {confirmation.ratio}, {wall:.1f} s | {elapsed / 60:.1f} min, about {left / 60:.0f} min left "
                  f"| {_running(results['trials'])}", flush=True)
            if deadline is not None and time.monotonic() > deadline:
                results["stopped_early"] = f"--max-minutes {args.max_minutes:g} reached after {number} trials"
                print(results["stopped_early"], flush=True)
                break


def _running(trials: list[dict]) -> str:
    """The rates so far, for the progress line."""
    parts = []
    for case in CASES:
        done = [t for t in trials if t["case"] == case]
        if done:
            flagged = sum(t["outcome"] == "regression" for t in done)
            parts.append(f"{case} {'false positives' if case == 'A/A' else 'detected'} {flagged}/{len(done)}")
    return ", ".join(parts)


def _interval(count: int, total: int) -> tuple[float, float]:
    """Clopper-Pearson 95% interval of a rate."""
    found = scipy_stats.binomtest(count, total).proportion_ci(confidence_level=0.95, method="exact")
    return found.low, found.high


def _rate(count: int, total: int) -> str:
    if not total:
        return "none"
    low, high = _interval(count, total)
    return f"{count}/{total} = {count / total:.1%} (95% CI {low:.1%} to {high:.1%})"


def _goal(count: int, total: int, goal: float, at_most: bool) -> str:
    """The goal judged on the point estimate, and what the 95% interval shows."""
    low, high = _interval(count, total)
    rate = count / total
    met = rate <= goal if at_most else rate >= goal
    shown_met = high <= goal if at_most else low >= goal
    shown_missed = low > goal if at_most else high < goal
    shown = "shows it met" if shown_met else "shows it missed" if shown_missed else "spans the goal"
    return f"{'met' if met else 'NOT met'} (point estimate); the interval {shown}"


def _write(out: Path, results: dict) -> Path:
    return write_table(out, "regress_quality", _markdown(results), results)


def _markdown(results: dict) -> str:
    s, load = results["settings"], results["load_average"]
    state = ("; **interrupted**: the tables cover what was measured" if results["interrupted"] else "") + (
        f"; **stopped**: {results['error']}" if results.get("error") else "") + (
        f"; {results['stopped_early']}" if results.get("stopped_early") else "")
    wall = f" Wall {results['wall_s'] / 60:.1f} min{state}." if "wall_s" in results else f" Running{state}."
    lines = ["# `edgebench regress` on slowdowns injected into the model graph", "",
             environment_line(results["environment"]) + f" Commit {results['environment']['git_commit']}.",
             f"Base model {s['model']} at {s['input_shape']}, ONNX Runtime with {s['threads']} thread(s). Load "
             f"average {load['start']} at the start, {load['end'] if load['end'] is not None else '-'} at the end."
             + wall, ""]
    if s["quick"]:
        lines += ["**--quick smoke run: tiny settings, the figures mean nothing.**", ""]
    return "\n".join(lines + _variants_table(results) + _confirmation_table(results) + _cost_table(results)
                     + _change_table(results) + _history_table(results))


def _variants_table(results: dict) -> list[str]:
    calibration, variants = results["calibration"], results["variants"]
    if not calibration:
        return []
    lines = ["## Injected slowdowns", "",
             f"Calibration ({calibration['rounds']} paired rounds of each candidate against the base): "
             + ", ".join(f"+{c['convs']} convolutions {c['ratio']:.3f}" for c in calibration["candidates"])
             + f"; fitted {calibration['per_conv']:.2%} per convolution.", ""]
    if variants:
        lines.append(markdown_table(
            ["variant", "extra convolutions", "target",
             f"measured ratio to the base, 95% CI ({variants[0]['rounds']} paired rounds, the two alone)"],
            [["identical copy (A/A)" if v["target"] == 1.0 else "slowed", v["convs"], f"{v['target']:.2f}",
              ratio_text(v)] for v in variants]))
    return lines


def _measured_label(results: dict, target: float) -> str:
    found = [v for v in results["variants"] or [] if v["target"] == target]
    return f" (measured {found[0]['ratio'] - 1:+.1%})" if found else ""


def _confirmation_table(results: dict) -> list[str]:
    trials, s = results["trials"], results["settings"]
    if not trials:
        return []
    rows = []
    for case, variant in CASES.items():
        done = [t for t in trials if t["case"] == case]
        if not done:
            continue
        count = {o: sum(t["outcome"] == o for t in done) for o in ("regression", "same", "undecided", "improvement",
                                                                    "failed")}
        if case == "A/A":
            label, goal = "A/A (identical files)", f"false positives <= {FALSE_POSITIVE_GOAL:.1%}"
            judged = _goal(count["regression"], len(done), FALSE_POSITIVE_GOAL, at_most=True)
        else:
            label = f"{variant - 1:.0%} slower{_measured_label(results, variant)}"
            goal = f"detected >= {DETECTION_GOALS[variant]:.0%}"
            judged = _goal(count["regression"], len(done), DETECTION_GOALS[variant], at_most=False)
        measured = [t["ratio"]["ratio"] for t in done if t["ratio"]]
        mean = f"{math.exp(statistics.fmean(map(math.log, measured))):.3f}" if measured else "-"
        rows.append([label, len(done), mean, _half_width(done), _rate(count["regression"], len(done)), count["same"],
                     count["undecided"], count["improvement"], count["failed"], goal, judged])
    return ["## Paired confirmation (`edgebench regress --confirm`, one key per trial)", "",
            f"Threshold {s['threshold']:g}, alpha {s['alpha']:g}, at most {s['sessions']} sessions of {s['rounds']} "
            f"rounds of {s['block_time']:g} s blocks, each session a fresh worker process. The geometric mean of "
            "the trials' ratios is a second measure of each variant's true slowdown, over many processes.", "",
            markdown_table(["case", "trials", "ratio, geometric mean over the trials",
                            "interval at the last look: median half-width (rounds)", "regression", "same",
                            "undecided", "improvement", "failed", "goal", "judged"], rows)]


def _half_width(trials: list[dict]) -> str:
    """How wide the pooled ratio's 95% interval was when each trial stopped: what decides whether
    a key can be called same (inside 1 ± threshold) or a regression."""
    looks = [t["ratio"] for t in trials if t["ratio"]]
    if not looks:
        return "-"
    half = statistics.median((math.log(r["ci95"][1]) - math.log(r["ci95"][0])) / 2 for r in looks)
    rounds = statistics.median(r["rounds"] for r in looks)
    return f"±{math.expm1(half):.1%} ({rounds:g})"


def _cost_table(results: dict) -> list[str]:
    trials, nights, s = results["trials"], results["nights"], results["settings"]
    rows = []
    for case in (*CASES, None):
        done = [t for t in trials if case is None or t["case"] == case]
        if done:
            more = sum(t["sessions"] > 1 for t in done)
            rows.append([f"paired confirmation, {case or 'all cases'}", len(done),
                         f"{statistics.median(t['wall_s'] for t in done):.1f}", _rate(more, len(done))])
    if nights:
        rows.append([f"one `edgebench run` of the key, today's single measurement (--min-time {s['night_min_time']:g} "
                     f"--max-time {s['night_max_time']:g} --processes {s['night_processes']} --warmup "
                     f"{s['night_warmup']:g})", len(nights), f"{statistics.median(n['wall_s'] for n in nights):.1f}",
                     "-"])
    if not rows:
        return []
    return ["## Cost per key", "",
            markdown_table(["measurement", "keys", "median s per key", "share needing more than one session"], rows)]


def _change_table(results: dict) -> list[str]:
    found = results["change_points"]
    if not found:
        return []
    rows = [_change_row(label, unit, found[series]) for series, label, unit in (
        ("p50", "p50 of each night's `edgebench run`", "ms"),
        ("golden_ratio", "ratio to the golden run, one paired session each night (`--golden-all`)", ""))]
    first = found["p50"]
    return ["## Change points: a measured 3% step over nights of real runs", "",
            f"{len(first['base_values'])} base nights, then {len(first['step_values'])} nights of the 3% variant"
            f"{_measured_label(results, STEP)}, the step placed after every count of base nights from "
            f"{change_points.MIN_POINTS - 1} (positions share nights: not independent). E-divisive with a t-test "
            "(p <= 0.001), as `regress` runs it.", "",
            markdown_table(["series", "base nights: range, SD of log", "step nights", "step dated at its first "
                            f"night within {STEP_NIGHTS_GOAL} nights (goal)", "step nights needed",
                            "change points in the base nights alone (false)"], rows)]


def _change_row(label: str, unit: str, found: dict) -> list[str]:
    positions = found["positions"]
    dated = [p["nights_to_date"] for p in positions if p["nights_to_date"] is not None]
    within = sum(n <= STEP_NIGHTS_GOAL for n in dated)
    false = "; ".join(f"night {p['index'] + 1} {p['change']:+.1%} (p = {p['p_value']:.2g})"
                      for p in found["false_points"])
    return [label, f"{min(found['base_values']):.3f} to {max(found['base_values']):.3f} {unit}, "
                   f"{found['base_log_sd']:.1%}".replace(" ,", ","),
            ", ".join(f"{v:.3f}" for v in found["step_values"]), f"{within} of {len(positions)}",
            ", ".join(map(str, dated)) or "-", f"{len(found['false_points'])}" + (f": {false}" if false else "")]


def _history_table(results: dict) -> list[str]:
    found = results["history"]
    if not found:
        return []
    rows = [["A/A: each base night against each earlier one" if case == "A/A" else
             f"the {case} night{_measured_label(results, CASES[case])} against each base night",
             _rate(v["regressions"], v["pairs"]), f"{v['detectable_median']:.1%}"] for case, v in found.items()]
    return ["## History verdicts on the same nights (`edgebench regress` without --confirm)", "",
            f"`judge` at threshold {results['settings']['threshold']:g}, alpha {results['settings']['alpha']:g}, each "
            "contender's history the base nights before it (at most "
            f"{HISTORY_RUNS}); pairs share nights, so the intervals are optimistic.", "",
            markdown_table(["pairs judged", "flagged regression", "median detectable change"], rows)]


if __name__ == "__main__":
    main()
