"""Sensitivity curves of MobileNetV2 on the digits: accuracy and measured latency per group.

Usage: python benchmarks/sensitivity.py [--out bench/sensitivity] [--model SPEC] [--task digits]
       [--sparsities 0.0,0.1,...,0.9] [--groups NAMES] [--onnxruntime] [--criterion l1] [--round-to 8]
       [--train-steps 200] [--rounds 10] [--block-time 0.1] [--threads N] [--store FILE]

One ``edgebench sensitivity`` run: the baseline trained on the task (the pruner's cache), every
prunable group cut alone at each sparsity (no fine-tuning, as Distiller's analysis), accuracy on
the held-out digits, and one paired measurement per group per backend of the unpruned model, a
copy of it (the A/A check) and the group's cuts. A finished run in DIR is reused. DIR/sensitivity.md
gathers it, one table per backend: per group its channels, the A/A ratio, and at each sparsity the
accuracy and the latency ratio to the unpruned model; the figures are the command's own
(DIR/run/group-*.png, DIR/run/sensitivity.png).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgebench.prune.sensitivity_table import CSV_NAME, read_points

from cli_run import edgebench  # benchmarks/cli_run.py, beside this script

MODEL = "torchvision:mobilenet_v2?num_classes=10"
TASK = "digits"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/sensitivity"))
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--task", default=TASK)
    parser.add_argument("--sparsities", default=None, help="comma-separated (default: the command's 0.0 to 0.9)")
    parser.add_argument("--groups", default=None, help="comma-separated groups (default: every one)")
    parser.add_argument("--onnxruntime", action="store_true", help="measure ONNX Runtime as well as eager")
    parser.add_argument("--criterion", default="l1")
    parser.add_argument("--round-to", type=int, default=8)
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block-time", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--store", default=None, help="results store (default: OUT/results.db)")
    args = parser.parse_args()
    run_dir = args.out / "run"
    report_file = run_dir / "report.json"
    if report_file.is_file() and json.loads(report_file.read_text()).get("complete"):
        print(f"{run_dir} holds a finished analysis: reusing it (remove it to run again)", flush=True)
    else:
        optional = {"--sparsities": args.sparsities, "--groups": args.groups, "--threads": args.threads}
        edgebench("sensitivity", "--model", args.model, "--task", args.task, "--out", str(run_dir),
                  "--backend", "eager,onnxruntime" if args.onnxruntime else "eager", "--criterion", args.criterion,
                  "--round-to", str(args.round_to), "--train-steps", str(args.train_steps),
                  "--rounds", str(args.rounds), "--block-time", str(args.block_time), "--store", args.store or str(args.out / "results.db"),
                  *(item for option, value in optional.items() if value is not None for item in (option, str(value))))
    report = json.loads(report_file.read_text())
    backends, points = read_points(run_dir / CSV_NAME, report["pairing"]["rounds"])
    markdown = render(report, backends, points)
    (args.out / "sensitivity.md").write_text(markdown, encoding="utf-8")
    print(markdown)


def render(report: dict, backends: list[str], points: list) -> str:
    sparsities = sorted({point.sparsity for point in points} - {0.0})
    by_group: dict[str, dict[float, object]] = {}
    for point in points:
        by_group.setdefault(point.group, {})[point.sparsity] = point
    metric = report["metric"]
    lines = [f"# Sensitivity of {report['model']} on {report['task']}", "",
             f"Target {report['target']}, run `{report['run_id']}`; criterion {report['criterion']}, kept channels "
             f"multiples of {report['round_to']}, {report['finetune_steps']} fine-tuning steps; {metric} "
             f"{report['baseline']['metric']:.2%} unpruned. Each cell: {metric} / latency over the unpruned "
             f"model's (paired, {report['pairing']['rounds']} rounds of {report['pairing']['block_s']:g} s blocks, "
             "the group's cuts and the unpruned model in one worker). A/A: the unpruned model over a copy of "
             "itself in the same pairing, the noise floor of that group's ratios."]
    for backend in backends:
        lines += ["", f"## {backend}", "",
                  "| group | channels | A/A | " + " | ".join(f"{s:g}" for s in sparsities) + " |",
                  "| --- | ---: | ---: |" + " ---: |" * len(sparsities)]
        for group, row in by_group.items():
            unpruned = row.get(0.0)
            aa = unpruned.ratio.get(backend) if unpruned else None
            cells = [_cell(row.get(s), backend) for s in sparsities]
            channels = next(iter(row.values())).channels_before
            lines.append(f"| {group} | {channels} | {f'{aa.ratio:.3f}' if aa else '-'} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(point, backend: str) -> str:
    if point is None:
        return "-"
    ratio = point.ratio.get(backend)
    return f"{point.value:.1%} / {f'{ratio.ratio:.2f}' if ratio else '-'}"


if __name__ == "__main__":
    main()
