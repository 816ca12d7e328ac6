"""``edgebench prune``: structural pruning that keeps only the gains the target measured."""

from __future__ import annotations

import functools
import json
import shutil
import sys
from pathlib import Path
from typing import List, Optional

import typer

from edgebench.cli import parsing, render
from edgebench.cli.app import app
from edgebench.cli.paired_setup import candidates_dir, paired_settings, stderr_log
from edgebench.cli.modes_table import modes_table
from edgebench.cli.options import (
    BlockTimeOption, DeviceOption, RoundsOption, StoreOption, ThreadsOption, TrainStepsOption,
)
from edgebench.errors import UsageError
from edgebench.interrupts import exit_status
from edgebench.models import ExportError
from edgebench.results.record import Settings
from edgebench.results.location import store_location
from edgebench.session import available_definition, device_of, interrupted_line, run_session
from edgebench.sweep.paired import CONFIRM_BLOCK_S, CONFIRM_ROUNDS, Pairing
from edgebench.sweep.plan import choose_backends



@app.command("prune")
def prune_command(
    model: str = typer.Option(..., "--model", "-m", help="The PyTorch model to prune: torchvision:NAME[?k=v][#part], "
                              "edgebench:NAME[?k=v][#part], package.module:callable or a full-module .pt file. Its "
                              "classes must fit the task (e.g. torchvision:resnet18?num_classes=10 for digits). A "
                              "detector is pruned whole and measured as its network unless the spec says #end_to_end."),
    task: str = typer.Option("digits", "--task", help="A built-in task (`edgebench tasks` lists them: digits, "
                             "digit-detection, digit-segmentation; options as digits?size=64) or "
                             "package.module:callable returning a task object."),
    out: Path = typer.Option(..., "--out", help="Directory for the pruned model, model.onnx, report.json and plots."),
    target: str = typer.Option("local", "--target", "-t", help="Built-in target, 'local', or a target .toml file."),
    backend: str = typer.Option("eager", "--backend", "-b", help="Comma-separated backends; a step counts only "
                                "when it is faster on all of them."),
    strategy: str = typer.Option("greedy", "--strategy", help="greedy: the measured loop, one group per step; "
                                 "static: one cut of every channel scoring under --threshold (or of --ratio of every "
                                 "group), then --finetune-steps and a paired measurement against the baseline; "
                                 "allocate: one cut allocated among the groups by --allocate, to --budget, then the same."),
    allocate: Optional[str] = typer.Option(None, "--allocate", help="--strategy allocate: latency-model (the "
                                           "default) keeps the most --criterion importance under the latency a "
                                           "model learned on the target predicts (measured once, cached); "
                                           "sensitivity prunes the least sensitive groups of --sensitivity DIR "
                                           "first."),
    latency_model: Optional[str] = typer.Option(None, "--latency-model", help="--allocate latency-model: layers (the "
                                                "default) measures every prunable layer alone at a grid of its input "
                                                "and output widths and reads their sum against uniform cuts of the "
                                                "whole model (HALP's lookup table); groups "
                                                "measures the whole model with each group alone cut and multiplies "
                                                "the ratios."),
    sensitivity: Optional[Path] = typer.Option(None, "--sensitivity", help="--allocate sensitivity: the --out "
                                               "directory of edgebench sensitivity for this model and task."),
    objective: str = typer.Option("latency", "--objective", help="latency: measured on the target; flops: MACs "
                                  "(candidates are still measured and recorded)."),
    budget: float = typer.Option(0.5, "--budget", min=0.01, max=1.0, help="Stop once the objective is at most "
                                 "this fraction of the baseline's."),
    backend_budget: List[str] = typer.Option([], "--backend-budget", help="--strategy allocate --allocate "
                                             "latency-model: BACKEND=RATIO, a budget for that backend in place of "
                                             "--budget (comma-separated or repeated; e.g. onnxruntime=0.13,eager=0.4)."),
    max_accuracy_drop: float = typer.Option(0.01, "--max-accuracy-drop", min=0.0, max=1.0, help="Accuracy (as a "
                                            "fraction) the pruned model may lose against the baseline."),
    criterion: Optional[str] = typer.Option(None, "--criterion", help="Channel importance: l1 (the greedy default), "
                                            "hrank, taylor, utilisation (the static default) or a criterion "
                                            "registered under the edgebench.importance entry-point group."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="--strategy static: channels scoring under "
                                              "this go, in (0, 1] (default 0.05: active on under 5% of the inputs, "
                                              "with --criterion utilisation)."),
    ratio: Optional[float] = typer.Option(None, "--ratio", help="--strategy static, instead of --threshold: "
                                          "this share of every group's channels goes, the lowest-scoring first "
                                          "(e.g. --criterion hrank --ratio 0.15), in (0, 1)."),
    residual: str = typer.Option("coupled", "--residual", help="--strategy static or allocate: coupled cuts a residual "
                                 "stage's channels from every layer they couple; zero-pad cuts each residual branch's "
                                 "last convolution alone and scatters its output back into zeros of the full width "
                                 "before the addition."),
    regularise: Optional[str] = typer.Option(None, "--regularise", help="--strategy static: train a copy of the "
                                             "baseline for --reg-steps before it is scored and cut. group-norm: with "
                                             "Torch-Pruning's group-sparsity regulariser after every backward pass, "
                                             "which shrinks weak channels' coupled weights towards zero; none: the "
                                             "same steps without it (the contrast)."),
    reg_strength: Optional[float] = typer.Option(None, "--reg-strength", help="--regularise group-norm: the "
                                                 "regulariser's coefficient (default 5e-4, as Torch-Pruning's "
                                                 "examples)."),
    reg_steps: Optional[int] = typer.Option(None, "--reg-steps", help="--regularise: training steps before the cut "
                                            "(default 200)."),
    score_inputs: Optional[int] = typer.Option(None, "--score-inputs", min=1, help="Training inputs hrank, taylor "
                                               "and utilisation score from (default 64; utilisation 256)."),
    round_to: int = typer.Option(8, "--round-to", min=1, help="Channel counts are multiples of this."),
    staircase: bool = typer.Option(False, "--staircase", help="After each kept cut, probe wider channel counts "
                                   "(up to two --round-to more) on the target and keep the widest that is no slower: "
                                   "the cheap edge of the latency staircase."),
    step: float = typer.Option(0.1, "--step", min=0.001, max=0.9, help="Share of the current latency (or MACs) "
                               "each iteration's candidates aim to remove."),
    max_iterations: int = typer.Option(30, "--max-iterations", min=1, help="Iterations at most."),
    finetune_steps: int = typer.Option(20, "--finetune-steps", min=0, help="Training steps each measured-faster "
                                       "candidate gets before its accuracy check."),
    final_finetune_steps: int = typer.Option(200, "--final-finetune-steps", min=0, help="Training steps for the "
                                             "final model."),
    train_steps: int = TrainStepsOption,
    rounds: int = RoundsOption,
    block_time: float = BlockTimeOption,
    confirm_rounds: int = typer.Option(CONFIRM_ROUNDS, "--confirm-rounds", min=2, help="Paired rounds of the keep "
                                       "rule's confirmation (--strategy greedy, latency objective: the chosen "
                                       "candidate measured again in a fresh run) and of allocate's checks."),
    confirm_block_time: float = typer.Option(CONFIRM_BLOCK_S, "--confirm-block-time", min=0.005,
                                             help="Seconds of each block of the confirmation and of allocate's "
                                                  "checks: short blocks give more rounds, and a narrower interval, "
                                                  "in the same time."),
    threads: Optional[int] = ThreadsOption,
    mode: Optional[str] = typer.Option(None, "--mode", help="Power mode (Jetson), restored afterwards. A comma "
                                       "list (maxn,15w,30w-all): pruning decides in the first; then the baseline "
                                       "and the final model are measured in every one, latency and power (modes.png, "
                                       "report.json's modes)."),
    device: Optional[str] = DeviceOption,
    store: str = StoreOption,
    tag: List[str] = typer.Option([], "--tag", help="KEY=VALUE label for the run. Repeatable."),
    json_output: bool = typer.Option(False, "--json", help="Print report.json on stdout."),
) -> None:
    """Prune channels with Torch-Pruning, keeping a step only when the target measured it faster (or, with
    --strategy static, every channel under a threshold, or the same share of every group, at once; with --strategy
    allocate, the cut a latency model learned on the target predicts within --budget)."""
    from edgebench.prune.importance import CRITERIA, check_criterion
    from edgebench.prune.baseline import prunable_model
    from edgebench.prune.loop import OBJECTIVES, PruneConfig, Pruner
    from edgebench.prune.mode_table import mode_list
    from edgebench.prune.static import DEFAULT_THRESHOLD, StaticPruner
    from edgebench.prune.allocate import ALLOCATORS, AllocatePruner
    from edgebench.prune.latency_kinds import DEFAULT_KIND, KINDS
    from edgebench.prune.sensitivity_allocation import SensitivityAllocator, check_sensitivity
    from edgebench.prune.sensitivity_table import in_mode, load_sensitivity
    from edgebench.prune.tasks import load_task
    from edgebench.prune.zero_pad import RESIDUAL_MODES

    store_location(store)
    tags = parsing.key_values(tag, "--tag")
    strategies = {"greedy": Pruner, "static": StaticPruner, "allocate": AllocatePruner}
    if strategy not in strategies:
        raise UsageError(f"--strategy must be one of {', '.join(strategies)}, not {strategy!r}")
    if objective not in OBJECTIVES:
        raise UsageError(f"--objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    if staircase and objective != "latency":
        raise UsageError("--staircase needs --objective latency: it widens cuts at no measured latency cost")
    if strategy == "allocate":
        allocate = allocate or ALLOCATORS[0]
        if allocate not in ALLOCATORS:
            raise UsageError(f"--allocate must be one of {', '.join(ALLOCATORS)}, not {allocate!r}")
        if staircase or objective != "latency":
            raise UsageError(f"--{'staircase' if staircase else 'objective ' + objective} does not apply to "
                             "--strategy allocate: it makes one cut under a latency budget")
    elif allocate is not None:
        raise UsageError("--allocate applies to --strategy allocate only")
    if (allocate == "sensitivity") != (sensitivity is not None):
        raise UsageError("--allocate sensitivity and --sensitivity DIR go together")
    if latency_model is not None and allocate != ALLOCATORS[0]:
        raise UsageError(f"--latency-model applies to --strategy allocate --allocate {ALLOCATORS[0]} only")
    latency_model = latency_model or DEFAULT_KIND
    if latency_model not in KINDS:
        raise UsageError(f"--latency-model must be one of {', '.join(KINDS)}, not {latency_model!r}")
    strategies["allocate"] = functools.partial(AllocatePruner, latency_model=latency_model)
    if strategy == "static":
        if staircase:
            raise UsageError("--staircase applies to --strategy greedy: the static cut has no steps to widen")
        if ratio is not None and threshold is not None:
            raise UsageError("--ratio and --threshold are two rules for the static cut; give one")
        if ratio is not None and not 0 < ratio < 1:
            raise UsageError(f"--ratio must be in (0, 1), not {ratio:g}")
        threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        if not 0 < threshold <= 1:
            raise UsageError(f"--threshold must be in (0, 1], not {threshold:g}")
    elif threshold is not None or ratio is not None:
        raise UsageError(f"--{'threshold' if threshold is not None else 'ratio'} applies to --strategy static only")
    measured = load_sensitivity(sensitivity) if sensitivity is not None else None
    if measured is not None:
        criterion = criterion or measured.report.get("criterion")
    if residual not in RESIDUAL_MODES:
        raise UsageError(f"--residual must be one of {', '.join(RESIDUAL_MODES)}, not {residual!r}")
    if residual == "zero-pad" and strategy == "greedy":
        # The loop re-traces the model every step, and Torch-Pruning cannot follow a scatter.
        raise UsageError("--residual zero-pad applies to --strategy static and allocate only")
    regularisation = _regularisation(regularise, reg_strength, reg_steps, strategy, residual)
    criterion = criterion or ("utilisation" if strategy == "static" else "l1")
    if criterion not in CRITERIA:
        raise UsageError(f"--criterion must be one of {', '.join(CRITERIA)}, not {criterion!r}")
    definition = available_definition(target)
    modes = mode_list(definition, mode)
    if measured is not None:
        measured = in_mode(measured, modes)  # the rows of the mode pruning decides in
    chosen_device = device_of(definition, device)
    backends = choose_backends(parsing.comma_list([backend]), definition.backends)
    backend_budgets = _backend_budgets(backend_budget, backends, strategy, allocate)
    chosen_task = load_task(task)
    check_criterion(criterion, chosen_task)  # a criterion that scores from batches needs a task that has them
    prunable = prunable_model(model, chosen_task)
    if measured is not None:
        check_sensitivity(measured, prunable, chosen_task, criterion, backends)
        strategies["allocate"] = functools.partial(SensitivityAllocator, sensitivity=measured)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    config = PruneConfig(objective=objective, budget=budget, backend_budgets=backend_budgets,
                         max_accuracy_drop=max_accuracy_drop, criterion=criterion,
                         round_to=round_to, step=step, max_iterations=max_iterations, finetune_steps=finetune_steps,
                         final_finetune_steps=final_finetune_steps, train_steps=train_steps, staircase=staircase,
                         score_inputs=score_inputs, strategy=strategy,
                         threshold=DEFAULT_THRESHOLD if threshold is None else threshold, ratio=ratio, residual=residual,
                         **regularisation,
                         pairing=Pairing(rounds=rounds, block_s=block_time),
                         confirm_pairing=Pairing(rounds=confirm_rounds, block_s=confirm_block_time))
    settings = paired_settings(config.pairing, threads)
    log = stderr_log()

    workdir = candidates_dir(out)
    session = None
    try:
        with run_session(store, tags={"command": "prune", "objective": objective, **tags}, log=log) as session:
            with session.stage(definition, chosen_device, mode=modes[0] if modes else None,
                               measure_power=False) as ready:
                plan = (f"objective {objective}, budget {budget:g}" if strategy == "greedy" else
                        f"one cut allocated by the {allocate}"
                        + (f" ({latency_model})" if allocate == ALLOCATORS[0] else "")
                        + " under " + ", ".join(f"{name} {config.budget_on(name):g}" for name in backends)
                        + " of the baseline"
                        if strategy == "allocate" else
                        f"static cut under {criterion} {config.threshold:g}" if ratio is None else
                        f"static cut of {ratio:g} of each group by {criterion}") + \
                    (", residual branches zero-padded" if residual == "zero-pad" else "") + \
                    (f", after {config.reg_steps} training steps with regulariser {regularise}" if regularise else "")
                log(f"run {session.run_id}: pruning {model} on {definition.name} ({', '.join(backends)}), "
                    f"{plan}, store {store}")
                sweep = ready.sweep(settings, threads=threads)
                pruner = strategies[strategy](chosen_task, sweep, backends, config, workdir, session.keep_all, log)
                outcome = pruner.run(prunable)
                report = {**outcome.report, "target": definition.name, "run_id": session.run_id, "store": store}
                _write_outputs(out, report, outcome, pruner.recipe, chosen_task.example_input)
            if len(modes) > 1:  # the outputs above stay whatever happens to these measurements
                _measure_modes(out, report, session, definition, chosen_device, modes, outcome, settings, config,
                               threads)
    except KeyboardInterrupt as interrupt:
        log(interrupted_line(session))
        raise typer.Exit(exit_status(interrupt))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if json_output:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _summary(report, out)


def _backend_budgets(values: List[str], backends: List[str], strategy: str, allocate: Optional[str]
                     ) -> tuple[tuple[str, float], ...]:
    """``--backend-budget`` as (backend, budget) pairs, checked against the backends measured."""
    from edgebench.prune.allocate import ALLOCATORS

    if not values:
        return ()
    if strategy != "allocate" or allocate != ALLOCATORS[0]:
        raise UsageError(f"--backend-budget applies to --strategy allocate --allocate {ALLOCATORS[0]} only")
    budgets = []
    for name, text in parsing.key_values(parsing.comma_list(values), "--backend-budget").items():
        if name not in backends:
            raise UsageError(f"--backend-budget: {name!r} is not a backend of this run ({', '.join(backends)})")
        try:
            ratio = float(text)
        except ValueError:
            raise UsageError(f"--backend-budget {name} takes a number, not {text!r}") from None
        if not 0.01 <= ratio <= 1:
            raise UsageError(f"--backend-budget {name} must be in [0.01, 1], not {ratio:g}")
        budgets.append((name, ratio))
    return tuple(budgets)


def _regularisation(regularise: Optional[str], strength: Optional[float], steps: Optional[int], strategy: str,
                    residual: str) -> dict:
    """The PruneConfig fields of --regularise, --reg-strength and --reg-steps; UsageError for a bad mix."""
    from edgebench.prune.regularise import DEFAULT_STEPS, DEFAULT_STRENGTH, REGULARISERS

    if regularise is None:
        if steps is not None or strength is not None:
            given = "--reg-steps" if steps is not None else "--reg-strength"
            raise UsageError(f"{given} applies with --regularise ({', '.join(REGULARISERS)})")
        return {}
    if regularise not in REGULARISERS:
        raise UsageError(f"--regularise must be one of {', '.join(REGULARISERS)}, not {regularise!r}")
    if strategy != "static":
        raise UsageError("--regularise applies to --strategy static only")
    if residual == "zero-pad":
        # The regulariser shrinks whole coupled groups; a zero-padded branch is cut apart from its group.
        raise UsageError("--regularise trains coupled groups sparse; --residual zero-pad cuts branches apart from "
                         "them: give one")
    if strength is not None and regularise != "group-norm":
        raise UsageError("--reg-strength applies to --regularise group-norm")
    if strength is not None and not strength > 0:
        raise UsageError(f"--reg-strength must be above 0, not {strength:g}")
    if steps is not None and steps < 1:
        raise UsageError(f"--reg-steps must be at least 1, not {steps}")
    return {"regularise": regularise, "reg_strength": DEFAULT_STRENGTH if strength is None else strength,
            "reg_steps": DEFAULT_STEPS if steps is None else steps}


def _write_outputs(out: Path, report: dict, outcome, recipe, example_input) -> None:
    """model.pt2, state_dict.pt + pruning.json, model.onnx (checked), report.json and the plots."""
    from edgebench.prune.outputs import export_checked_onnx, measured, save_pruned, write_report_json
    from edgebench.prune.step_plots import plot_steps

    name, part = outcome.report["model"], outcome.report["measured_part"]
    try:
        save_pruned(out, outcome.model, recipe, name, example_input, outcome.history, part, outcome.paddings)
    except ExportError as exc:  # state_dict.pt and pruning.json are written before the program
        report["warnings"] = report["warnings"] + [f"model.pt2 not written: {exc}"]
        report["onnx_check"] = {"ok": False, "error": "no model.pt2 to export from"}
    else:
        report["onnx_check"] = export_checked_onnx(out, measured(outcome.model, part, name), example_input)
    if not report["onnx_check"].get("ok"):
        report["warnings"] = report["warnings"] + [f"model.onnx: {report['onnx_check'].get('error')}"]
    write_report_json(out, report)
    plot_steps(out, report)


def _measure_modes(out: Path, report: dict, session, definition, device: str, modes: list[str], outcome,
                   settings: Settings, config, threads: Optional[int]) -> None:
    """The baseline and the final model in every mode of ``--mode A,B``: report.json's ``modes``, modes.png."""
    import dataclasses

    from edgebench.prune.loop import FINAL_ROUNDS_FACTOR
    from edgebench.prune.mode_plots import plot_modes
    from edgebench.prune.mode_table import MODES_STAGE, measure_in_modes, table_report
    from edgebench.prune.outputs import write_report_json

    pairing = dataclasses.replace(config.pairing, rounds=config.pairing.rounds * FINAL_ROUNDS_FACTOR)
    roles = ["baseline", "final"]
    rows = measure_in_modes(session, definition, device, modes, outcome.compared, roles, report["backends"],
                            settings, pairing, threads=threads,
                            label=lambda role: {"prune": {"role": role, "stage": MODES_STAGE}})
    report["modes"] = table_report(rows, roles)
    write_report_json(out, report)
    plot_modes(out, report)


def _summary(report: dict, out: Path) -> None:
    console = render.stdout_console()
    base, final = report["baseline"], report["final"]
    console.print(f"{report['model']}: {report['kept_steps']} step(s) kept; {report['stop_reason']}")
    for backend in report["backends"]:
        ratio = final["latency_ratio"].get(backend)
        shown = f"{ratio['ratio']:.3f}x [{ratio['ci95'][0]:.3f}, {ratio['ci95'][1]:.3f}]" if ratio else "not measured"
        console.print(f"  {backend}: {base['latency_ms'][backend]:.3f} ms -> "
                      f"{final['latency_ms'].get(backend) or float('nan'):.3f} ms, paired ratio {shown}")
    console.print(f"  {report['metric']} {base['accuracy']:.2%} -> {final['accuracy']:.2%}; MACs {base['macs'] / 1e6:.1f} M -> "
                  f"{final['macs'] / 1e6:.1f} M; parameters {base['params'] / 1e6:.2f} M -> {final['params'] / 1e6:.2f} M")
    if report.get("modes"):
        console.print(modes_table(report["modes"]))
        for row in report["modes"]["rows"]:
            for note in row["notes"]:
                console.print(f"  {row['mode']} {row['backend']}: {note}", highlight=False)
    for warning in report["warnings"]:
        console.print(f"  warning: {warning}")
    console.print(f"  written to {out}: model.pt2, state_dict.pt + pruning.json, model.onnx, report.json, plots")
