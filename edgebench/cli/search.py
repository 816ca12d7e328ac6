"""``edgebench search``: NSGA-II over per-group keep ratios, every individual measured on the target."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import List, Optional

import typer

from edgebench.cli import parsing, render
from edgebench.cli.app import app
from edgebench.cli.paired_setup import candidates_dir, paired_settings, stderr_log
from edgebench.cli.options import (
    BlockTimeOption, DeviceOption, RoundsOption, StoreOption, ThreadsOption, TrainStepsOption,
)
from edgebench.errors import UsageError
from edgebench.interrupts import exit_status
from edgebench.results.location import store_location
from edgebench.session import available_definition, device_of, interrupted_line, run_session
from edgebench.sweep.plan import choose_backends

# NSGA-II's binary tournament and crossover need a few parents.
MIN_POPULATION = 4


@app.command("search")
def search_command(
    model: str = typer.Option(..., "--model", "-m", help="The PyTorch model to search over, as edgebench prune "
                              "takes it (e.g. torchvision:mobilenet_v2?num_classes=10 for digits)."),
    task: str = typer.Option("digits", "--task", help="A built-in task (`edgebench tasks` lists them) or "
                             "package.module:callable returning a task object."),
    out: Path = typer.Option(..., "--out", help="Directory for report.json, front.csv, the plots and front/ "
                             "(the final front's models)."),
    target: str = typer.Option("local", "--target", "-t", help="Built-in target, 'local', or a target .toml file."),
    backend: str = typer.Option("eager", "--backend", "-b", help="Comma-separated backends; with accuracy,latency each "
                                "backend's ratio to the baseline is an objective of its own."),
    objectives: str = typer.Option("accuracy,latency", "--objectives", help="accuracy,latency: latency measured "
                                   "on the target; accuracy,macs: counted MACs (every individual is still measured)."),
    population: int = typer.Option(8, "--population", help="Individuals per generation (at least 4)."),
    generations: int = typer.Option(8, "--generations", help="Generations, the first (half uniform cuts, half "
                                     "random) one included."),
    min_keep: float = typer.Option(0.25, "--min-keep", help="The smallest share of its channels a group keeps, "
                                   "in (0, 1]."),
    max_accuracy_drop: float = typer.Option(0.01, "--max-accuracy-drop", min=0.0, max=1.0, help="The accuracy "
                                            "floor the progress line and report.json quote the best latency at: "
                                            "the baseline's minus this."),
    criterion: str = typer.Option("l1", "--criterion", help="Which channels a group keeps: l1, hrank, taylor, "
                                  "utilisation or a criterion registered under edgebench.importance; scored once, "
                                  "on the baseline."),
    score_inputs: Optional[int] = typer.Option(None, "--score-inputs", min=1, help="Training inputs hrank, taylor "
                                               "and utilisation score from."),
    round_to: int = typer.Option(8, "--round-to", min=1, help="Kept channel counts are multiples of this."),
    finetune_steps: int = typer.Option(20, "--finetune-steps", min=0, help="Training steps every individual gets "
                                       "before its accuracy is taken."),
    final_finetune_steps: int = typer.Option(200, "--final-finetune-steps", min=0, help="More training steps for "
                                             "each model of the final front before it is measured again."),
    train_steps: int = TrainStepsOption,
    rounds: int = RoundsOption,
    block_time: float = BlockTimeOption,
    threads: Optional[int] = ThreadsOption,
    mode: Optional[str] = typer.Option(None, "--mode", help="Power mode (Jetson), restored afterwards."),
    device: Optional[str] = DeviceOption,
    seed: int = typer.Option(0, "--seed", help="NSGA-II's random seed."),
    store: str = StoreOption,
    tag: List[str] = typer.Option([], "--tag", help="KEY=VALUE label for the run. Repeatable."),
    json_output: bool = typer.Option(False, "--json", help="Print report.json on stdout."),
) -> None:
    """Search per-group channel counts with NSGA-II (pymoo), accuracy against latency measured on the target
    (or against MACs), then fine-tune the final front longer and measure it again."""
    try:
        import pymoo  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"edgebench search needs pymoo 0.6 or newer ({exc}): "
                         "pip install 'edgebench[search]'") from None
    from edgebench.prune.baseline import prunable_model
    from edgebench.prune.importance import CRITERIA, check_criterion
    from edgebench.prune.loop import PruneConfig
    from edgebench.prune.tasks import load_task
    from edgebench.search.archive import OBJECTIVES
    from edgebench.search.front_plots import plot_search
    from edgebench.search.nsga import Search, SearchConfig
    from edgebench.sweep.paired import Pairing

    store_location(store)
    tags = parsing.key_values(tag, "--tag")
    if objectives not in OBJECTIVES:
        raise UsageError(f"--objectives must be one of {', '.join(OBJECTIVES)}, not {objectives!r}")
    if population < MIN_POPULATION:
        raise UsageError(f"--population must be at least {MIN_POPULATION}, not {population}")
    if generations < 1:
        raise UsageError(f"--generations must be at least 1, not {generations}")
    if not 0 < min_keep <= 1:
        raise UsageError(f"--min-keep must be in (0, 1], not {min_keep:g}")
    if criterion not in CRITERIA:
        raise UsageError(f"--criterion must be one of {', '.join(CRITERIA)}, not {criterion!r}")
    definition = available_definition(target)
    if mode is not None:
        definition.mode(mode)
    chosen_device = device_of(definition, device)
    backends = choose_backends(parsing.comma_list([backend]), definition.backends)
    chosen_task = load_task(task)
    check_criterion(criterion, chosen_task)
    prunable = prunable_model(model, chosen_task, "edgebench search")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    config = PruneConfig(max_accuracy_drop=max_accuracy_drop, criterion=criterion, round_to=round_to,
                         finetune_steps=finetune_steps, final_finetune_steps=final_finetune_steps,
                         train_steps=train_steps, score_inputs=score_inputs,
                         pairing=Pairing(rounds=rounds, block_s=block_time))
    search = SearchConfig(objectives=objectives, population=population, generations=generations, min_keep=min_keep,
                          seed=seed)
    settings = paired_settings(config.pairing, threads)
    log = stderr_log()

    workdir = candidates_dir(out)
    session = None
    try:
        with run_session(store, tags={"command": "search", "objectives": objectives, **tags}, log=log) as session, \
                session.stage(definition, chosen_device, mode=mode, measure_power=False) as ready:
            log(f"run {session.run_id}: searching {model} on {definition.name} ({', '.join(backends)}), "
                f"objectives {objectives}, store {store}")
            sweep = ready.sweep(settings, threads=threads)
            searcher = Search(chosen_task, sweep, backends, config, workdir, session.keep_all, log, search=search,
                              out=out)
            report = searcher.run(prunable, {"target": definition.name, "run_id": session.run_id, "store": store})
    except KeyboardInterrupt as interrupt:
        log(interrupted_line(session))
        if (out / "report.json").is_file():
            log(f"what was measured is in {out / 'report.json'} and {out / 'front.csv'}")
        raise typer.Exit(exit_status(interrupt))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    plot_search(out, report)
    if json_output:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _summary(report, out)


def _summary(report: dict, out: Path) -> None:
    console = render.stdout_console()
    last = report["generations"][-1] if report.get("generations") else None
    console.print(f"{report['model']}: {len(report['individuals'])} individual(s) over {len(report['generations'])} "
                  f"generation(s), objectives {report['objectives']}; hypervolume "
                  f"{last['hypervolume']:.4f}" if last else "no generation finished")
    floor = report["baseline"]["floor"]
    for tuned in report["final_front"]:
        shown = ", ".join(f"{b} {r['ratio']:.3f}x [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]" if r
                          else f"{b} not measured" for b, r in tuned["latency_ratio"].items())
        mark = "" if tuned["accuracy"] >= floor else " (under the floor)"
        console.print(f"  individual {tuned['individual']}: {report['metric']} {tuned['accuracy']:.2%}{mark}, MACs "
                      f"{tuned['macs'] / report['baseline']['macs']:.2f}x, latency {shown}")
    console.print(f"  written to {out}: report.json, front.csv, fronts.png, front/")
