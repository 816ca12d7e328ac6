"""SSD300-VGG16 with about a quarter of its parameters removed by HRank: dense, masked and pruned.

Usage: python benchmarks/ssd_hrank.py --out DIR [--ratio 0.15] [--train-steps 200] [--finetune-steps 50]
       [--final-finetune-steps 50] [--rounds 20] [--model SPEC] [--task SPEC] [--store FILE]

The seed's result, by one command: ``edgebench prune --strategy static --criterion hrank --ratio R``
on ``torchvision:ssd300_vgg16?num_classes=11`` and the ``digit-detection`` task cuts the lowest-
ranked share R of every group of the backbone and extra layers (the heads kept by the family rule)
and measures the pruned network against the dense one, paired, in eager and ONNX Runtime. mAP is
read before the cut, right after it, and after fine-tuning. Then the contrast the seed ran into:
the same channels zeroed by ``torch.nn.utils.prune`` masks on the dense model
(``edgebench.prune.masking``, which refuses a contrast with no mask on it and is tested to compute
what the pruned model computes), measured with the dense and the pruned network in one paired
eager run. Last, where the time went: the dense and the pruned network profiled per layer in
eager (as ``edgebench run --profile-layers`` does) and diffed per module (``edgebench results layers``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from edgebench.prune.baseline import prunable_model, saved_model, trained_baseline
from edgebench.prune.masking import masked_channel_count, masked_like
from edgebench.prune.model_stats import model_stats
from edgebench.prune.outputs import load_pruned
from edgebench.prune.tasks import load_task
from edgebench.results.record import Settings
from edgebench.session import available_definition, run_session
from edgebench.sweep.paired import Pairing, measure_paired
from edgebench.sweep.plan import Measurement

from cli_run import edgebench  # benchmarks/cli_run.py, beside this script

MODEL = "torchvision:ssd300_vgg16?num_classes=11"
TASK = "digit-detection"
# A short timed loop before the profiled runs: the profile, not the latency, is what is read.
PROFILE_SETTINGS = Settings(min_time_s=1, max_time_s=3, min_iterations=5, warmup_s=0.3, target_ci=0.05,
                            timeout_s=900, processes=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--task", default=TASK)
    parser.add_argument("--ratio", type=float, default=0.15, help="share of each group's channels cut (0.15 with "
                        "--round-to 8 removes about 25%% of SSD300-VGG16's parameters)")
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--finetune-steps", type=int, default=50)
    parser.add_argument("--final-finetune-steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--store", default=None, help="results store (default: OUT/results.db)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.store or str(args.out / "results.db")
    pruned_dir = args.out / "pruned"
    if (pruned_dir / "report.json").is_file():
        print(f"{pruned_dir} holds a finished prune run: reusing it (remove it to prune again)", flush=True)
    else:
        edgebench("prune", "--model", args.model, "--task", args.task, "--strategy", "static", "--criterion", "hrank",
                  "--ratio", str(args.ratio), "--backend", "eager,onnxruntime", "--train-steps", str(args.train_steps),
                  "--finetune-steps", str(args.finetune_steps), "--final-finetune-steps",
                  str(args.final_finetune_steps), "--rounds", str(args.rounds), "--store", store, "--out",
                  str(pruned_dir), *(["--threads", str(args.threads)] if args.threads else []))
    report = json.loads((pruned_dir / "report.json").read_text())
    history = json.loads((pruned_dir / "pruning.json").read_text())["history"]

    task = load_task(report["task"])
    example = task.example_input
    prunable = prunable_model(report["model"], task)
    dense, _ = trained_baseline(prunable.resolved, task, args.train_steps, print)
    masked = masked_like(dense, example, history)  # refuses a history no mask can hold
    pruned = load_pruned(pruned_dir)
    part, shape = report["measured_part"], "x".join(map(str, example.shape[1:]))
    models = {"dense": dense, "masked (torch.nn.utils.prune)": masked, "pruned (HRank)": pruned}
    settings = Settings(min_time_s=0, max_time_s=0, min_iterations=1, warmup_s=0.3, target_ci=0, timeout_s=3600,
                        threads=args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        resolved = [saved_model(module, Path(scratch) / f"m{index}.pt", shape, label, part)
                    for index, (label, module) in enumerate(models.items())]
        with run_session(store, tags={"command": "ssd_hrank"}, log=print) as session, \
                session.stage(available_definition("local"), "cpu", measure_power=False) as ready:
            sweep = ready.sweep(settings, allow_hooks=True)  # the masked model runs its prune hooks
            paired = measure_paired(sweep, resolved, "eager", Pairing(rounds=args.rounds))
            session.keep_all(entry.record for entry in paired.entries)
            profiling = ready.sweep(PROFILE_SETTINGS, profile_layers=True)
            for model in (resolved[0], resolved[2]):  # dense, pruned
                session.keep(profiling.measure(Measurement(model, "eager", 1)))
            run_id = session.run_id

    stats = {label: model_stats(module, example, part) for label, module in models.items()}
    (cut_step,) = report["steps"]
    print(f"\n{report['model']} on {report['task']}; measured part: {part}; "
          f"masked contrast: {masked_channel_count(masked)} layer output channels zeroed by masks")
    print(f"mAP: dense {report['baseline']['accuracy']:.3f}, right after the cut {cut_step['metric_after_cut']:.3f}, "
          f"after {args.finetune_steps}+{args.final_finetune_steps} fine-tuning steps {report['final']['accuracy']:.3f}")
    base_params = stats["dense"]["params"]
    print(f"\none paired eager run, {args.rounds} rounds")
    print(f"{'model':32} {'params M':>9} {'removed':>8} {'MACs G':>7} {'p50 ms':>9}  latency / dense [95% CI]")
    for index, label in enumerate(models):
        ratio = paired.ratio(index, 0)
        removed = 1 - stats[label]["params"] / base_params
        print(f"{label:32} {stats[label]['params'] / 1e6:9.2f} {removed:8.1%} {stats[label]['macs'] / 1e9:7.2f} "
              f"{paired.entries[index].p50_ms:9.2f}  {ratio}")
    print("\nthe prune command's final paired comparison (pruned / dense):")
    for backend, ratio in report["final"]["latency_ratio"].items():
        shown = "not measured" if ratio is None else f"{ratio['ratio']:.3f} [{ratio['ci95'][0]:.3f}, {ratio['ci95'][1]:.3f}]"
        print(f"  {backend:12} {report['baseline']['latency_ms'][backend]:9.2f} ms -> "
              f"{report['final']['latency_ms'][backend]:9.2f} ms  {shown}")
    print(f"wall time of the prune command: {report['wall_s']:.0f} s")
    # Where the time went: the dense and the pruned network profiled per layer in eager, records
    # 4 and 5 of the run, diffed per module.
    edgebench("results", "layers", f"{run_id}:4", f"{run_id}:5", "--depth", "3", "--store", store)


if __name__ == "__main__":
    main()
