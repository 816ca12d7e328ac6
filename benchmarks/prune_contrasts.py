"""What `edgebench prune --objective latency` is measured against, on the digits.

Usage: python benchmarks/prune_contrasts.py PRUNED_DIR [--ratios 0.2,0.3,0.4,0.5,0.6] [--rounds 20] [--store FILE]
       [--out bench/prune_contrasts]

PRUNED_DIR is the output of `edgebench prune --model torchvision:resnet18?num_classes=10 --task digits`.
Built here, from the same trained baseline (the pruner's cache):

- Torch-Pruning's uniform L1 pruning with ``round_to=16`` at several pruning ratios, each one-shot
  then fine-tuned for as many steps as the pruned model got in total (steps per kept candidate x
  kept steps + the final fine-tune): careful users' aligned FLOPs pruning.
- The same channels as the pruned model, masked with ``torch.nn.utils.prune`` on the full-size
  baseline instead of removed (``edgebench.prune.masking``, which checks the masks are on): the
  contrast that shows why masks do not speed anything up.

Then one paired eager measurement (the pruner's own: every model alternating in blocks in one
worker) of the baseline, the pruned model, the masked model and every uniform variant, with
each model's held-out accuracy. The table (accuracy, MACs, parameters, p50 and latency over the
baseline with its 95% interval, per model) is printed and written to ``OUT/prune_contrasts.md``, with
every figure and setting in ``OUT/prune_contrasts.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import tempfile
from pathlib import Path

import torch
import torch_pruning as tp

from edgebench.models import resolve_model
from edgebench.prune.baseline import prunable_model, trained_baseline
from edgebench.prune.masking import masked_channel_count, masked_like
from edgebench.prune.outputs import load_pruned
from edgebench.sweep.paired import Pairing, measure_paired
from edgebench.prune.surgery import build_graph, macs_and_params
from edgebench.prune.tasks import load_task
from edgebench.results.record import Settings
from edgebench.session import available_definition, run_session

from table_files import environment, environment_line, markdown_table, ratio_text, write_table  # beside this script


def uniform_l1(model, example, ratio, round_to):
    pruned = copy.deepcopy(model)
    pruner = tp.pruner.MagnitudePruner(pruned, example, importance=tp.importance.GroupMagnitudeImportance(p=1),
                                       pruning_ratio=ratio, round_to=round_to,
                                       ignored_layers=build_graph(pruned, example).kept_modules())
    pruner.step()
    return pruned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pruned", type=Path)
    parser.add_argument("--ratios", default="0.2,0.3,0.4,0.5,0.6")
    parser.add_argument("--round-to", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--store", default=":memory:", help="results store for the paired records (default: none kept)")
    parser.add_argument("--out", type=Path, default=Path("bench/prune_contrasts"),
                        help="directory for prune_contrasts.md and prune_contrasts.json")
    args = parser.parse_args()
    report = json.loads((args.pruned / "report.json").read_text())
    history = json.loads((args.pruned / "pruning.json").read_text())["history"]
    task = load_task(report["task"])
    example = task.example_input
    settings = Settings(min_time_s=0, max_time_s=0, min_iterations=1, warmup_s=0.3, target_ci=0, timeout_s=900)
    finetune_steps = report["finetune_steps"] * report["kept_steps"] + report["final_finetune_steps"]
    with tempfile.TemporaryDirectory() as scratch:
        resolved_baseline = prunable_model(report["model"], task).resolved
        baseline, _ = trained_baseline(resolved_baseline, task, report["baseline"]["training"]["steps"], print)
        masked = masked_like(baseline, example, history)  # refuses a history no mask can hold
        masked_channels = masked_channel_count(masked)
        print(f"masked contrast: {masked_channels} output channels zeroed by masks")
        models = {"baseline": baseline, f"edgebench prune ({report['objective']})": load_pruned(args.pruned),
                  "masked, same channels": masked}
        for ratio in (float(r) for r in args.ratios.split(",")):
            variant = uniform_l1(baseline, example, ratio, args.round_to)
            task.finetune(variant, finetune_steps)
            models[f"uniform L1 {ratio:g}, round_to={args.round_to}"] = variant
        resolved, rows = [], []
        for index, (label, module) in enumerate(models.items()):
            path = Path(scratch) / f"m{index}.pt"
            torch.save(module, path)
            resolved.append(resolve_model(str(path), ["x".join(map(str, example.shape[1:]))]))
            macs, params = macs_and_params(module, example)
            rows.append((label, task.evaluate(module), macs, params))
        with run_session(args.store, tags={"command": "prune_contrasts"}, log=print) as session, \
                session.stage(available_definition("local"), "cpu", measure_power=False) as ready:
            sweep = ready.sweep(settings, allow_hooks=True)  # the masked model carries its prune hooks
            paired = measure_paired(sweep, resolved, "eager", Pairing(rounds=args.rounds))
            session.keep_all(entry.record for entry in paired.entries)
            run_id = session.run_id
    measured = []
    for index, (label, accuracy, macs, params) in enumerate(rows):
        ratio = paired.ratio(index, 0)
        measured.append({"model": label, "accuracy": accuracy, "macs": macs, "params": params,
                         "p50_ms": paired.entries[index].p50_ms, "latency_ratio": ratio.as_dict() if ratio else None})
    results = {"script": shlex.join(["python", "benchmarks/prune_contrasts.py", *sys.argv[1:]]),
               "pruned": str(args.pruned), "model": report["model"], "task": report["task"], "rounds": args.rounds,
               "round_to": args.round_to, "finetune_steps": finetune_steps, "masked_channels": masked_channels,
               "environment": environment(), "run_id": run_id, "models": measured}
    table = markdown(results)
    write_table(args.out, "prune_contrasts", table, results)
    print(table)


def markdown(results: dict) -> str:
    header = [f"# What `edgebench prune` is measured against: {results['model']} on {results['task']}", "",
              f"`{results['script']}`", "", environment_line(results["environment"]), "",
              f"One paired eager run, {results['rounds']} rounds, against the baseline; the pruned model from "
              f"`{results['pruned']}`; uniform L1 variants (round_to={results['round_to']}) fine-tuned "
              f"{results['finetune_steps']} steps, as many as the pruned model got in total; the masked model: the "
              f"pruned model's channels zeroed by masks on the baseline ({results['masked_channels']} output "
              "channels), not fine-tuned: a latency contrast only.", ""]
    table = markdown_table(
        ["model", "accuracy", "MACs", "params", "p50 ms", "eager latency / baseline [95% CI]"],
        [[row["model"], f"{row['accuracy']:.2%}", f"{row['macs'] / 1e6:.1f} M", f"{row['params'] / 1e6:.2f} M",
          "-" if row["p50_ms"] is None else f"{row['p50_ms']:.3f}", ratio_text(row["latency_ratio"])]
         for row in results["models"]])
    return "\n".join(header) + "\n" + table


if __name__ == "__main__":
    main()
