"""Pruning methods at one accuracy floor: uniform L1, latency allocation and the two NSGA-II searches.

Issue #14, item 4: each method through the CLI with the same fine-tuning, then their models at one
accuracy floor measured together in one paired run per backend.

Usage: python benchmarks/method_comparison.py [--out DIR] [--model SPEC] [--task TASK]
       [--backends onnxruntime,eager] [--methods uniform,allocate,search-macs,search-latency]
       [--floor uniform|baseline] [--max-accuracy-drop 0.01] [--ratio 0.5] [--round-to 16]
       [--budget-factor 0.9] [--latency-model layers] [--population 10] [--generations 8] [--min-keep 0.25]
       [--seed 0] [--train-steps 200] [--finetune-steps 20] [--final-finetune-steps 200] [--rounds 10]
       [--block-time 0.1] [--threads N] [--store FILE] [--quick]

Each method is one command on ``--model``, ``--task`` and all ``--backends`` at once, with ``--criterion
l1`` and ``--round-to`` (16: aligned widths), its outputs in ``DIR/METHOD``:

- ``uniform`` (always run, first: the reference, and the floor and allocate's budget come from it):
  ``edgebench prune --strategy static --ratio R``, Torch-Pruning's uniform L1 cut of every group;
- ``allocate``: ``edgebench prune --strategy allocate --latency-model KIND --backend-budget
  B=R,...`` with each backend's R ``--budget-factor`` times the uniform model's measured latency
  ratio to the baseline on that backend: at 0.9 (the default) it aims at the goal below on every
  backend; at 1 the two compare at equal latency, and the question is whether its accuracy is as
  high;
- ``search-macs`` and ``search-latency``: ``edgebench search --objectives accuracy,macs`` (the
  operation-count search) and ``accuracy,latency`` (the latency search; one latency objective
  per backend), ``--population`` by ``--generations``.

**The same fine-tuning budget**: every compared model (uniform's and allocate's final model, each
search's picked front member) is the same cached baseline (trained ``--train-steps`` from random
weights), cut once, fine-tuned ``--finetune-steps``, then ``--final-finetune-steps`` more. Where the
methods necessarily differ: a search also cuts, fine-tunes (``--finetune-steps``) and measures every
individual it tries, population x generations of them, most never compared; allocate measures a
latency model first (cached per model, backends and threads); neither trains the compared models
more. So the wall times differ, and the first method to need the baseline (uniform) trains it
unless it is cached: the wall column says so.

**The accuracy floor** (the task's headline metric: accuracy, mIoU), one for all methods, fixed
once uniform has finished (``--floor``): ``uniform`` (the default) is the uniform model's final
metric, so a method counts as faster only at no lower accuracy than the reference; ``baseline`` is
the baseline's metric minus ``--max-accuracy-drop``, the pruner's own floor (uniform may then be
under it). Of each search's fine-tuned final front, the member at or above the floor whose worst
backend is fastest relative to the uniform model (its ratio to the baseline over uniform's, each
from its own run) is picked (``method_runs.fastest_at``); allocate's one model is compared as it
is, marked when under the floor.

Then the unpruned model (the spec's random weights: latency does not depend on them) and every
method's model alternate in one paired worker run per backend (2 x ``--rounds`` rounds of
``--block-time``, as the final measurements of prune and search), which
gives each one's latency over the baseline and over the uniform model with 95% intervals, free of
the drift between the runs. The goal (issue #14): at or above the floor, at most 0.9x the uniform
model's latency on at least one backend and never above 1.0x; judged on the point estimates, and
the table says whether the intervals show it met, missed, or span the goal.

``DIR`` (``bench/method_comparison`` unless ``--out`` says) gets ``method_comparison.md`` and
``method_comparison.json``, rewritten after each method and each backend's measurement, so Ctrl-C
(exit 130) or a failed method keeps what was done; records go to ``--store`` (default
``DIR/results.db``). Run again with the same settings, it reuses the methods its JSON lists as
finished (their ``DIR/METHOD/report.json`` still there) and measures again; a JSON of other
settings is refused (remove it or give another ``--out``). ``--quick`` sets tiny steps, population
and rounds for options not given: a smoke run whose figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

from edgebench.errors import UsageError
from edgebench.models import resolve_model
from edgebench.results.record import Settings
from edgebench.session import available_definition, run_session
from edgebench.sweep.paired import Pairing, measure_paired
from method_runs import allocate_budgets, budget_options, budgets_text, fastest_at, report_of  # benchmarks/method_runs.py, beside this script
from table_files import (environment, environment_line, load_average, markdown_table, measure_and_write,
                         ratio_text, write_table)

NAME = "method_comparison"
REFERENCE = "uniform"
SEARCHES = {"search-macs": "accuracy,macs", "search-latency": "accuracy,latency"}
METHODS = (REFERENCE, "allocate", *SEARCHES)
FLOOR_RULES = ("uniform", "baseline")
KINDS = ("layers", "groups")  # edgebench.prune.latency_kinds.KINDS (not imported: it imports torch)
MIN_POPULATION = 4  # edgebench search's own minimum (edgebench.cli.search.MIN_POPULATION)
PAIRED_ROUNDS_FACTOR = 2  # as prune's and search's final measurements (edgebench.prune.loop.FINAL_ROUNDS_FACTOR)
PAIRED_TIMEOUT_S = 900
GOAL_RATIO, CEILING_RATIO = 0.9, 1.0
RESUME_FREE = ("out", "methods", "store")  # settings a run again may change and still reuse finished methods
# Full and --quick values of the options left unset; --quick only checks that everything runs.
FULL = {"train_steps": 200, "finetune_steps": 20, "final_finetune_steps": 200, "population": 10, "generations": 8,
        "rounds": 10, "block_time": 0.1}
QUICK = {"train_steps": 20, "finetune_steps": 2, "final_finetune_steps": 4, "population": MIN_POPULATION,
         "generations": 2, "rounds": 2, "block_time": 0.02}


def main(argv: Optional[list[str]] = None) -> None:
    args = arguments(argv)
    results = started(args, previous_results(args.out))
    measure_and_write("method_comparison.py", results, lambda: run(args, results),
                      lambda done: write(args.out, done), markdown)


def arguments(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/method_comparison"))
    parser.add_argument("--model", default="torchvision:resnet18?num_classes=10", help="a model spec edgebench prune "
                        "takes (its classes must fit the task)")
    parser.add_argument("--task", default="digits", help="a task spec (digits, digit-segmentation?size=96, ...)")
    parser.add_argument("--backends", default="onnxruntime,eager", help="comma-separated; every method runs on all")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated, of {', '.join(METHODS)}; {REFERENCE} is always among them")
    parser.add_argument("--floor", default=FLOOR_RULES[0], choices=FLOOR_RULES,
                        help="uniform: the uniform model's final metric; baseline: the baseline's minus "
                             "--max-accuracy-drop")
    parser.add_argument("--max-accuracy-drop", type=float, default=0.01)
    parser.add_argument("--ratio", type=float, default=0.5, help="the uniform cut's share of every group")
    parser.add_argument("--round-to", type=int, default=16, help="every method's widths are multiples of this")
    parser.add_argument("--budget-factor", type=float, default=0.9,
                        help="allocate's budget over the uniform model's measured latency ratio")
    parser.add_argument("--latency-model", default=KINDS[0], choices=KINDS, help="allocate's latency model")
    parser.add_argument("--population", type=int, help=f"the searches' (default {FULL['population']})")
    parser.add_argument("--generations", type=int, help=f"the searches' (default {FULL['generations']})")
    parser.add_argument("--min-keep", type=float, default=0.25, help="the searches' smallest share a group keeps")
    parser.add_argument("--seed", type=int, default=0, help="the searches' NSGA-II seed")
    parser.add_argument("--train-steps", type=int, help=f"for the untrained baseline (default {FULL['train_steps']})")
    parser.add_argument("--finetune-steps", type=int,
                        help=f"after each cut, per search individual (default {FULL['finetune_steps']})")
    parser.add_argument("--final-finetune-steps", type=int,
                        help=f"more for each final model (default {FULL['final_finetune_steps']})")
    parser.add_argument("--rounds", type=int, help=f"paired rounds in each run's measurements (default "
                        f"{FULL['rounds']}; the comparison takes {PAIRED_ROUNDS_FACTOR}x)")
    parser.add_argument("--block-time", type=float, help=f"seconds per paired block (default {FULL['block_time']})")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--store", default=None, help="results store (default DIR/results.db)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny settings, figures mean nothing")
    args = parser.parse_args(argv)
    for name in FULL:
        if getattr(args, name) is None:
            setattr(args, name, (QUICK if args.quick else FULL)[name])
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    unknown = [name for name in methods if name not in METHODS]
    if unknown:
        parser.error(f"unknown method {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if REFERENCE not in methods:
        parser.error(f"--methods must include {REFERENCE}: the floor, allocate's budget and every ratio to "
                     "uniform come from it")
    args.methods = [name for name in METHODS if name in methods]  # uniform first
    args.backends = [backend.strip() for backend in args.backends.split(",") if backend.strip()]
    if not args.backends:
        parser.error("--backends names no backend")
    if not 0 < args.ratio < 1 or args.budget_factor <= 0 or not 0 < args.min_keep <= 1:
        parser.error("--ratio must be in (0, 1), --min-keep in (0, 1], --budget-factor above 0")
    if args.population < MIN_POPULATION or args.generations < 1 or args.rounds < 2:
        parser.error(f"--population must be at least {MIN_POPULATION}, --generations 1, --rounds 2")
    if min(args.train_steps, args.finetune_steps, args.final_finetune_steps) < 0 or args.block_time <= 0:
        parser.error("the step counts cannot be negative, and --block-time must be above 0")
    return args


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments as the JSON keeps them (paths as strings)."""
    return json.loads(json.dumps({key: str(value) if isinstance(value, Path) else value
                                  for key, value in vars(args).items()}))


def previous_results(out: Path) -> Optional[dict[str, Any]]:
    path = out / f"{NAME}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def started(args: argparse.Namespace, previous: Optional[dict[str, Any]]) -> dict[str, Any]:
    """The results of a run starting now, with the finished methods of ``previous`` (an earlier
    run's JSON in ``--out``) when it had the same settings; SystemExit when it had others."""
    settings = settings_of(args)
    reused = {}
    if previous is not None:
        differing = sorted(key for key in set(settings) | set(previous["settings"]) if key not in RESUME_FREE
                           and settings.get(key) != previous["settings"].get(key))
        if differing:
            sys.exit(f"method_comparison.py: error: {args.out / f'{NAME}.json'} was written with other settings "
                     f"({', '.join(differing)}); remove it or give another --out")
        reused = {name: run for name, run in previous["methods"].items()
                  if name in args.methods and "report" in run and (args.out / name / "report.json").is_file()}
    return {"script": shlex.join(["python", "benchmarks/method_comparison.py", *sys.argv[1:]]),
            "environment": environment(), "settings": settings,
            "load_average": {"start": load_average(), "end": None}, "interrupted": False, "error": None,
            "metric": None, "input_shape": None, "floor": None, "methods": reused, "models": {}, "paired": {},
            "warnings": []}


def run(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Every method in turn, then the paired measurement; ``results`` and the table after each step."""
    store = args.store or str(args.out / "results.db")
    for name in args.methods:
        folder = args.out / name
        if name in results["methods"]:
            print(f"{name}: reusing {folder} (finished by an earlier run with these settings)", file=sys.stderr)
        else:
            command, options = method_command(args, name, store, results)
            try:
                results["methods"][name] = report_of(command, options, folder)
            except subprocess.CalledProcessError as exc:
                results["methods"][name] = {"error": f"edgebench {command} failed (exit {exc.returncode})"}
                if name == REFERENCE:
                    raise UsageError(f"{results['methods'][name]['error']}: nothing to compare against") from None
        if name == REFERENCE:
            reference(args, results, folder)
        mismatch = other_baseline(name, results["methods"][name], results["models"]["baseline"]["metric"])
        if mismatch:
            results["warnings"].append(mismatch)
        results["models"][name] = method_model(name, results["methods"][name], results["floor"]["value"], folder,
                                               uniform_ratios(results))
        write(args.out, results)
    measure(args, results, store)


def method_command(args: argparse.Namespace, name: str, store: str, results: dict[str, Any]) -> tuple[str, list[str]]:
    """The ``edgebench`` command and its options (``--out`` aside) that run method ``name``: the
    same baseline, fine-tuning, criterion, widths and measurement for every method."""
    common = ["--model", args.model, "--task", args.task, "--backend", ",".join(args.backends), "--criterion", "l1",
              "--round-to", str(args.round_to), "--train-steps", str(args.train_steps),
              "--finetune-steps", str(args.finetune_steps), "--final-finetune-steps", str(args.final_finetune_steps),
              "--max-accuracy-drop", str(args.max_accuracy_drop), "--rounds", str(args.rounds),
              "--block-time", str(args.block_time), "--store", store,
              *(["--threads", str(args.threads)] if args.threads else [])]
    if name == REFERENCE:
        return "prune", common + ["--strategy", "static", "--ratio", str(args.ratio)]
    if name == "allocate":
        budgets = allocate_budgets(results["methods"][REFERENCE]["report"], args.backends, args.budget_factor)
        return "prune", common + ["--strategy", "allocate", "--latency-model", args.latency_model,
                                  *budget_options(budgets)]
    return "search", common + ["--objectives", SEARCHES[name], "--population", str(args.population),
                               "--generations", str(args.generations), "--min-keep", str(args.min_keep),
                               "--seed", str(args.seed)]


def reference(args: argparse.Namespace, results: dict[str, Any], folder: Path) -> None:
    """What the uniform run fixes for the others: the metric, the input shape, the floor, and the
    unpruned model's row."""
    report = results["methods"][REFERENCE]["report"]
    shape = json.loads((folder / "pruning.json").read_text(encoding="utf-8"))["input_shape"]
    results["metric"], results["input_shape"] = report["metric"], "x".join(str(d) for d in shape[1:])
    results["floor"] = accuracy_floor(args.floor, report, args.max_accuracy_drop)
    base = report["baseline"]
    # The spec's random weights: latency does not depend on them, and the trained ones are no file of their own.
    results["models"]["baseline"] = {"label": "unpruned", "metric": base["accuracy"], "macs": base["macs"],
                                     "params": base["params"], "file": args.model, "at_floor": None}


def uniform_ratios(results: dict[str, Any]) -> dict[str, float]:
    """The uniform model's latency ratio to the baseline on each backend it was measured on, in its own run."""
    ratios = results["methods"][REFERENCE]["report"]["final"]["latency_ratio"]
    return {backend: ratio["ratio"] for backend, ratio in ratios.items() if ratio}


def other_baseline(name: str, run: dict[str, Any], metric: float) -> Optional[str]:
    """A warning when a method's baseline scored other than uniform's: the cached baseline the
    comparison rests on was not shared (another cache, or trained again)."""
    found = run.get("report", {}).get("baseline", {}).get("accuracy")
    if found is None or found == metric:
        return None
    return f"{name}'s baseline scored {found:.2%}, uniform's {metric:.2%}: not the same baseline"


def accuracy_floor(rule: str, uniform: dict[str, Any], max_drop: float) -> dict[str, Any]:
    """The one floor every method is held to, from the uniform run's report."""
    if rule == "uniform":
        return {"rule": rule, "value": uniform["final"]["accuracy"], "described": "the uniform model's final metric"}
    return {"rule": rule, "value": uniform["baseline"]["accuracy"] - max_drop,
            "described": f"the baseline's metric minus {max_drop:g}"}


def method_model(name: str, run: dict[str, Any], floor: float, folder: Path,
                 uniform_ratios: dict[str, float]) -> dict[str, Any]:
    """The model a method puts into the comparison: its metric, MACs, parameters and file (None when
    it has none: it failed, or no member of a search's final front reached the floor). A search's
    is its front member at the floor whose worst backend is fastest relative to ``uniform_ratios``
    (the uniform model's ratio to the baseline per backend, from its own run)."""
    if "report" not in run:
        return {"label": run["error"], "file": None}
    report = run["report"]
    if name in SEARCHES:
        front = report["final_front"]
        pick = fastest_at(report, floor, uniform_ratios)
        if pick is None:
            best = max((tuned["accuracy"] for tuned in front), default=None)
            return {"label": f"none of the {len(front)} fine-tuned front members reaches the floor"
                             + ("" if best is None else f" (best {best:.2%})"), "file": None}
        params = next(i["params"] for i in report["individuals"] if i["individual"] == pick["individual"])
        return {"label": f"individual {pick['individual']}, of a final front of {len(front)}",
                "metric": pick["accuracy"], "macs": pick["macs"], "params": params,
                "file": str(folder / pick["model_file"]), "at_floor": True}
    final = report["final"]
    label = (f"{report['ratio']:g} of every group cut" if name == REFERENCE else
             f"budget {budgets_text(report['backend_budgets'])}, {report['latency_model']['kind']} latency model")
    model_file = folder / "model.pt2"
    if not model_file.is_file():
        return {"label": f"{label}; no model.pt2 (its report's warnings say why)", "file": None}
    return {"label": label, "metric": final["accuracy"], "macs": final["macs"], "params": final["params"],
            "file": str(model_file), "at_floor": final["accuracy"] >= floor}


def measure(args: argparse.Namespace, results: dict[str, Any], store: str) -> None:
    """The unpruned model and every method's model alternating in one worker run per backend."""
    roles = [role for role, model in results["models"].items() if model["file"]]
    if REFERENCE not in roles:
        raise UsageError("the uniform cut left no model file to measure: nothing to compare against")
    models = [resolve_model(results["models"][role]["file"], [results["input_shape"]]) for role in roles]
    pairing = Pairing(rounds=PAIRED_ROUNDS_FACTOR * args.rounds, block_s=args.block_time)
    settings = Settings(min_time_s=0, max_time_s=0, min_iterations=1, warmup_s=pairing.warmup_s, target_ci=0,
                        timeout_s=PAIRED_TIMEOUT_S, threads=args.threads, processes=1)
    with run_session(store, tags={"command": "benchmark-method-comparison", "model": args.model},
                     log=lambda line: print(line, file=sys.stderr)) as session, \
            session.stage(available_definition("local"), "cpu", measure_power=False) as ready:
        sweep = ready.sweep(settings, threads=args.threads)
        for backend in args.backends:
            measured = measure_paired(sweep, models, backend, pairing, roles=roles)
            session.keep_all(entry.record for entry in measured.entries)
            results["paired"][backend] = paired_figures(measured, roles)
            write(args.out, results)


def paired_figures(measured, roles: list[str]) -> dict[str, Any]:
    """One backend's paired run: each model's p50, and its ratios to the baseline and to uniform."""
    def ratio(index: int, reference_index: int) -> Optional[dict]:
        found = measured.ratio(index, reference_index)
        return found.as_dict() if found else None

    uniform = roles.index(REFERENCE)
    return {"p50_ms": {role: entry.p50_ms if entry.ok else None for role, entry in zip(roles, measured.entries)},
            "errors": {role: entry.error for role, entry in zip(roles, measured.entries) if not entry.ok},
            "over_baseline": {role: ratio(index, 0) for index, role in enumerate(roles) if index},
            "over_uniform": {role: ratio(index, uniform) for index, role in enumerate(roles)
                             if role not in ("baseline", REFERENCE)}}


def unmeasured_verdict(over_uniform: dict[str, Optional[dict]]) -> Optional[str]:
    """What a verdict says when some backend has no ratio to uniform; None when every one has."""
    missing = [backend for backend, ratio in over_uniform.items() if not ratio]
    if over_uniform and not missing:
        return None
    return "not measured" + (f" on {', '.join(missing)}" if missing and len(missing) < len(over_uniform) else "")


def goal_verdict(over_uniform: dict[str, Optional[dict]], at_floor: Optional[bool]) -> str:
    """Issue #14's goal for one method: at or above the floor, at most 0.9x uniform's latency on
    at least one backend and never above 1.0x; judged on the point estimates, with what the
    intervals show."""
    if at_floor is False:
        return "NOT met: under the floor"
    unmeasured = unmeasured_verdict(over_uniform)
    if unmeasured:
        return unmeasured
    points = [ratio["ratio"] for ratio in over_uniform.values()]
    lows = [ratio["ci95"][0] for ratio in over_uniform.values()]
    highs = [ratio["ci95"][1] for ratio in over_uniform.values()]
    met = min(points) <= GOAL_RATIO and max(points) <= CEILING_RATIO
    shown_met = min(highs) <= GOAL_RATIO and max(highs) <= CEILING_RATIO
    shown_missed = min(lows) > GOAL_RATIO or max(lows) > CEILING_RATIO
    shown = "show it met" if shown_met else "show it missed" if shown_missed else "span the goal"
    return f"{'met' if met else 'NOT met'} (point estimates); the intervals {shown}"


def equal_latency_verdict(metric: float, uniform_metric: float, over_uniform: dict[str, Optional[dict]]) -> str:
    """Issue #14's other goal, for allocate at a budget of uniform's latency (``--budget-factor``
    1 or more): at equal measured latency, a metric no lower than uniform's. Equal: no backend's
    interval wholly above 1."""
    unmeasured = unmeasured_verdict(over_uniform)
    if unmeasured:
        return unmeasured
    compared = f"{metric:.2%} against uniform's {uniform_metric:.2%}"
    if metric < uniform_metric:
        return f"NOT met at equal latency: {compared}"
    slower = [backend for backend, ratio in over_uniform.items() if ratio["ci95"][0] > CEILING_RATIO]
    if slower:
        return f"metric met ({compared}), but slower than uniform on {', '.join(slower)} by the interval"
    return f"met at equal latency: {compared}, no backend slower by its interval"


def write(out: Path, results: dict[str, Any]) -> Path:
    return write_table(out, NAME, markdown(results), results)


def markdown(results: dict[str, Any]) -> str:
    s, load, backends = results["settings"], results["load_average"], results["settings"]["backends"]
    state = ("; **interrupted**: the table covers what was done" if results["interrupted"] else "") + (
        f"; **stopped**: {results['error']}" if results.get("error") else "")
    wall = f" Wall {results['wall_s'] / 60:.1f} min{state}." if "wall_s" in results else f" Running{state}."
    metric = results["metric"] or "metric"
    lines = [f"# Pruning methods at one {metric} floor: {s['model']} on {s['task']}", "",
             environment_line(results["environment"]),
             f"Backends {', '.join(backends)}, threads {s['threads'] or 'default'}. Every compared model: the "
             f"baseline (trained {s['train_steps']} steps) cut once by L1 to widths of multiples of {s['round_to']}, "
             f"{s['finetune_steps']} fine-tuning steps, then {s['final_finetune_steps']} more. Uniform: {s['ratio']:g} "
             f"of every group; allocate: {s['latency_model']} latency model at {s['budget_factor']:g}x the uniform "
             f"model's measured latency; searches: population {s['population']}, {s['generations']} generations, "
             f"min keep {s['min_keep']:g}, seed {s['seed']}. Compared in one paired run per backend, "
             f"{PAIRED_ROUNDS_FACTOR * s['rounds']} rounds of {s['block_time']:g} s blocks. Load average "
             f"{load['start']} at the start, {load['end'] if load['end'] is not None else '-'} at the end." + wall,
             f"Command: `{results['script']}`.", ""]
    if s["quick"]:
        lines += ["**--quick smoke run: tiny settings, the figures mean nothing.**", ""]
    floor = results["floor"]
    if floor is None:
        return "\n".join(lines + ["The uniform cut has not finished: nothing to compare yet."]) + "\n"
    lines += [f"The {metric} floor: **{floor['value']:.2%}** ({floor['described']}). Each search's model is its "
              "fastest fine-tuned front member at or above it.", ""]
    header = ["method", "model compared", f"{metric}", "MACs M", "params M",
              *(f"{backend} / baseline [95% CI]" for backend in backends),
              *(f"{backend} / uniform [95% CI]" for backend in backends), "goal", "wall s"]
    lines.append(markdown_table(header, [table_row(results, role) for role in results["models"]]))
    lines += [f"Goal (issue #14): at or above the floor, at most {GOAL_RATIO:.1f}x the uniform model's latency on at "
              f"least one backend and never above {CEILING_RATIO:.1f}x (paired ratios to uniform, 95% intervals)."
              + (" Allocate, at a budget of uniform's own latency, is held to the other goal: at equal measured "
                 "latency, a metric no lower than uniform's." if s["budget_factor"] >= CEILING_RATIO else "")]
    errors = [f"{role} on {backend}: {error}" for backend, paired in results["paired"].items()
              for role, error in paired["errors"].items()]
    if errors:
        lines += ["", "Not measured: " + "; ".join(errors) + "."]
    if results["warnings"]:
        lines += ["", "Warnings: " + "; ".join(results["warnings"]) + "."]
    return "\n".join(lines) + "\n"


def table_row(results: dict[str, Any], role: str) -> list[str]:
    model, backends, paired = results["models"][role], results["settings"]["backends"], results["paired"]
    measured = "metric" in model

    def to_baseline(backend: str) -> str:
        if backend not in paired:
            return "not measured"
        if role == "baseline":  # its p50, for scale
            ms = paired[backend]["p50_ms"].get(role)
            return "-" if ms is None else f"p50 {ms:.3f} ms"
        return ratio_text(paired[backend]["over_baseline"].get(role))

    if role == "baseline":
        to_uniform, goal = ["-"] * len(backends), "-"
    elif role == REFERENCE:
        to_uniform, goal = ["1"] * len(backends), "the reference"
    else:
        over_uniform = {backend: paired.get(backend, {}).get("over_uniform", {}).get(role) for backend in backends}
        to_uniform = [ratio_text(over_uniform[backend]) for backend in backends]
        if not measured:
            goal = "NOT met: no model"
        elif role == "allocate" and results["settings"]["budget_factor"] >= CEILING_RATIO:
            goal = equal_latency_verdict(model["metric"], results["models"][REFERENCE]["metric"], over_uniform)
        else:
            goal = goal_verdict(over_uniform, model["at_floor"])
    shown = (f"{model['metric']:.2%}" + (" (under the floor)" if model["at_floor"] is False else "")
             if measured else "-")
    return [role, model["label"], shown, f"{model['macs'] / 1e6:.1f}" if measured else "-",
            f"{model['params'] / 1e6:.2f}" if measured else "-", *map(to_baseline, backends), *to_uniform, goal,
            wall_text(results["methods"].get(role, {}))]


def wall_text(run: dict[str, Any]) -> str:
    """A method's wall time, with what in it was not the method's own work: training the shared
    baseline (the first run to need it does), and measuring allocate's latency model (cached)."""
    if "wall_s" not in run:
        return "-"
    report, notes = run["report"], []
    training = report["baseline"].get("training") or {}
    if training.get("seconds") is not None:
        notes.append(f"baseline trained here, {training['seconds']:.0f} s")
    learned = (report.get("latency_model") or {}).get("backends") or {}
    if learned:
        notes.append("latency model " + ", ".join(f"{b} {info['cache']}" for b, info in learned.items()))
    return f"{run['wall_s']:.0f}" + (f" ({'; '.join(notes)})" if notes else "")


if __name__ == "__main__":
    main()
