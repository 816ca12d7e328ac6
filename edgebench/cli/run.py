"""``edgebench run``: measure models on backends and store every record as it is made."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from edgebench.cli import parsing, render
from edgebench.cli.app import app
from edgebench.cli.options import StoreOption
from edgebench.errors import UsageError
from edgebench.interrupts import exit_status
from edgebench.models import input_shape_bindings, resolve_model
from edgebench.results.key import input_shape_text
from edgebench.results.record import Record, Settings
from edgebench.results.location import store_location
from edgebench.session import available_definition, device_of, interrupted_line, run_session
from edgebench.sweep.execute import Sweep
from edgebench.sweep.plan import DEFAULT_MODELS, Measurement, check_precisions, plan, sweep_backends
from edgebench.sweep.suite import Suite, load_suite
from edgebench.targets import LOCAL
from edgebench.targets.definition import TargetDefinition

# Time the worker gets beyond the measurement itself: importing, loading, exporting.
TIMEOUT_MARGIN_S = 300.0


@app.command("run")
def run_command(
    model: List[str] = typer.Option(
        [], "--model", "-m", help="torchvision:NAME[?k=v][#end_to_end], edgebench:NAME, package.module:callable, FILE.onnx, FILE.pt2 or "
        "FILE.pt. Repeatable. Default: torchvision:mobilenet_v2 and torchvision:resnet18."),
    backend: List[str] = typer.Option(
        [], "--backend", "-b", help="Comma-separated backends (eager, onnxruntime, tensorrt). Default: every one "
        "installed that the target runs."),
    batch: List[str] = typer.Option(["1"], "--batch", help="Comma-separated batch sizes."),
    precision: List[str] = typer.Option(
        ["fp32"], "--precision", help="Comma-separated precisions: fp32, fp16, int8. A backend that does not run "
        "one records it as unavailable, with the reason."),
    input_shape: List[str] = typer.Option(
        [], "--input-shape", help="Shape after the batch dimension, e.g. 3x224x224; NAME=SHAPE for one "
        "input of several (repeat the option per input). Comma-separated shapes are alternatives, each measured "
        "(a sweep like --batch): 3x256x512,3x512x1024. Default: from the model."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Intra-op threads for every backend. "
                                          "Default: the backend's own."),
    min_time: float = typer.Option(3.0, "--min-time", min=0.0, help="Seconds of timed iterations at least "
                                   "(all processes together)."),
    max_time: float = typer.Option(30.0, "--max-time", min=0.0, help="Seconds of timed iterations at most "
                                   "(all processes together)."),
    min_iterations: int = typer.Option(30, "--min-iterations", min=1, help="Timed iterations at least "
                                       "(all processes together)."),
    warmup: float = typer.Option(1.0, "--warmup", min=0.0, help="Seconds of warm-up in each process after its "
                                 "first inference."),
    ci_target: float = typer.Option(0.01, "--ci-target", min=0.0, help="Stop once the p50's 95% interval is "
                                    "within this fraction of it (and the minimums are met)."),
    processes: int = typer.Option(3, "--processes", min=1, help="Fresh worker processes per measurement; "
                                  "the time and iteration budgets are shared among them, samples pooled."),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", min=1.0, help=f"Seconds before a worker is killed. Default: max-time + warm-up + "
        f"{TIMEOUT_MARGIN_S:g}."),
    backend_option: List[str] = typer.Option(
        [], "--backend-option", help="BACKEND.KEY=VALUE, e.g. onnxruntime.allow_spinning=0. Repeatable."),
    allow_hooks: bool = typer.Option(False, "--allow-hooks", help="Measure eager models that carry hooks or "
                                     "prune masks (the record is marked)."),
    target: str = typer.Option("local", "--target", "-t", help="Built-in target name (see 'edgebench targets'), "
                               "'local' for this machine, or a target .toml file."),
    mode: Optional[str] = typer.Option(None, "--mode", help="Power mode (Jetson). Default: leave the board's "
                                       "current mode. The previous mode is restored afterwards."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, gpu, dla0 or dla1, as the target lists. "
                                         "Default: the target's default device."),
    lock_clocks: bool = typer.Option(False, "--lock-clocks", help="Run jetson_clocks for the run (clock state "
                                     "saved before and restored after)."),
    cooldown: bool = typer.Option(False, "--cooldown", help="Before each measurement, wait until temperatures "
                                  "are under the target's limit."),
    power: bool = typer.Option(True, "--power/--no-power", help="Sample power alongside each measurement with the "
                               "target's first readable source (tegrastats, jtop, RAPL, NVML)."),
    power_interval: int = typer.Option(100, "--power-interval", min=10, help="Milliseconds between power readings."),
    include_copies: bool = typer.Option(
        False, "--include-copies/--no-include-copies", help="GPU devices: time each inference with its input "
        "copies to the device and output copies back (default: inputs stay on the device)."),
    cuda_graphs: bool = typer.Option(False, "--cuda-graphs", help="TensorRT: launch each inference as a captured "
                                     "CUDA graph."),
    profile_layers: bool = typer.Option(False, "--profile-layers", help="Add a per-layer time table, each layer "
                                        "mapped to the model's module (eager, onnxruntime, tensorrt; separate "
                                        "profiled runs after the timed loop) to each record; `edgebench results "
                                        "layers` shows and diffs them."),
    suite: Optional[str] = typer.Option(None, "--suite", help="A suite file (TOML): its matrix of models, targets, "
                                        "modes, backends, batches and precisions replaces those options."),
    store: str = StoreOption,
    tag: List[str] = typer.Option([], "--tag", help="KEY=VALUE label for the run. Repeatable."),
    json_output: bool = typer.Option(False, "--json", help="Print the records as JSON on stdout."),
) -> None:
    """Measure models on backends; each measurement in a fresh worker process."""
    store_location(store)  # a bad --store is a usage error before anything is measured
    tags = parsing.key_values(tag, "--tag")
    options = parsing.backend_options(backend_option)
    err = Console(stderr=True)

    def log(message: str) -> None:
        err.print(message, highlight=False)

    try:
        if suite is not None:
            given = [name for name, value in (("--model", model), ("--backend", backend),
                                              ("--input-shape", input_shape), ("--mode", mode)) if value] + \
                (["--target"] if target != LOCAL else [])
            if given:
                raise UsageError(f"--suite sets the models, targets, modes and backends; leave out {', '.join(given)}")
            loaded = load_suite(Path(suite))
            overrides = loaded.settings
            min_time = overrides.min_time if overrides.min_time is not None else min_time
            max_time = overrides.max_time if overrides.max_time is not None else max_time
            processes = overrides.processes or processes
            threads = overrides.threads or threads
            tags = {"suite": loaded.name, **tags}
            stages = suite_stages(loaded, device)
        else:
            stages = [single_stage(model or list(DEFAULT_MODELS), parsing.comma_list(backend),
                                   parsing.positive_ints(batch, "--batch"),
                                   check_precisions(parsing.comma_list(precision)), input_shape, target, mode, device)]
    except KeyboardInterrupt as interrupt:  # while resolving models: nothing started yet
        log(interrupted_line(None))
        raise typer.Exit(exit_status(interrupt))
    if max_time < min_time:
        raise UsageError(f"--max-time ({max_time:g}) must be at least --min-time ({min_time:g})")
    settings = Settings(
        min_time_s=min_time, max_time_s=max_time, min_iterations=min_iterations, warmup_s=warmup,
        target_ci=ci_target, timeout_s=timeout or max_time + warmup + TIMEOUT_MARGIN_S, threads=threads,
        processes=processes,
    )
    progress_lines = not err.is_terminal  # a log or a pipe gets a line per measurement, a terminal the bar
    session = None
    try:
        with run_session(store, tags=tags, log=log) as session:
            for stage in stages:
                for note in stage.skipped:
                    log(f"skipped: {note}")
                with session.stage(stage.definition, stage.device, mode=stage.mode, lock_clocks=lock_clocks,
                                   power_interval_ms=power_interval, measure_power=power) as ready:
                    log(f"run {session.run_id}: {len(stage.measurements)} measurement(s) on {stage.definition.name} "
                        f"(mode {ready.board.mode}, device {stage.device}), store {store}")
                    sweep = ready.sweep(settings, threads=threads, backend_options=options, allow_hooks=allow_hooks,
                                        cooldown=cooldown, include_copies=include_copies, cuda_graphs=cuda_graphs,
                                        profile_layers=profile_layers)
                    _measure_with_progress(sweep, stage.measurements, session.keep, err, progress_lines)
    except KeyboardInterrupt as interrupt:
        log(interrupted_line(session))
        if session is not None and session.run_id is not None:
            _report(session.records, session.run_id, json_output)
        raise typer.Exit(exit_status(interrupt))
    _report(session.records, session.run_id, json_output)
    raise typer.Exit(1 if any(r.status == "error" for r in session.records) else 0)


@dataclass(frozen=True)
class Stage:
    """One board session: a target, in a mode, and what to measure there."""

    definition: TargetDefinition
    mode: Optional[str]
    device: str
    measurements: list[Measurement]
    skipped: list[str]


def single_stage(specs: list[str], requested_backends: list[str], batches: list[int], precisions: list[str],
                 input_shapes: list[str], target: str, mode: Optional[str], device: Optional[str]) -> Stage:
    """The stage of a run given by options: every model x input shape x batch x precision x backend."""
    definition = available_definition(target)
    if mode is not None:
        definition.mode(mode)  # unknown mode: the valid names, before anything else happens
    backends, unavailable = sweep_backends(requested_backends, definition.backends)
    if not backends:
        raise UsageError(f"no backend of target {definition.name} ({', '.join(definition.backends)}) is installed here")
    bindings = input_shape_bindings(input_shapes)
    models = [resolve_model(spec, binding) for spec in specs for binding in bindings]
    sweep_plan = plan(models, backends, batches, backends_requested=bool(requested_backends), precisions=precisions,
                      unavailable=unavailable)
    if not sweep_plan.measurements:
        raise UsageError("nothing to measure: " + "; ".join(sweep_plan.skipped))
    return Stage(definition, mode, device_of(definition, device), sweep_plan.measurements, sweep_plan.skipped)


def suite_stages(suite: Suite, device: Optional[str]) -> list[Stage]:
    """A stage per target and mode of the suite, in the suite's order."""
    groups: dict[tuple, list] = {}
    for item in suite.items():
        groups.setdefault((item.target, item.mode), []).append(item)
    stages, models = [], {}
    for (target, mode), items in groups.items():
        definition = available_definition(target)
        if mode is not None:
            definition.mode(mode)
        # A target file's backends are known only now: one it does not run is recorded unavailable.
        _, unavailable = sweep_backends(sorted({item.backend for item in items}), definition.backends)
        measurements = []
        for item in items:
            key = (item.model, item.input_shapes)
            if key not in models:
                models[key] = resolve_model(item.model, list(item.input_shapes))
            measurements.append(Measurement(models[key], item.backend, item.batch, item.precision,
                                            unavailable.get(item.backend)))
        stages.append(Stage(definition, mode, device_of(definition, device), measurements, []))
    return stages


def _measure_with_progress(sweep: Sweep, measurements: list[Measurement], keep: Callable[[Record], None],
                           err: Console, progress_lines: bool) -> None:
    """Runs the sweep; each record is kept (stored) as it is made, so it survives Ctrl-C."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("starting", total=len(measurements))

        def on_start(index: int, m: Measurement) -> None:
            shape = input_shape_text(m.model.input_shapes(m.batch))
            description = f"{m.model.name} b{m.batch} {m.precision} {m.backend} {shape}".rstrip()
            progress.update(task, description=description)
            if progress_lines:
                progress.console.print(f"measuring {index + 1}/{len(measurements)}: {description}", highlight=False)

        def on_record(record: Record) -> None:
            keep(record)
            progress.advance(task)
            progress.console.print(render.summary_line(record), highlight=False)

        sweep.run(measurements, on_record=on_record, on_start=on_start)


def _report(records: list[Record], run_id: Optional[str], json_output: bool) -> None:
    if json_output:
        json.dump([r.to_json_dict(with_samples=False) for r in records], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    out = render.stdout_console()
    out.print(render.records_table(records, title=f"run {run_id}"))
    render.print_details(out, records)
