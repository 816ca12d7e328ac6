"""How long a paired block should be: the interval of a paired ratio against block length, at equal
time, on this machine.

    .venv/bin/python benchmarks/pairing_blocks.py [--out bench/pairing_blocks] [--block-times 0.1,0.03,0.01,0.005]
        [--seconds 3] [--repeats 5] [--threads 1] [--model torchvision:mobilenet_v3_small]
        [--input-shape 3x224x224] [--slowed-convs 7] [--turns] [--quick]

Each measurement is one paired worker run (``sweep.paired.measure_paired``, what the pruner and
``regress --confirm`` use) of the base model against a second file, ``--seconds`` of timed blocks
per model whatever the block length (``rounds = seconds / block``), so the block lengths are
compared at equal measuring time. Two second files: an identical copy (A/A) and the base with
``--slowed-convs`` extra 3x3 convolutions in a side branch multiplied by zero
(``edgebench.models.graph_slowdown``; outputs unchanged, about 5% slower here), so a block
length that narrows the interval by biasing the ratio would show. Each (block length, file) pair
is measured ``--repeats`` times, each a fresh worker process, the block lengths interleaved.
``--turns``: each model in a long-lived worker of its own, both on this interpreter, taking turns
block by block (``sweep.turns``, what ``regress --confirm --reference-python`` does when the runtime
changed), instead of both in one worker: the cost and the noise of a request and a reply per block.

Per block length the table gives: timed samples per block; the standard deviation of the
per-round log ratio (what one round tells); the 95% interval's half-width of one measurement
(median over the repeats); the A/A ratios' spread between worker processes (standard deviation of
their logs: the variation a pooled interval of one process does not see); the slowed file's ratio
(geometric mean over the repeats); and the wall time of one measurement (the untimed call that
starts each block costs more, the shorter the block).

Writes ``OUT/pairing_blocks.md`` and ``OUT/pairing_blocks.json`` (every measurement) through
``benchmarks/table_files.py``, rewritten after each measurement, so Ctrl-C keeps what was done.
``--quick`` is a smoke run: its figures mean nothing.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from edgebench.models import resolve_model
from edgebench.models.artifacts import onnx_for
from edgebench.models.graph_slowdown import slowed
from edgebench.results.confirm import PAIRED_TIMEOUT_S
from edgebench.results.record import Settings
from edgebench.session import available_definition, run_session
from edgebench.sweep.paired import Pairing, measure_paired

from table_files import environment, environment_line, load_average, markdown_table, write_table

TAGS = {"command": "benchmark-pairing-blocks"}
CASES = ("A/A", "slowed")


def main() -> None:
    args = _arguments()
    results = {"environment": environment(), "settings": {k: str(v) if isinstance(v, Path) else v
                                                          for k, v in vars(args).items()},
               "load_average": {"start": load_average(), "end": None}, "interrupted": False, "measurements": []}
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="pairing-blocks-") as scratch:
            _measure(args, results, Path(scratch))
    except KeyboardInterrupt:
        results["interrupted"] = True
        print("interrupted: the table covers what was measured", flush=True)
    finally:
        results["load_average"]["end"] = load_average()
        results["wall_s"] = round(time.monotonic() - started, 1)
        table = write_table(args.out, "pairing_blocks", _markdown(results), results)
    print(_markdown(results))
    print(f"written: {table} and {table.with_suffix('.json')}")
    if results["interrupted"]:
        sys.exit(130)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/pairing_blocks"))
    parser.add_argument("--model", default="torchvision:mobilenet_v3_small")
    parser.add_argument("--input-shape", default="3x224x224")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--block-times", default="0.1,0.03,0.01,0.005", help="seconds per block, comma-separated")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per model in each measurement")
    parser.add_argument("--repeats", type=int, default=5, help="measurements per block length and file")
    parser.add_argument("--slowed-convs", type=int, default=7, help="extra convolutions of the slowed file")
    parser.add_argument("--turns", action="store_true", help="two workers taking turns instead of one worker")
    parser.add_argument("--quick", action="store_true", help="a smoke run: figures mean nothing")
    args = parser.parse_args()
    try:
        args.block_times = [float(value) for value in args.block_times.split(",")]
    except ValueError:
        parser.error(f"--block-times: not a comma-separated list of seconds: {args.block_times}")
    if args.quick:
        args.block_times, args.seconds, args.repeats = args.block_times[-2:], 0.1, 1
    if min(args.block_times) <= 0 or args.seconds <= 0 or args.repeats < 2 - args.quick:
        parser.error("block times and --seconds must be above 0, --repeats at least 2")
    if any(args.seconds / block < 2 for block in args.block_times):
        parser.error("--seconds must hold at least 2 blocks of every block time")
    return args


def _measure(args: argparse.Namespace, results: dict, work: Path) -> None:
    base = work / "base.onnx"
    shutil.copyfile(onnx_for(resolve_model(args.model, [args.input_shape]), batch=1), base)
    copy = work / "copy.onnx"
    shutil.copyfile(base, copy)
    files = {"A/A": copy, "slowed": slowed(base, work / "slowed.onnx", args.slowed_convs)}
    definition = available_definition("local")
    settings = Settings(min_time_s=0.0, max_time_s=0.0, min_iterations=1, warmup_s=Pairing().warmup_s, target_ci=0.0,
                        timeout_s=PAIRED_TIMEOUT_S, threads=args.threads, processes=1)
    total = args.repeats * len(args.block_times) * len(CASES)
    with run_session(work / "store.db", tags=TAGS) as session, \
            session.stage(definition, definition.default_device, measure_power=False) as ready:
        sweep = ready.sweep(settings, threads=args.threads)
        for repeat in range(args.repeats):
            for block in args.block_times:
                for case in CASES:
                    rounds = round(args.seconds / block)
                    begun = time.monotonic()
                    measured = measure_paired(sweep, [resolve_model(str(base)), resolve_model(str(files[case]))],
                                              "onnxruntime", Pairing(rounds, block),
                                              pythons=[sys.executable] * 2 if args.turns else None)
                    failed = [entry.error for entry in measured.entries if not entry.ok]
                    if failed:
                        raise SystemExit(f"pairing_blocks.py: error: a paired measurement failed: {failed[0]}")
                    results["measurements"].append(_summary(measured, case, block, repeat, time.monotonic() - begun))
                    results["load_average"]["now"] = load_average()
                    write_table(args.out, "pairing_blocks", _markdown(results), results)
                    print(f"[{len(results['measurements'])}/{total}] block {block:g} s, {case}: "
                          f"{measured.ratio(1)}", flush=True)


def _summary(measured, case: str, block: float, repeat: int, wall_s: float) -> dict:
    reference, other = measured.entries
    logs = [math.log(statistics.median(b) / statistics.median(a)) for a, b in zip(reference.blocks, other.blocks)]
    ratio = measured.ratio(1)
    return {"case": case, "block_s": block, "repeat": repeat, "rounds": len(logs), **ratio.as_dict(),
            "half_width": (math.log(ratio.high) - math.log(ratio.low)) / 2, "round_sd": statistics.stdev(logs),
            "samples_per_block": statistics.median(len(b) for b in reference.blocks + other.blocks),
            "wall_s": round(wall_s, 2)}


def _markdown(results: dict) -> str:
    s, load = results["settings"], results["load_average"]
    lines = ["# Paired ratio against block length, at equal measuring time", "",
             environment_line(results["environment"]),
             f"{s['model']} at {s['input_shape']}, ONNX Runtime with {s['threads']} thread(s), "
             + ("two long-lived workers taking turns" if s.get("turns") else "both models in one worker")
             + f"; {s['seconds']} s "
             f"of timed blocks per model in each measurement, {s['repeats']} measurements (fresh worker "
             f"processes) per block length and file; slowed file: +{s['slowed_convs']} convolutions. Load average "
             f"{load['start']} at the start, {load['end'] if load['end'] is not None else '-'} at the end."
             + (" **Interrupted**: the table covers what was measured." if results["interrupted"] else ""), ""]
    if s["quick"]:
        lines += ["**--quick smoke run: the figures mean nothing.**", ""]
    rows = [_row(block, [m for m in results["measurements"] if m["block_s"] == block]) for block in s["block_times"]]
    header = ["block", "rounds", "timed samples per block", "SD of the per-round log ratio", "95% half-width of "
              "one measurement, A/A (median)", "A/A ratio between processes: SD of log", "A/A ratios",
              "slowed ratio, geometric mean", "wall s per measurement"]
    return "\n".join(lines) + "\n" + markdown_table(header, [row for row in rows if row])


def _row(block: float, measurements: list[dict]) -> list | None:
    aa = [m for m in measurements if m["case"] == "A/A"]
    slow = [m for m in measurements if m["case"] == "slowed"]
    if not aa:
        return None
    aa_logs = [math.log(m["ratio"]) for m in aa]
    between = f"{statistics.stdev(aa_logs):.2%}" if len(aa) > 1 else "-"
    slowed_mean = f"{math.exp(statistics.fmean(math.log(m['ratio']) for m in slow)):.3f}" if slow else "-"
    return [f"{block:g} s", aa[0]["rounds"], f"{statistics.median(m['samples_per_block'] for m in measurements):g}",
            f"{statistics.median(m['round_sd'] for m in measurements):.1%}",
            f"±{statistics.median(m['half_width'] for m in aa):.1%}", between,
            ", ".join(f"{m['ratio']:.3f}" for m in aa), slowed_mean,
            f"{statistics.median(m['wall_s'] for m in measurements):.1f}"]


if __name__ == "__main__":
    main()
