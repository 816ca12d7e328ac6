"""Latency-aware allocation against Torch-Pruning's uniform L1 cut, in one paired measurement.

Usage: python benchmarks/allocate_vs_uniform.py [--out DIR] [--models resnet18,mobilenet_v2] [--task digits]
       [--ratio 0.5] [--budget-factor 1.0] [--round-to 16] [--train-steps 200] [--finetune-steps 20]
       [--final-finetune-steps 200] [--backends onnxruntime,eager] [--latency-model layers,groups]
       [--rounds 10] [--block-time 0.1] [--threads N]

For each model (``torchvision:NAME?num_classes=10``; a name with a colon is taken as a model spec) on the task,
``edgebench prune`` runs with the same fine-tuning (``--finetune-steps`` after the cut, ``--final-finetune-steps``
at the end):

- uniform: ``--strategy static --criterion l1 --ratio R --round-to 16``, Torch-Pruning's uniform
  L1 cut of every group;
- allocate, once per kind of ``--latency-model`` (``layers``, ``groups`` or both):
  ``--strategy allocate --allocate latency-model --latency-model KIND --criterion l1`` at a budget
  on each backend of ``--budget-factor`` times the uniform model's measured latency ratio to the
  baseline there (``--backend-budget``): at 1, the two are compared at equal latency (is allocation's
  accuracy as high?); at 0.9, allocation must be 0.9x as fast: is its accuracy still as high?

Then every final model (``model.pt2``) alternates with the others in one paired worker run per
backend, which gives each allocation over uniform with its 95% interval; each model's ratio to the
baseline is its own run's final paired measurement. The latency model's cache state says whether the allocate run's wall time
includes learning it (``measured``) or read it from the cache (``hit``).

Writes (``DIR`` is ``bench/allocate_vs_uniform`` unless ``--out`` says) ``DIR/allocate_vs_uniform.json`` (every figure and setting) and ``DIR/allocate_vs_uniform.md``
(the table); the prune runs' outputs go to ``DIR/NAME-uniform`` and ``DIR/NAME-allocate-KIND``,
every record to ``DIR/results.db``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from edgebench.errors import UsageError
from edgebench.models import resolve_model
from edgebench.results.record import Settings
from edgebench.session import available_definition, run_session
from edgebench.sweep.paired import Pairing, measure_paired
from method_runs import allocate_budgets, budget_options, budgets_text, report_of  # beside this script

KINDS = ("layers", "groups")  # edgebench.prune.latency_kinds.KINDS (not imported: it imports torch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/allocate_vs_uniform"))
    parser.add_argument("--models", default="resnet18,mobilenet_v2", help="torchvision classifiers, comma-separated")
    parser.add_argument("--task", default="digits")
    parser.add_argument("--ratio", type=float, default=0.5, help="the uniform cut's share of every group")
    parser.add_argument("--budget-factor", type=float, default=1.0,
                        help="allocate's budget over the uniform model's measured latency ratio")
    parser.add_argument("--round-to", type=int, default=16)
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--finetune-steps", type=int, default=20)
    parser.add_argument("--final-finetune-steps", type=int, default=200)
    parser.add_argument("--backends", default="onnxruntime,eager")
    parser.add_argument("--latency-model", default=",".join(KINDS),
                        help="the allocations' latency models, comma-separated: layers, groups")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block-time", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if not 0 < args.ratio < 1 or args.budget_factor <= 0:
        sys.exit("allocate_vs_uniform.py: error: --ratio must be in (0, 1) and --budget-factor above 0")
    args.kinds = [kind.strip() for kind in args.latency_model.split(",")]
    if not args.kinds or any(kind not in KINDS for kind in args.kinds):
        sys.exit(f"allocate_vs_uniform.py: error: --latency-model must list some of {', '.join(KINDS)}, "
                 f"not {args.latency_model!r}")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        results = run(args)
    except UsageError as exc:
        sys.exit(f"allocate_vs_uniform.py: error: {exc}")
    except KeyboardInterrupt:
        sys.exit("allocate_vs_uniform.py: interrupted; the finished prune runs stay in their folders")
    (args.out / "allocate_vs_uniform.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (args.out / "allocate_vs_uniform.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))


def run(args: argparse.Namespace) -> dict:
    backends = [backend.strip() for backend in args.backends.split(",")]
    pairing = Pairing(rounds=args.rounds, block_s=args.block_time)
    store = str(args.out / "results.db")
    results = {"task": args.task, "ratio": args.ratio, "budget_factor": args.budget_factor,
               "round_to": args.round_to, "train_steps": args.train_steps, "finetune_steps": args.finetune_steps,
               "final_finetune_steps": args.final_finetune_steps, "backends": backends, "threads": args.threads,
               "latency_models": args.kinds, "pairing": dataclasses.asdict(pairing),  # each record keeps its seed and orders
               "models": []}
    for name in args.models.split(","):
        spec = name.strip() if ":" in name else f"torchvision:{name.strip()}?num_classes=10"
        folder = "".join(c if c.isalnum() else "-" for c in spec.removeprefix("torchvision:").split("?")[0])
        common = ["--model", spec, "--task", args.task, "--backend", ",".join(backends), "--criterion", "l1",
                  "--round-to", str(args.round_to), "--train-steps", str(args.train_steps),
                  "--finetune-steps", str(args.finetune_steps), "--final-finetune-steps", str(args.final_finetune_steps),
                  "--max-accuracy-drop", "1", "--rounds", str(args.rounds), "--block-time", str(args.block_time),
                  "--store", store, *(["--threads", str(args.threads)] if args.threads else [])]
        row = {"model": spec, "runs": {}}
        uniform = prune(args.out / f"{folder}-uniform", common + ["--strategy", "static", "--ratio",
                                                                         str(args.ratio)])
        budgets = allocate_budgets(uniform["report"], backends, args.budget_factor)
        row["budget"] = budgets_text(budgets)
        row["runs"] = {"uniform": uniform}
        for kind in args.kinds:
            row["runs"][f"allocate-{kind}"] = prune(args.out / f"{folder}-allocate-{kind}", common + [
                "--strategy", "allocate", "--latency-model", kind, *budget_options(budgets)])
        row["allocate_over_uniform"] = paired(args, backends, pairing, store, spec,
                                              {strategy: args.out / f"{folder}-{strategy}" for strategy in row["runs"]})
        results["models"].append(row)
    return results


def prune(out: Path, options: list[str]) -> dict:
    """One ``edgebench prune`` run; its report and wall time."""
    try:
        return report_of("prune", options, out)
    except subprocess.CalledProcessError as exc:
        raise UsageError(f"edgebench prune --out {out} failed (exit {exc.returncode})") from None


def paired(args: argparse.Namespace, backends: list[str], pairing: Pairing, store: str, spec: str,
           outs: dict[str, Path]) -> dict:
    """The final models alternating in one worker per backend: each allocation over uniform (the first)."""
    shape = "x".join(str(d) for d in json.loads((outs["uniform"] / "pruning.json").read_text())["input_shape"][1:])
    models = [resolve_model(str(out / "model.pt2"), [shape]) for out in outs.values()]
    settings = Settings(min_time_s=0, max_time_s=0, min_iterations=1, warmup_s=pairing.warmup_s, target_ci=0,
                        timeout_s=900, threads=args.threads, processes=1)
    ratios = {}
    with run_session(store, tags={"command": "benchmark-allocate-vs-uniform", "model": spec}, log=print) as session, \
            session.stage(available_definition("local"), "cpu", measure_power=False) as ready:
        sweep = ready.sweep(settings, threads=args.threads)
        for backend in backends:
            measured = measure_paired(sweep, models, backend, pairing, roles=list(outs))
            session.keep_all(entry.record for entry in measured.entries)
            for index, strategy in enumerate(list(outs)[1:], start=1):
                ratio = measured.ratio(index, 0)
                if ratio is None:
                    raise UsageError(f"{spec} on {backend}: {next(e.error for e in measured.entries if not e.ok)}")
                ratios.setdefault(strategy, {})[backend] = ratio.as_dict()
    return ratios


def markdown(results: dict) -> str:
    backends = results["backends"]
    lines = [f"Uniform L1 cut of {results['ratio']:g} (round to {results['round_to']}) against allocation "
             f"({', '.join(results['latency_models'])} latency model) at "
             f"{results['budget_factor']:g}x the uniform model's measured latency, on {results['task']}; "
             f"{results['finetune_steps']} + {results['final_finetune_steps']} fine-tuning steps each; paired "
             f"latency on this machine ({results['pairing']['rounds']} rounds).", "",
             "| model | strategy | budget | accuracy | baseline accuracy | MACs M | "
             + " | ".join(f"{backend} / baseline [95% CI]" for backend in backends)
             + " | predicted | latency model | wall s |",
             "| --- | --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in backends) + " | ---: | --- | ---: |"]
    for row in results["models"]:
        for strategy, run in row["runs"].items():
            report = run["report"]
            model = report.get("latency_model") or {}
            predicted = ", ".join(f"{b} {r:.3f}" for b, r in (model.get("predicted") or {}).items()) or "-"
            learned = ", ".join(f"{b} {info['cache']} ({info['seconds']:g} s, held-out error "
                                f"{_share(info['held_out_mean_abs_error'])})"
                                for b, info in (model.get("backends") or {}).items()) or "-"
            lines.append(f"| {row['model']} | {strategy} | {row['budget'] if strategy != 'uniform' else '-'} | "
                         f"{report['final']['accuracy']:.2%} | {report['baseline']['accuracy']:.2%} | "
                         f"{report['final']['macs'] / 1e6:.1f} | "
                         + " | ".join(_ratio(report["final"]["latency_ratio"].get(b)) for b in backends)
                         + f" | {predicted} | {learned} | {run['wall_s']:g} |")
        for strategy, ratios in row["allocate_over_uniform"].items():
            lines.append(f"| {row['model']} | {strategy} / uniform (paired) | | | | | "
                         + " | ".join(_ratio(ratios.get(b)) for b in backends) + " | | | |")
    return "\n".join(lines) + "\n"


def _ratio(ratio: dict | None) -> str:
    if not ratio:
        return "not measured"
    low, high = ratio["ci95"]
    return f"{ratio['ratio']:.3f} [{low:.3f}, {high:.3f}]"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


if __name__ == "__main__":
    main()
