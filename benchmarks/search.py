"""The hardware-aware search against the operation-count one: `edgebench search` on
accuracy,latency and on accuracy,macs, then their best models at one accuracy floor measured together.

Usage: python benchmarks/search.py --out DIR [--model torchvision:mobilenet_v2?num_classes=10] [--task digits]
       [--backend onnxruntime] [--population 10] [--generations 8] [--finetune-steps 10]
       [--final-finetune-steps 100] [--train-steps 200] [--round-to 8] [--min-keep 0.25]
       [--max-accuracy-drop 0.01] [--rounds 10] [--block-time 0.1] [--threads N] [--seed 0] [--store FILE]

The defaults aim at the goal of a search of 8 generations in under 30 minutes on 2 CPU cores:
fine-tuning takes most of a generation's time, so each individual gets 10 steps and each final
front member 100 more. Runs ``edgebench search`` twice with the same settings, into
``DIR/latency`` and ``DIR/macs`` (each search's wall time is timed here). Of each search's fine-tuned final front, the model with the
lowest measured latency at or above the accuracy floor (the higher of the two runs' floors, so both
are held to one accuracy) is picked; the two picks and the unpruned model then alternate in one
paired run on the backend (the pruner's own measurement), which gives the operation-count pick's
latency over the latency pick's with a 95% interval, free of the drift between the two searches.

Writes ``DIR/search.md`` (per objective the wall time, each generation's hypervolume and the final
front; then the comparison at the floor), ``DIR/search.json`` and ``DIR/fronts_compared.png`` (both
final fronts on measured latency); the records go to ``--store`` (default ``DIR/results.db``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

from edgebench.models import resolve_model
from edgebench.prune.tasks import load_task
from edgebench.results.record import Settings
from edgebench.search.front_plots import COMPARISON_FIGURE, compare_fronts
from edgebench.session import available_definition, run_session
from edgebench.sweep.paired import Pairing, measure_paired
from method_runs import fastest_at, report_of  # benchmarks/method_runs.py, beside this script

OBJECTIVES = {"latency": "accuracy,latency", "macs": "accuracy,macs"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="torchvision:mobilenet_v2?num_classes=10")
    parser.add_argument("--task", default="digits")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--population", type=int, default=10)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--finetune-steps", type=int, default=10)
    parser.add_argument("--final-finetune-steps", type=int, default=100)
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--round-to", type=int, default=8)
    parser.add_argument("--min-keep", type=float, default=0.25)
    parser.add_argument("--max-accuracy-drop", type=float, default=0.01)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block-time", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", default=None, help="results store (default DIR/results.db)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.store or str(args.out / "results.db")
    searches = {}
    for name, objectives in OBJECTIVES.items():
        searches[name] = _search(args, objectives, args.out / name, store)
    baseline_floor = max(search["report"]["baseline"]["floor"] for search in searches.values())
    floor = common_floor(baseline_floor, [search["report"] for search in searches.values()])
    picks = {name: _fastest_at(search["report"], floor) for name, search in searches.items()}
    comparison = _measure_picks(args, picks, store) if all(picks.values()) else None
    compare_fronts(args.out / "latency", args.out / "macs", args.out / COMPARISON_FIGURE)
    summary = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "floor": floor,
               "baseline_floor": baseline_floor,
               "searches": {name: {"wall_s": s["wall_s"], "hypervolume": [g["hypervolume"] for g in
                                                                          s["report"]["generations"]],
                                   "final_front": s["report"]["final_front"]} for name, s in searches.items()},
               "picks": picks, "comparison": comparison}
    (args.out / "search.json").write_text(json.dumps(summary, indent=2) + "\n")
    markdown = _markdown(args, searches, floor, baseline_floor, picks, comparison)
    (args.out / "search.md").write_text(markdown)
    print(markdown)


def _search(args: argparse.Namespace, objectives: str, out: Path, store: str) -> dict[str, Any]:
    """One ``edgebench search``: its report and wall time."""
    options = ["--model", args.model, "--task", args.task, "--backend", args.backend, "--objectives", objectives,
               "--population", str(args.population), "--generations", str(args.generations),
               "--finetune-steps", str(args.finetune_steps), "--final-finetune-steps", str(args.final_finetune_steps),
               "--train-steps", str(args.train_steps), "--round-to", str(args.round_to), "--min-keep",
               str(args.min_keep), "--max-accuracy-drop", str(args.max_accuracy_drop), "--rounds", str(args.rounds),
               "--block-time", str(args.block_time), "--seed", str(args.seed), "--store", store] + (
        ["--threads", str(args.threads)] if args.threads else [])
    try:
        return report_of("search", options, out)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"edgebench search ({objectives}) failed with exit status {exc.returncode}")


def common_floor(baseline_floor: float, reports: list[dict[str, Any]]) -> float:
    """The floor both searches are compared at: the baseline's, or where some search's fine-tuned
    front stays under it, the highest metric every front reaches (so the picks still compare at one
    metric, as the study compared its two objectives at equal mIoU)."""
    reached = [max((tuned["accuracy"] for tuned in report["final_front"]), default=float("-inf"))
               for report in reports]
    return min([baseline_floor, *reached])


def _fastest_at(report: dict[str, Any], floor: float) -> Optional[dict[str, Any]]:
    """The fine-tuned front member with the lowest measured latency ratio at or above ``floor``,
    with the baseline's p50."""
    best = fastest_at(report, floor)
    if best is None:
        return None
    return {**best, "baseline_ms": report["baseline"]["latency_ms"].get(report["backends"][0])}


def _measure_picks(args: argparse.Namespace, picks: dict[str, dict], store: str) -> dict[str, Any]:
    """The unpruned model, the latency pick and the MACs pick alternating in one paired run."""
    shape = "x".join(str(d) for d in load_task(args.task).example_input.shape[1:])
    models = [resolve_model(args.model, [shape])] + [
        resolve_model(str(args.out / name / picks[name]["model_file"]), [shape]) for name in ("latency", "macs")]
    settings = Settings(min_time_s=0, max_time_s=0, min_iterations=1, warmup_s=0.3, target_ci=0, timeout_s=600,
                        threads=args.threads, processes=1)
    with run_session(store, tags={"command": "search_benchmark"}, log=lambda line: print(line, file=sys.stderr)) \
            as session, session.stage(available_definition("local"), "cpu", measure_power=False) as ready:
        paired = measure_paired(ready.sweep(settings, threads=args.threads), models, args.backend,
                                Pairing(rounds=2 * args.rounds, block_s=args.block_time),
                                roles=["baseline", "latency pick", "macs pick"])
        session.keep_all(entry.record for entry in paired.entries)
    ratios = {"latency_over_baseline": paired.ratio(1, 0), "macs_over_baseline": paired.ratio(2, 0),
              "macs_over_latency": paired.ratio(2, 1)}
    return {"p50_ms": {role: entry.p50_ms if entry.ok else None
                       for role, entry in zip(("baseline", "latency", "macs"), paired.entries)},
            **{key: ratio.as_dict() if ratio else None for key, ratio in ratios.items()}}


def _markdown(args, searches: dict, floor: float, baseline_floor: float, picks: dict,
              comparison: Optional[dict]) -> str:
    lines = [f"# NSGA-II search: {args.model} on {args.task}, {args.backend}", "",
             f"Population {args.population}, {args.generations} generations, {args.finetune_steps} fine-tuning steps "
             f"per individual, {args.final_finetune_steps} more for the final front; paired rounds {args.rounds} "
             f"of {args.block_time:g} s.", ""]
    metric = next(iter(searches.values()))["report"].get("metric", "accuracy")
    for name, search in searches.items():
        report = search["report"]
        backend = report["backends"][0]
        lines += [f"## {report['objectives']}: {search['wall_s']:.0f} s", "",
                  "Hypervolume per generation: " + ", ".join(f"{g['hypervolume']:.4f}" for g in report["generations"]),
                  "", f"| individual | {metric} (before the final fine-tune) | MACs / baseline | "
                      f"{backend} latency / baseline [95% CI] | {backend} ms |",
                  "| --- | --- | --- | --- | --- |"]
        for tuned in sorted(report["final_front"], key=lambda t: t["macs"]):
            ratio = tuned["latency_ratio"].get(backend)
            shown = f"{ratio['ratio']:.3f} [{ratio['ci95'][0]:.3f}, {ratio['ci95'][1]:.3f}]" if ratio else "-"
            ms = tuned["latency_ms"].get(backend)
            lines.append(f"| {tuned['individual']} | {tuned['accuracy']:.2%} ({tuned['accuracy_before']:.2%}) | "
                         f"{tuned['macs'] / report['baseline']['macs']:.3f} | {shown} | "
                         f"{'-' if ms is None else f'{ms:.3f}'} |")
        lines.append("")
    lines += [f"## At the {metric} floor {floor:.2%}", ""]
    if floor < baseline_floor:
        lines += [f"Not every fine-tuned front reached the baseline's floor ({baseline_floor:.2%}): the picks are "
                  f"compared at the highest {metric} every front reaches.", ""]
    if comparison is None:
        missing = [name for name, pick in picks.items() if pick is None]
        lines.append(f"No fine-tuned front model of the {', '.join(missing)} search reached the floor.")
        return "\n".join(lines) + "\n"
    lines += ["Each search's fastest fine-tuned model at the floor, measured together with the unpruned model "
              f"in one paired run ({2 * args.rounds} rounds):", "",
              f"| search | individual | {metric} | p50 ms | latency / baseline [95% CI] |", "| --- | --- | --- | --- | --- |"]
    for name in ("latency", "macs"):
        ratio = comparison[f"{name}_over_baseline"]
        shown = f"{ratio['ratio']:.3f} [{ratio['ci95'][0]:.3f}, {ratio['ci95'][1]:.3f}]" if ratio else "-"
        ms = comparison["p50_ms"][name]
        lines.append(f"| {OBJECTIVES[name]} | {picks[name]['individual']} | {picks[name]['accuracy']:.2%} | "
                     f"{'-' if ms is None else f'{ms:.3f}'} | {shown} |")
    ratio, baseline_ms = comparison["macs_over_latency"], comparison["p50_ms"]["baseline"]
    lines += ["", "The MACs search's pick over the latency search's: "
                  + (f"{ratio['ratio']:.3f} [{ratio['ci95'][0]:.3f}, {ratio['ci95'][1]:.3f}]" if ratio else "-")
                  + ("" if baseline_ms is None else f" (baseline p50 {baseline_ms:.3f} ms)") + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
