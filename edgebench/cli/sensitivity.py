"""``edgebench sensitivity``: each prunable group cut alone at a range of sparsities, its metric and
its latency measured on the target."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

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

# The summary's "sensitive from": the first sparsity whose metric fell more than this.
SENSITIVE_DROP = 0.01
# The summary's latency column: the ratio at this sparsity.
SUMMARY_SPARSITY = 0.5


@app.command("sensitivity")
def sensitivity_command(
    model: str = typer.Option(..., "--model", "-m", help="The PyTorch model: torchvision:NAME[?k=v][#part], "
                              "edgebench:NAME[?k=v][#part], package.module:callable or a full-module .pt file; its "
                              "classes must fit the task (e.g. torchvision:mobilenet_v2?num_classes=10 for digits)."),
    task: str = typer.Option("digits", "--task", help="A built-in task (`edgebench tasks` lists them) or "
                             "package.module:callable returning a task object."),
    out: Path = typer.Option(..., "--out", help="Directory for sensitivity.csv, report.json and the figures."),
    target: str = typer.Option("local", "--target", "-t", help="Built-in target, 'local', or a target .toml file."),
    backend: str = typer.Option("eager", "--backend", "-b", help="Comma-separated backends; each group is measured "
                                "on every one."),
    criterion: str = typer.Option("l1", "--criterion", help="Channel importance: the lowest-scoring channels go "
                                  "first (l1, hrank, taylor, utilisation or a registered criterion)."),
    sparsities: List[str] = typer.Option([], "--sparsities", help="Comma-separated shares of a group's channels "
                                         "to remove, in [0, 1) (default 0.0,0.1,...,0.9; 0.0, the unpruned model, is "
                                         "always measured: its ratio is an A/A check)."),
    groups: List[str] = typer.Option([], "--groups", help="Comma-separated prunable groups (their root modules) to "
                                     "analyse; default: every one."),
    score_inputs: Optional[int] = typer.Option(None, "--score-inputs", min=1, help="Training inputs hrank, taylor "
                                               "and utilisation score from (default 64; utilisation 256)."),
    round_to: int = typer.Option(8, "--round-to", min=1, help="Kept channel counts are multiples of this."),
    finetune_steps: int = typer.Option(0, "--finetune-steps", min=0, help="Training steps each cut model gets "
                                       "before its metric is taken (Distiller's analysis does not fine-tune)."),
    train_steps: int = TrainStepsOption,
    rounds: int = RoundsOption,
    block_time: float = BlockTimeOption,
    threads: Optional[int] = ThreadsOption,
    mode: Optional[str] = typer.Option(None, "--mode", help="Power mode (Jetson), restored afterwards. A comma list "
                                       "(maxn,15w,30w-all): every group's latency is measured in each mode, one "
                                       "stage per mode; the metric is taken once (sensitivity.csv's mode column)."),
    device: Optional[str] = DeviceOption,
    store: str = StoreOption,
    tag: List[str] = typer.Option([], "--tag", help="KEY=VALUE label for the run. Repeatable."),
) -> None:
    """Cut each prunable group alone at each sparsity, evaluate the task and measure the latency against the
    unpruned model on the target: sensitivity.csv, report.json, a figure per group and an overview."""
    from edgebench.board.torch_models import build_module
    from edgebench.prune.baseline import prunable_model
    from edgebench.prune.importance import CRITERIA, check_criterion
    from edgebench.prune.loop import PruneConfig
    from edgebench.prune.mode_table import mode_list
    from edgebench.prune.sensitivity import DEFAULT_SPARSITIES, SensitivityAnalysis, chosen_groups
    from edgebench.prune.sensitivity_outputs import SensitivityOutputs
    from edgebench.prune.tasks import load_task
    from edgebench.sweep.paired import Pairing

    store_location(store)
    tags = parsing.key_values(tag, "--tag")
    shares = _sparsities(sparsities) or list(DEFAULT_SPARSITIES)
    if criterion not in CRITERIA:
        raise UsageError(f"--criterion must be one of {', '.join(CRITERIA)}, not {criterion!r}")
    definition = available_definition(target)
    modes = mode_list(definition, mode)  # one line for an unknown or repeated mode, before anything switches
    chosen_device = device_of(definition, device)
    backends = choose_backends(parsing.comma_list([backend]), definition.backends)
    chosen_task = load_task(task)
    check_criterion(criterion, chosen_task)
    prunable = prunable_model(model, chosen_task, "edgebench sensitivity")
    # Checked on the untrained model, before any training: the groups are named by module.
    chosen = chosen_groups(build_module(prunable.resolved.recipe), chosen_task.example_input,
                           parsing.comma_list(groups))
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    config = PruneConfig(criterion=criterion, round_to=round_to, finetune_steps=finetune_steps,
                         train_steps=train_steps, score_inputs=score_inputs, strategy="sensitivity",
                         pairing=Pairing(rounds=rounds, block_s=block_time))
    settings = paired_settings(config.pairing, threads)
    log = stderr_log()

    workdir = candidates_dir(out)
    outputs = SensitivityOutputs(out)
    session = None
    try:
        with run_session(store, tags={"command": "sensitivity", **tags}, log=log) as session:
            @contextlib.contextmanager
            def stages(stage_mode: Optional[str]):
                # Latency only: the power of the candidates is not measured here (docs/sensitivity.md).
                with session.stage(definition, chosen_device, mode=stage_mode, measure_power=False) as ready:
                    context["run_id"] = session.run_id  # the first stage starts the run
                    log(f"run {session.run_id}: mode {ready.board.mode}, measuring every group")
                    yield ready.sweep(settings, threads=threads)

            log(f"sensitivity of {len(chosen)} group(s) of {model} on {definition.name} ({', '.join(backends)}"
                f"{', modes ' + ', '.join(modes) if modes else ''}) at sparsities "
                f"{', '.join(f'{s:g}' for s in shares)}, store {store}")
            context = {"target": definition.name, "device": chosen_device, "threads": threads, "store": store,
                       "run_id": None}
            analysis = SensitivityAnalysis(chosen_task, None, backends, config, workdir, session.keep_all, log,
                                           sparsities=shares, groups=chosen, stages=stages, modes=modes or [None])
            report = analysis.run(prunable, outputs, context)
    except KeyboardInterrupt as interrupt:
        log(interrupted_line(session))
        if outputs.measured:
            log(f"{outputs.measured} group measurement(s) made before the interrupt are in {outputs.csv_path}")
        raise typer.Exit(exit_status(interrupt))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _summary(report, outputs, out)


def _sparsities(values: List[str]) -> list[float]:
    shares = []
    for item in parsing.comma_list(values):
        try:
            share = float(item)
        except ValueError:
            raise UsageError(f"--sparsities takes numbers, not {item!r}") from None
        if not 0 <= share < 1:
            raise UsageError(f"--sparsities must be in [0, 1), not {share:g}")
        shares.append(share)
    return shares


def _summary(report: dict, outputs, out: Path) -> None:
    """Per group (and power mode, with --mode): the first sparsity that costs more than a point of the
    metric, the latency ratio at 0.5 and the A/A check, per backend."""
    console = render.stdout_console()
    metric, backends = report["metric"], report["backends"]
    table = Table(title=f"{report['model']}: sensitivity on {report['target']} ({report['task']}, {metric} "
                        f"{report['baseline']['metric']:.2%} unpruned)")
    table.add_column("group")
    if report["modes"]:
        table.add_column("mode")
    table.add_column("channels", justify="right")
    table.add_column(f"{metric} drops > {SENSITIVE_DROP:.0%} from", justify="right")
    for backend in backends:
        table.add_column(f"{backend} ratio at {SUMMARY_SPARSITY:g}", justify="right")
        table.add_column(f"{backend} A/A", justify="right")
    for group, measured in outputs.by_group.items():
        for mode in dict.fromkeys(point.mode for point in measured):
            points = [point for point in measured if point.mode == mode]
            sensitive = next((point for point in points if point.drop > SENSITIVE_DROP), None)
            at_half = next((point for point in points if point.sparsity == SUMMARY_SPARSITY), None)
            cells = [group, *([mode] if report["modes"] else []), str(points[0].channels_before),
                     f"{sensitive.sparsity:g}" if sensitive else "-"]
            for backend in backends:
                ratio = at_half.ratio.get(backend) if at_half else None
                aa = points[0].ratio.get(backend)
                cells += [str(ratio) if ratio else "-", f"{aa.ratio:.3f}" if aa else "-"]
            table.add_row(*cells)
    console.print(table)
    console.print(f"  A/A: sparsity 0 pairs the unpruned model with a copy of itself; a ratio far from 1 means the "
                  f"pairing's noise is as large as that. Written to {out}: sensitivity.csv, report.json, "
                  f"group-*.png, sensitivity.png", highlight=False)
