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

The two tables (dense against pruned from the prune command's report: parameters, MACs, file sizes,
the final paired latency per backend, mAP; and the three-model paired eager run) are printed and
written to ``OUT/ssd_hrank.md``, every figure in ``OUT/ssd_hrank.json``, before the per-layer diff.
"""

from __future__ import annotations

import argparse
import json
import shlex
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
from table_files import environment, environment_line, markdown_table, ratio_text, write_table

MODEL = "torchvision:ssd300_vgg16?num_classes=11"
TASK = "digit-detection"
MAP_50 = "mAP@0.5"  # the detection task's second metric, shown beside its first where there is one
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
    results = {"script": shlex.join(["python", "benchmarks/ssd_hrank.py", *sys.argv[1:]]), "model": report["model"],
               "task": report["task"], "measured_part": part, "ratio": report["ratio"], "rounds": args.rounds,
               "finetune_steps": [report["finetune_steps"], report["final_finetune_steps"]],
               "environment": environment(),
               "masked_channels": masked_channel_count(masked), "metric": report["metric"],
               "metric_after_cut": cut_step["metric_after_cut"], "prune_wall_s": report["wall_s"],
               "dense": report["baseline"], "pruned": report["final"], "run_id": run_id,
               "paired": []}
    for index, label in enumerate(models):
        ratio = paired.ratio(index, 0)
        results["paired"].append({"model": label, **stats[label], "p50_ms": paired.entries[index].p50_ms,
                                  "latency_ratio": ratio.as_dict() if ratio else None})
    table = markdown(results)
    write_table(args.out, "ssd_hrank", table, results)
    print(table)
    # Where the time went: the dense and the pruned network profiled per layer in eager, records
    # 4 and 5 of the run, diffed per module.
    edgebench("results", "layers", f"{run_id}:4", f"{run_id}:5", "--depth", "3", "--store", store)


def markdown(results: dict) -> str:
    dense, pruned = results["dense"], results["pruned"]
    # What the model is on paper: (label, model_stats key, scale, unit, decimals); ONNX only when exported.
    sizes = [("parameters", "params", 1e6, "M", 2),
             (f"MACs ({results['measured_part'] or 'whole model'})", "macs", 1e9, "G", 2),
             ("weights file (state dict)", "state_dict_bytes", 1e6, "MB", 1), ("ONNX file", "onnx_bytes", 1e6, "MB", 1)]
    before, after = dense["model_stats"], pruned["model_stats"]
    rows = [[label, f"{before[key] / scale:.{digits}f} {unit}", f"{after[key] / scale:.{digits}f} {unit}",
             f"{after[key] / before[key] - 1:+.1%}"]
            for label, key, scale, unit, digits in sizes if key in before and key in after]
    for backend, ratio in pruned["latency_ratio"].items():
        final_ms = pruned["latency_ms"].get(backend)
        rounds = f" ({ratio['rounds']} rounds)" if ratio else ""
        rows.append([f"{backend} p50, the prune command's final pair{rounds}",
                     f"{dense['latency_ms'][backend]:.1f} ms", "-" if final_ms is None else f"{final_ms:.1f} ms",
                     ratio_text(ratio) + (f": {1 / ratio['ratio']:.2f}x faster" if ratio else "")])
    rows.append([_metric_label(results), _metric(dense), f"{results['metric_after_cut']:.3f} right after the cut; "
                 f"{_metric(pruned)} after {results['finetune_steps'][0]} + {results['finetune_steps'][1]} fine-tuning "
                 "steps", ""])
    base_params = results["paired"][0]["params"]
    return "\n".join([
        f"# {results['model']} on {results['task']}: HRank, {results['ratio']:g} of every group", "",
        f"`{results['script']}`", "", environment_line(results["environment"]), "",
        f"Measured part: {results['measured_part'] or 'the whole model'}; the prune command took "
        f"{results['prune_wall_s']:.0f} s.", "",
        markdown_table(["", "dense", f"pruned (HRank, {results['ratio']:g} per group)", "change"], rows),
        f"One paired eager run of three models, {results['rounds']} rounds; the masked model: the same "
        f"{results['masked_channels']} layer output channels zeroed by `torch.nn.utils.prune` masks on the dense "
        "model.",
        "",
        markdown_table(["model", "params", "removed", "MACs", "p50 ms", "latency / dense [95% CI]"],
                       [[row["model"], f"{row['params'] / 1e6:.2f} M", f"{1 - row['params'] / base_params:.1%}",
                         f"{row['macs'] / 1e9:.2f} G", "-" if row["p50_ms"] is None else f"{row['p50_ms']:.2f}",
                         ratio_text(row["latency_ratio"])] for row in results["paired"]])])


def _metric_label(results: dict) -> str:
    return results["metric"] + (f" ({MAP_50})" if MAP_50 in results["dense"].get("metrics", {}) else "")


def _metric(figures: dict) -> str:
    """The task's metric (report.json's ``accuracy``), and mAP@0.5 beside it where the task computes it."""
    return f"{figures['accuracy']:.3f}" + (f" ({figures['metrics'][MAP_50]:.3f})"
                                           if MAP_50 in figures.get("metrics", {}) else "")


if __name__ == "__main__":
    main()
