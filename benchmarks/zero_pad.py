"""Zero-padded against coupled pruning of residual branches, at the same channels removed.

Usage: python benchmarks/zero_pad.py --out DIR [--models mobilenet_v2,resnet18] [--task digits] [--ratio 0.5]
       [--criterion l1] [--round-to 8] [--train-steps 200] [--finetune-steps 200] [--backends eager,onnxruntime]
       [--rounds 20] [--block-time 0.1] [--threads N] [--store FILE]

For each model (``torchvision:NAME?num_classes=10``) on the task: the trained baseline (the
pruner's cache, ``--train-steps``), then two variants that remove as many output channels from the
last convolution of every residual branch, ``--ratio`` of its width (``--round-to`` kept, lowest
``--criterion`` score first), and nothing else:

- zero-padded: each branch cut alone, its output scattered back into zeros of the full width
  before the addition (``edgebench.prune.zero_pad``, what ``edgebench prune --residual zero-pad``
  does); checked against the same channels masked before fine-tuning.
- coupled: each residual group cut by as many channels with Torch-Pruning, from every layer it
  couples (the stem or projection feeding the stage, every branch adding into it, every layer
  reading it): what ``--residual coupled`` does.

Both get the same ``--finetune-steps`` on the task; accuracy is read right after the cut and after
fine-tuning. Then one paired measurement per backend of baseline, zero-padded and coupled, the
pruner's own (all three alternating in blocks in one worker process on this machine), gives each
variant's latency over the baseline and zero-padded over coupled, with 95% intervals.

Writes ``DIR/zero_pad.json`` (every figure, with the settings that make it comparable) and
``DIR/zero_pad.md`` (the table); the records go to ``--store`` (default ``DIR/results.db``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from edgebench.errors import UsageError
from edgebench.prune.baseline import prunable_model, saved_model, trained_baseline
from edgebench.prune.importance import channel_scores
from edgebench.prune.masking import masked_channels
from edgebench.prune.model_stats import model_stats
from edgebench.prune.static import ratio_cut
from edgebench.prune.surgery import build_graph, cut
from edgebench.prune.tasks import load_task
from edgebench.prune.zero_pad import cut_zero_padded, prunable_units, removed_channels, residual_branches
from edgebench.results.record import Settings
from edgebench.session import available_definition, run_session
from edgebench.sweep.paired import Pairing, measure_paired

VARIANTS = ("baseline", "zero-padded", "coupled")
# Before fine-tuning the zero-padded model computes what the masked one does (tests/prune/test_zero_pad.py).
EQUALITY_RTOL, EQUALITY_ATOL = 1e-5, 1e-5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", default="mobilenet_v2,resnet18", help="torchvision classifiers, comma-separated")
    parser.add_argument("--task", default="digits")
    parser.add_argument("--ratio", type=float, default=0.5, help="share of each residual branch's channels removed")
    parser.add_argument("--criterion", default="l1")
    parser.add_argument("--round-to", type=int, default=8)
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--finetune-steps", type=int, default=200)
    parser.add_argument("--backends", default="eager,onnxruntime")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--block-time", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--store", default=None, help="results store (default: OUT/results.db)")
    args = parser.parse_args()
    if not 0 < args.ratio < 1:
        sys.exit(f"zero_pad.py: error: --ratio must be in (0, 1), not {args.ratio:g}")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        results = run(args)
    except UsageError as exc:
        sys.exit(f"zero_pad.py: error: {exc}")
    except KeyboardInterrupt:
        sys.exit("zero_pad.py: interrupted; nothing written")
    (args.out / "zero_pad.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (args.out / "zero_pad.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))


def run(args: argparse.Namespace) -> dict:
    task = load_task(args.task)
    example = task.example_input
    shape = "x".join(str(d) for d in example.shape[1:])
    backends = [backend.strip() for backend in args.backends.split(",")]
    pairing = Pairing(rounds=args.rounds, block_s=args.block_time)
    definition = available_definition("local")
    settings = Settings(min_time_s=0, max_time_s=0, min_iterations=1, warmup_s=pairing.warmup_s, target_ci=0,
                        timeout_s=900, threads=args.threads, processes=1)
    results = {"task": task.name, "ratio": args.ratio, "criterion": args.criterion, "round_to": args.round_to,
               "train_steps": args.train_steps, "finetune_steps": args.finetune_steps, "backends": backends,
               "target": definition.name, "threads": args.threads, "torch": torch.__version__,
               "pairing": dataclasses.asdict(pairing), "models": []}  # each record keeps its seed and orders
    store = args.store or str(args.out / "results.db")
    with tempfile.TemporaryDirectory() as scratch, \
            run_session(store, tags={"command": "benchmark-zero-pad"}, log=print) as session, \
            session.stage(definition, "cpu", measure_power=False) as ready:
        sweep = ready.sweep(settings, threads=args.threads)
        for name in args.models.split(","):
            spec = f"torchvision:{name.strip()}?num_classes=10"
            modules, row = variants(spec, task, args)
            resolved = [saved_model(module, Path(scratch) / f"{index}.pt", shape, f"{spec} ({variant})", None)
                        for index, (variant, module) in enumerate(modules.items())]
            row["paired"] = {}
            for backend in backends:
                print(f"{spec}: paired {backend} run of {', '.join(VARIANTS)}, {args.rounds} rounds")
                paired = measure_paired(sweep, resolved, backend, pairing, roles=list(VARIANTS))
                session.keep_all(entry.record for entry in paired.entries)
                failed = [entry.error for entry in paired.entries if not entry.ok]
                if failed:
                    raise UsageError(f"{spec} on {backend}: {failed[0]}")
                row["paired"][backend] = {
                    "p50_ms": dict(zip(VARIANTS, (entry.p50_ms for entry in paired.entries))),
                    "zero-padded / baseline": paired.ratio(1, 0).as_dict(),
                    "coupled / baseline": paired.ratio(2, 0).as_dict(),
                    "zero-padded / coupled": paired.ratio(1, 2).as_dict(),
                }
            results["models"].append(row)
        results["run_id"] = session.run_id
    return results


def variants(spec: str, task, args: argparse.Namespace) -> tuple[dict[str, torch.nn.Module], dict]:
    """The baseline, zero-padded and coupled models of ``spec``, fine-tuned, and their figures."""
    started = time.perf_counter()
    resolved = prunable_model(spec, task).resolved
    baseline, _ = trained_baseline(resolved, task, args.train_steps, print)
    baseline.eval()
    example = task.example_input
    graph = build_graph(baseline, example)
    branches = residual_branches(graph)
    if not branches:
        raise UsageError(f"{spec} has no residual branch to zero-pad")
    units = prunable_units(graph, branches)
    spanned = {branch.group for branch in branches.values()}
    branch_drops = ratio_cut(channel_scores(args.criterion, baseline, {b: units[b] for b in branches}, task),
                             args.ratio, args.round_to)
    group_drops = ratio_cut(channel_scores(args.criterion, baseline, {g: graph.groups[g] for g in spanned}, task),
                            args.ratio, args.round_to)
    # The premise: each branch loses as many channels either way (its group is as wide as it is).
    for name, branch in branches.items():
        if len(branch_drops.get(name, ())) != len(group_drops.get(branch.group, ())):
            raise UsageError(f"{spec}: {name} would lose {len(branch_drops.get(name, ()))} channels zero-padded "
                             f"but {len(group_drops.get(branch.group, ()))} coupled")
    if not branch_drops:
        raise UsageError(f"{spec}: --ratio {args.ratio:g} at --round-to {args.round_to} removes no channel")
    padded, _, paddings = cut_zero_padded(graph, branches, branch_drops)
    coupled, _ = cut(graph, group_drops)
    masked = masked_channels(baseline, removed_channels(paddings))
    with torch.no_grad():
        want, got = masked(example), padded(example)
    max_abs_diff = float((got - want).abs().max())
    if not torch.allclose(got, want, rtol=EQUALITY_RTOL, atol=EQUALITY_ATOL):
        raise UsageError(f"{spec}: the zero-padded model differs from the masked one by up to {max_abs_diff:.3g}")
    modules = {"baseline": baseline, "zero-padded": padded, "coupled": coupled}
    row = {"model": spec, "branches": len(branches), "zero_padded_equals_masked_max_abs_diff": max_abs_diff,
           "channels_removed_per_branch": {name: len(drop) for name, drop in branch_drops.items()},
           "widths": {padding.conv: padding.width for padding in paddings}, "variants": {}}
    for variant, module in modules.items():
        after_cut = task.evaluate(module)
        if variant != "baseline":
            print(f"{spec}: {variant}: fine-tuning {args.finetune_steps} steps")
            task.finetune(module, args.finetune_steps)
        module.eval()
        row["variants"][variant] = {"accuracy_after_cut": after_cut, "accuracy": task.evaluate(module),
                                    **model_stats(module, example)}
    row["prepare_s"] = round(time.perf_counter() - started, 1)
    return modules, row


def markdown(results: dict) -> str:
    backends = results["backends"]
    lines = [f"Residual branches cut by {results['ratio']:g} of their width ({results['criterion']}, round to "
             f"{results['round_to']}) on {results['task']}, {results['finetune_steps']} fine-tuning steps each; "
             f"paired latency on {results['target']} ({results['pairing'][backends[0]]['rounds']} rounds).", "",
             "| model | variant | MACs M | params M | accuracy after cut | accuracy | "
             + " | ".join(f"{backend} / baseline [95% CI]" for backend in backends) + " |",
             "| --- | --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in backends) + " |"]
    for row in results["models"]:
        for variant, figures in row["variants"].items():
            ratios = [_ratio(row["paired"][backend].get(f"{variant} / baseline")) for backend in backends]
            lines.append(f"| {row['model']} | {variant} | {figures['macs'] / 1e6:.1f} | {figures['params'] / 1e6:.2f} | "
                         f"{figures['accuracy_after_cut']:.2%} | {figures['accuracy']:.2%} | " + " | ".join(ratios) + " |")
        lines.append(f"| {row['model']} | zero-padded / coupled | | | | | "
                     + " | ".join(_ratio(row["paired"][backend]["zero-padded / coupled"]) for backend in backends)
                     + " |")
    return "\n".join(lines) + "\n"


def _ratio(ratio: dict | None) -> str:
    if ratio is None:
        return "1"  # the baseline over itself
    low, high = ratio["ci95"]
    return f"{ratio['ratio']:.3f} [{low:.3f}, {high:.3f}]"


if __name__ == "__main__":
    main()
