"""Filter decomposition of ResNet-18 on the digits: speedup and accuracy at the ranks the target chose.

Usage: python benchmarks/decompose.py --out DIR [--model SPEC] [--task SPEC] [--methods spatial,channel]
       [--max-error 0.4] [--layers PATTERNS] [--ranks 4] [--train-steps 200] [--finetune-steps 100]
       [--rounds 10] [--block-time 0.1] [--threads N] [--store FILE]

For each method, one ``edgebench decompose`` run on eager and ONNX Runtime: the baseline trained
on the task (cached, so both methods start from the same weights, and shared with edgebench
prune), every convolution's candidate ranks measured alone against the layer, the fastest within
the error budget kept, the decomposed model fine-tuned and measured against the original in one
paired run per backend. A run whose report is in DIR already is reused. DIR/decompose.md and
DIR/decompose.json gather both: per method the latency ratio to the original (95% interval) on
each backend, accuracy before, right after decomposing and after fine-tuning, MACs and parameters;
and per layer the chosen rank, its reconstruction error and its measured layer latency ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cli_run import edgebench  # benchmarks/cli_run.py, beside this script

MODEL = "torchvision:resnet18?num_classes=10"
# 64x64: large enough that a layer's arithmetic, not the per-call overhead, decides its latency.
TASK = "digits?size=64"
BACKENDS = ("eager", "onnxruntime")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--task", default=TASK)
    parser.add_argument("--methods", default="spatial,channel")
    parser.add_argument("--max-error", type=float, default=0.4)
    parser.add_argument("--layers", default=None, help="shell patterns of the convolutions to try (default: all)")
    parser.add_argument("--ranks", type=int, default=4)
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--finetune-steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block-time", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--store", default=None, help="results store (default: OUT/results.db)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.store or str(args.out / "results.db")
    reports = {}
    for method in args.methods.split(","):
        model_file = args.out / f"{method}.pt"
        report_file = model_file.with_suffix(".json")
        if report_file.is_file():
            print(f"{report_file} holds a finished run: reusing it (remove it to run again)", flush=True)
        else:
            edgebench("decompose", "--model", args.model, "--task", args.task, "--method", method,
                      "--max-error", str(args.max_error), "--backend", ",".join(BACKENDS), "--ranks", str(args.ranks),
                      "--train-steps", str(args.train_steps), "--finetune-steps", str(args.finetune_steps),
                      "--rounds", str(args.rounds), "--block-time", str(args.block_time), "--store", store,
                      "--out", str(model_file), *(["--layers", args.layers] if args.layers else []),
                      *(["--threads", str(args.threads)] if args.threads else []))
        reports[method] = json.loads(report_file.read_text())
    summary = {method: summarise(report) for method, report in reports.items()}
    (args.out / "decompose.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    markdown = render(summary)
    (args.out / "decompose.md").write_text(markdown, encoding="utf-8")
    print(markdown)


def summarise(report: dict) -> dict:
    """What the tables show, from one ``edgebench decompose`` report."""
    layers = []
    for layer in report["layers"]:
        chosen = next((trial for trial in layer["trials"] if trial["rank"] == layer["rank"]), None)
        layers.append({"layer": layer["layer"], "full_rank": layer["full_rank"], "rank": layer["rank"],
                       "error": chosen["error"] if chosen else None,
                       "layer_latency_ratio": chosen["latency_ratio"] if chosen else None,
                       "macs_ratio": chosen["macs"] / layer["macs"] if chosen else None,
                       "reason": layer["reason"]})
    original, decomposed = report["original"], report["decomposed"]
    return {"model": report["model"], "task": report["task"], "metric": report["metric"], "target": report["target"],
            "run_id": report["run_id"], "max_error": report["max_error"], "finetune_steps": report["finetune_steps"],
            "pairing": report["pairing"], "backends": report["backends"], "layers_decomposed": len(report["ranks"]),
            "layers_tried": len(report["layers"]), "original": original, "decomposed": decomposed,
            "layers": layers, "warnings": report["warnings"], "wall_s": report["wall_s"]}


def ratio_text(ratio: dict | None) -> str:
    return "-" if not ratio else f"{ratio['ratio']:.3f} [{ratio['ci95'][0]:.3f}, {ratio['ci95'][1]:.3f}]"


def render(summary: dict) -> str:
    first = next(iter(summary.values()))
    lines = [f"# Decomposition of {first['model']} on {first['task']}", "",
             f"Target {first['target']}; error budget {first['max_error']:g}; {first['finetune_steps']} fine-tuning "
             f"steps; layer and final latencies paired ({first['pairing']['rounds']} rounds per layer, twice as "
             "many for the final pair). Ratios are the decomposed model's latency over the original's, "
             "with their 95% interval.", "",
             "| method | layers decomposed | MACs M | parameters M | "
             f"{first['metric']}: original -> decomposed -> fine-tuned | "
             + " | ".join(f"{backend} latency ratio" for backend in first["backends"]) + " |",
             "| --- " * (5 + len(first["backends"])) + "|"]
    for method, side in summary.items():
        original, decomposed = side["original"], side["decomposed"]
        lines.append(f"| {method} | {side['layers_decomposed']} of {side['layers_tried']} | "
                     f"{original['macs'] / 1e6:.1f} -> {decomposed['macs'] / 1e6:.1f} | "
                     f"{original['params'] / 1e6:.2f} -> {decomposed['params'] / 1e6:.2f} | "
                     f"{original['accuracy']:.2%} -> {decomposed['accuracy_before_finetune']:.2%} -> "
                     f"{decomposed['accuracy']:.2%} | "
                     + " | ".join(ratio_text(decomposed["latency_ratio"].get(b)) for b in side["backends"]) + " |")
    for method, side in summary.items():
        lines += ["", f"## {method} SVD: the chosen ranks", "",
                  "| layer | rank / full | error | MACs ratio | "
                  + " | ".join(f"{backend} layer latency ratio" for backend in side["backends"]) + " | decision |",
                  "| --- " * (5 + len(side["backends"])) + "|"]
        for layer in side["layers"]:
            if layer["rank"] is None:
                lines.append(f"| {layer['layer']} | whole | - | - | " + " | ".join("-" for _ in side["backends"])
                             + f" | {layer['reason']} |")
                continue
            lines.append(f"| {layer['layer']} | {layer['rank']} / {layer['full_rank']} | {layer['error']:.3f} | "
                         f"{layer['macs_ratio']:.2f} | "
                         + " | ".join(ratio_text(layer["layer_latency_ratio"].get(b)) for b in side["backends"])
                         + f" | {layer['reason']} |")
        if side["warnings"]:
            lines += [""] + [f"- warning: {warning}" for warning in side["warnings"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
