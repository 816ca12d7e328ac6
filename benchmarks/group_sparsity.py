"""Group-sparsity regularised training before the cut against one-shot L1, at equal measured latency.

Usage: python benchmarks/group_sparsity.py [--model SPEC] [--size 32] [--train-steps 200] [--steps 200]
       [--strength 5e-3] [--ratio 0.5] [--finetune 100] [--round-to 8] [--rounds 20] [--block-time 0.1]
       [--threads N] [--out bench/group_sparsity] [--store FILE]

Two arms of ``edgebench prune --strategy static --criterion l1 --ratio R`` (``StaticPruner``, in
this process), from the same trained baseline (the pruner's cache, filled first, so both arms start
from the same weights):

- one-shot L1: ``--regularise none --reg-steps S``: S plain training steps, then the cut;
- group-norm: ``--regularise group-norm --reg-steps S --reg-strength K``: the same S steps with
  Torch-Pruning's group-norm regulariser, then the same cut.

Each arm gets its own fresh task, so both see the same training batches in the same order: the
regulariser is the only difference. Both then get the same ``--finetune`` steps (no final
fine-tune). A ratio cut keeps the same number of channels in every group whatever the scores, so
the two pruned models have one architecture: the script checks it (equal MACs and parameters) and
stops if not. Then one paired eager run measures the baseline and both pruned models together:
each arm's latency over the baseline's, and the group-norm arm's over the one-shot arm's, whose 95%
interval should hold 1 (equal architecture, equal measured latency), so what differs is accuracy.

The default strength is ten times Torch-Pruning's 5e-4, which its examples apply for ~100 epochs;
here the budget is hundreds of steps. Writes OUT/<model>.md and OUT/<model>.json and prints the
table; the paired records go to --store (default OUT/results.db).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from edgebench.prune.baseline import prunable_model, saved_model, trained_baseline
from edgebench.prune.loop import PruneConfig
from edgebench.prune.static import StaticPruner
from edgebench.prune.surgery import macs_and_params
from edgebench.prune.tasks import load_task
from edgebench.results.record import Settings
from edgebench.session import available_definition, run_session
from edgebench.sweep.paired import Pairing, measure_paired

MODEL = "torchvision:resnet18?num_classes=10"
ARMS = (("one-shot L1", "none"), ("group-norm regularised", "group-norm"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--size", type=int, default=32, help="digits image size")
    parser.add_argument("--train-steps", type=int, default=200, help="the baseline's training (cached)")
    parser.add_argument("--steps", type=int, default=200, help="training steps before the cut, in both arms")
    parser.add_argument("--strength", type=float, default=5e-3, help="the group-norm regulariser's coefficient")
    parser.add_argument("--ratio", type=float, default=0.5, help="share of every group's channels cut")
    parser.add_argument("--finetune", type=int, default=100, help="fine-tuning steps after the cut, in both arms")
    parser.add_argument("--round-to", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--block-time", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("bench/group_sparsity"))
    parser.add_argument("--store", default=None, help="results store (default: OUT/results.db)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    task_spec = f"digits?size={args.size}"
    prunable = prunable_model(args.model, load_task(task_spec))
    baseline, _ = trained_baseline(prunable.resolved, load_task(task_spec), args.train_steps, log)
    pairing = Pairing(rounds=args.rounds, block_s=args.block_time)
    settings = Settings(min_time_s=0.0, max_time_s=0.0, min_iterations=1, warmup_s=pairing.warmup_s,
                        target_ci=0.0, timeout_s=900.0, threads=args.threads, processes=1)
    with tempfile.TemporaryDirectory() as scratch, \
            run_session(args.store or str(args.out / "results.db"), tags={"command": "group_sparsity"},
                        log=log) as session, \
            session.stage(available_definition("local"), "cpu", measure_power=False) as ready:
        sweep = ready.sweep(settings, threads=args.threads)
        arms = {}
        for label, regularise in ARMS:
            config = PruneConfig(strategy="static", criterion="l1", ratio=args.ratio, round_to=args.round_to,
                                 regularise=regularise, reg_strength=args.strength, reg_steps=args.steps,
                                 finetune_steps=args.finetune, final_finetune_steps=0, train_steps=args.train_steps,
                                 pairing=pairing)
            workdir = Path(scratch) / regularise
            workdir.mkdir()
            log(f"== {label}")
            arms[label] = StaticPruner(load_task(task_spec), sweep, ["eager"], config, workdir, session.keep_all,
                                       log).run(prunable)
        example = load_task(task_spec).example_input
        shapes = {label: macs_and_params(outcome.model, example) for label, outcome in arms.items()}
        if len(set(shapes.values())) != 1:
            sys.exit(f"the arms' architectures differ (MACs, parameters): {shapes}; equal latency needs equal widths")
        input_shape = "x".join(str(d) for d in example.shape[1:])
        models = [saved_model(baseline, Path(scratch) / "baseline.pt", input_shape, f"{args.model} [baseline]", None)]
        models += [saved_model(outcome.model, Path(scratch) / f"arm{index}.pt", input_shape,
                               f"{args.model} [{label}, ratio {args.ratio:g}]", None)
                   for index, (label, outcome) in enumerate(arms.items())]
        log(f"== one paired eager run: baseline and both arms, {args.rounds} rounds")
        paired = measure_paired(sweep, models, "eager", pairing, roles=["baseline", "one-shot", "regularised"])
        session.keep_all(entry.record for entry in paired.entries)
    results = summary(args, arms, paired)
    stem = re.sub(r"[^A-Za-z0-9]+", "_", args.model).strip("_")
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.out / f"{stem}.md").write_text(table)
    print(table)


def summary(args: argparse.Namespace, arms: dict[str, Any], paired) -> dict[str, Any]:
    """What the table shows, with the settings that reproduce it."""
    failed = [entry.error for entry in paired.entries if not entry.ok]
    if failed:
        sys.exit(f"the paired run failed: {failed[0]}")
    rows = []
    for index, (label, outcome) in enumerate(arms.items(), start=1):
        report = outcome.report
        [step] = report["steps"]
        training = step["pre_cut_training"]
        rows.append({
            "arm": label, "regulariser": training["regulariser"], "strength": training["strength"],
            "accuracy_trained": training["metric_after_training"], "accuracy_after_cut": step["metric_after_cut"],
            "accuracy_finetuned": report["final"]["accuracy"], "macs": report["final"]["macs"],
            "params": report["final"]["params"], "p50_ms": paired.entries[index].p50_ms,
            "latency_ratio": paired.ratio(index, 0).as_dict(), "norm_after_over_before": training["norm_after_over_before"],
            "warnings": report["warnings"],
        })
    baseline = next(iter(arms.values())).report["baseline"]
    return {"settings": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
            "baseline": {"accuracy": baseline["accuracy"], "macs": baseline["macs"], "params": baseline["params"],
                         "p50_ms": paired.entries[0].p50_ms},
            "arms": rows, "regularised_over_one_shot": paired.ratio(2, 1).as_dict()}


def markdown(results: dict[str, Any]) -> str:
    s, base = results["settings"], results["baseline"]
    lines = [
        f"# Group-norm regularised training before the cut vs one-shot L1: {s['model']}",
        "",
        f"`python benchmarks/group_sparsity.py --model '{s['model']}' --size {s['size']} --train-steps "
        f"{s['train_steps']} --steps {s['steps']} --strength {s['strength']:g} --ratio {s['ratio']:g} --finetune "
        f"{s['finetune']} --round-to {s['round_to']} --rounds {s['rounds']} --block-time {s['block_time']:g}`",
        "",
        f"digits at {s['size']}x{s['size']}; baseline trained {s['train_steps']} steps: accuracy "
        f"{base['accuracy']:.2%}, {base['macs'] / 1e6:.1f} M MACs, {base['params'] / 1e6:.2f} M parameters, eager "
        f"p50 {base['p50_ms']:.3f} ms. Each arm: {s['steps']} training steps, the L1 cut of {s['ratio']:g} of every "
        f"group, {s['finetune']} fine-tuning steps. One paired eager run, {s['rounds']} rounds.",
        "",
        "| arm | accuracy after training | after the cut | after fine-tuning | M MACs | M params | p50 ms "
        "| latency / baseline [95% CI] | norm after/before: cut, kept |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in results["arms"]:
        ratio, norms = row["latency_ratio"], row["norm_after_over_before"]
        lines.append(f"| {row['arm']} | {row['accuracy_trained']:.2%} | {row['accuracy_after_cut']:.2%} | "
                     f"{row['accuracy_finetuned']:.2%} | {row['macs'] / 1e6:.1f} | {row['params'] / 1e6:.2f} | "
                     f"{row['p50_ms']:.3f} | {_ratio(ratio)} | {norms['cut']:.3f}, {norms['kept']:.3f} |")
    between = results["regularised_over_one_shot"]
    holds = between["ci95"][0] <= 1 <= between["ci95"][1]
    lines += ["", f"Group-norm arm over one-shot arm, same run: {_ratio(between)}; the interval "
              f"{'holds' if holds else 'does not hold'} 1 (equal architecture: equal MACs and parameters, checked)."]
    for row in results["arms"]:
        lines += [f"- warning ({row['arm']}): {warning}" for warning in row["warnings"]]
    return "\n".join(lines) + "\n"


def _ratio(ratio: dict[str, Any]) -> str:
    return f"{ratio['ratio']:.3f} [{ratio['ci95'][0]:.3f}, {ratio['ci95'][1]:.3f}]"


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
