"""Resolution sweep: latency and frames per second of LRASPP-MobileNetV3 against input resolution,
eager and ONNX Runtime, on this machine.

    .venv/bin/python benchmarks/resolution_sweep.py --out results/resolution-sweep

One `edgebench run` over every resolution (each its own model binding and ONNX export; torchvision
weights=None, weights_backbone=None) on the local target into a scratch store, then, from the
stored records, what `edgebench compare --resolution` shows: `resolution.md` (resolution,
backend, p50 ms with its 95% interval, frames per second = batch x 1000 / p50, and what the
records ran on), the report's figure `fig-resolution-1.png` and `records.json` (the records
without samples) in --out. Batch 1, so frames per second = 1000 / p50.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from edgebench.cli.render import markdown_cell
from edgebench.report import plots
from edgebench.report.build import Labels, draw_resolution
from edgebench.results.record import Record
from edgebench.results.resolution import resolution_rows, swept_series
from edgebench.results.store import Store

RESOLUTIONS = "3x256x512,3x512x1024,3x768x1536,3x1024x2048"  # 512x256 to 2048x1024 (width x height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for resolution.md, the figure and records")
    parser.add_argument("--model", default="torchvision:lraspp_mobilenet_v3_large")
    parser.add_argument("--input-shape", default=RESOLUTIONS, help="comma-separated CxHxW shapes, as `edgebench run`")
    parser.add_argument("--backend", default="eager,onnxruntime")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--min-time", default="3")
    parser.add_argument("--max-time", default="30")
    parser.add_argument("--processes", default="3")
    parser.add_argument("--warmup", default="1")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "store.db"
        command = [sys.executable, "-m", "edgebench", "run", "--model", args.model, "--input-shape", args.input_shape,
                   "--backend", args.backend, "--batch", "1", "--threads", args.threads, "--min-time", args.min_time,
                   "--max-time", args.max_time, "--processes", args.processes, "--warmup", args.warmup,
                   "--store", str(store)]
        print("$", shlex.join(command[1:]), file=sys.stderr)
        run = subprocess.Popen(command)  # its progress and its run table pass through
        try:
            returncode = run.wait()
        except KeyboardInterrupt:  # the run got the same Ctrl-C: it stops its workers and ends by itself
            run.wait()
            sys.exit("interrupted: nothing written")
        if returncode not in (0, 1):  # 1: some measurement failed; the table says which
            sys.exit(f"edgebench run failed ({returncode})")
        with Store.open(store, create=False) as opened:
            records = opened.records(opened.latest_run_id())
    write_outputs(records, args)


def write_outputs(records: list[Record], args: argparse.Namespace) -> None:
    series = swept_series(records)
    colors = {backend: plots.color_for(i) for i, backend in enumerate(dict.fromkeys(r.backend for r in records))}
    figures = draw_resolution(records, Labels(records), colors, args.out)
    table = args.out / "resolution.md"
    table.write_text(markdown(records, resolution_rows(series), args) + "\n", encoding="utf-8")
    (args.out / "records.json").write_text(
        json.dumps([r.to_json_dict(with_samples=False) for r in records], indent=2) + "\n", encoding="utf-8")
    print(table.read_text(encoding="utf-8"))
    print(f"wrote {table}, {', '.join(str(args.out / f.file) for f in figures)} and {args.out / 'records.json'}",
          file=sys.stderr)


def markdown(records: list[Record], rows: list[dict], args: argparse.Namespace) -> str:
    env = records[0].env
    packages = env.get("packages") or {}
    lines = [
        f"{args.model}, batch 1, {env.get('cpu_model', 'unknown CPU')} ({env.get('host', '-')}), "
        f"{args.threads} thread(s); torch {packages.get('torch', '-')}, onnxruntime {packages.get('onnxruntime', '-')}; "
        f"--min-time {args.min_time} --max-time {args.max_time} --processes {args.processes} --warmup {args.warmup}",
        "",
        "| resolution (W x H) | input shape | backend | p50 ms [95% CI] | frames/s | warnings |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        latency = (f"{row['p50_ms']:.2f} [{row['p50_ci95_low_ms']:.2f}, {row['p50_ci95_high_ms']:.2f}]"
                   if row["p50_ms"] is not None else f"{row['status']}: {row['error']}")
        fps = "-" if row["fps"] is None else f"{row['fps']:.2f}"
        cells = [width_by_height(row["input_shape"]), row["input_shape"], row["backend"], latency, fps,
                 "; ".join(row["warnings"]) or "-"]
        lines.append("| " + " | ".join(markdown_cell(cell) for cell in cells) + " |")
    return "\n".join(lines)


def width_by_height(shape: str) -> str:
    """``3x1024x2048`` (CxHxW) -> ``2048x1024``, as segmentation papers write resolutions."""
    dims = shape.split("x")
    return f"{dims[-1]}x{dims[-2]}" if len(dims) == 3 else shape


if __name__ == "__main__":
    main()
