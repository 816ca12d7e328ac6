"""``edgebench decompose``: convolutions split into low-rank pairs, each layer's rank chosen by what
the target measured against what the layer's output lost."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from edgebench.cli import parsing, render
from edgebench.cli.app import app
from edgebench.cli.paired_setup import paired_settings, stderr_log
from edgebench.cli.options import BlockTimeOption, DeviceOption, StoreOption, ThreadsOption, TrainStepsOption
from edgebench.errors import UsageError
from edgebench.interrupts import exit_status
from edgebench.results.location import store_location
from edgebench.session import available_definition, device_of, interrupted_line, run_session
from edgebench.sweep.plan import choose_backends

OUT_SUFFIXES = (".pt", ".pth")


@app.command("decompose")
def decompose_command(
    model: str = typer.Option(..., "--model", "-m", help="The PyTorch model: torchvision:NAME[?k=v], edgebench:NAME, "
                              "package.module:callable or a full-module .pt file; its classes must fit the task "
                              "(e.g. torchvision:resnet18?num_classes=10 for digits)."),
    out: Path = typer.Option(..., "--out", "-o", help="The decomposed model: a full-module .pt or .pth file "
                             "(torch.save), which 'edgebench run --model' takes; the report goes beside it as .json."),
    method: str = typer.Option(..., "--method", help="spatial: a kxk convolution into kx1 then 1xk; channel: a "
                               "convolution into one with fewer output channels then a 1x1."),
    max_error: float = typer.Option(..., "--max-error", min=0.0, help="Largest relative error a decomposed layer "
                                    "may make on its output, over real inputs (e.g. 0.1)."),
    task: str = typer.Option("digits", "--task", help="A built-in task (`edgebench tasks` lists them) or "
                             "package.module:callable: trains an untrained model, gives the layers' inputs, "
                             "fine-tunes and evaluates."),
    target: str = typer.Option("local", "--target", "-t", help="Built-in target, 'local', or a target .toml file."),
    backend: str = typer.Option("eager", "--backend", "-b", help="Comma-separated backends; a rank counts only "
                                "when the layer is faster on all of them."),
    min_speedup: float = typer.Option(1.0, "--min-speedup", min=1.0, help="A rank is kept only if its layer runs at "
                                      "least this many times faster than the original (and significantly faster)."),
    layers: List[str] = typer.Option([], "--layers", help="Comma-separated shell patterns of the convolutions to "
                                     "try (e.g. 'layer3.*,layer4.*'). Default: every one the method applies to."),
    round_to: int = typer.Option(8, "--round-to", min=1, help="Candidate ranks are multiples of this."),
    ranks: int = typer.Option(4, "--ranks", min=1, help="Candidate ranks per layer at most, spread from the "
                              "smallest to the largest that costs fewer MACs than the layer."),
    error_inputs: int = typer.Option(32, "--error-inputs", min=1, help="Training inputs the reconstruction error "
                                     "is taken over."),
    finetune_steps: int = typer.Option(200, "--finetune-steps", min=0, help="Training steps for the decomposed "
                                       "model."),
    train_steps: int = TrainStepsOption,
    rounds: int = typer.Option(10, "--rounds", min=2, help="Paired rounds: each model runs one block per round "
                               "(twice as many for the final comparison)."),
    block_time: float = BlockTimeOption,
    threads: Optional[int] = ThreadsOption,
    device: Optional[str] = DeviceOption,
    store: str = StoreOption,
    tag: List[str] = typer.Option([], "--tag", help="KEY=VALUE label for the run. Repeatable."),
    json_output: bool = typer.Option(False, "--json", help="Print the report on stdout."),
) -> None:
    """Decompose convolutions by spatial or channel SVD, each layer at the fastest rank the target measured
    within the error budget, then fine-tune and measure the model against the original."""
    from edgebench.board.torch_models import build_module
    from edgebench.decompose.decomposer import DecomposeConfig, Decomposer
    from edgebench.decompose.methods import decomposable_layers, method_named
    from edgebench.decompose.ranks import RankRule
    from edgebench.models.artifacts import atomic_target
    from edgebench.prune.baseline import prunable_model
    from edgebench.prune.bake import save_baked
    from edgebench.prune.tasks import load_task
    from edgebench.sweep.paired import Pairing

    store_location(store)
    tags = parsing.key_values(tag, "--tag")
    method_named(method)
    if max_error <= 0:
        raise UsageError(f"--max-error must be above 0, not {max_error:g}")
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise UsageError(f"--out {out} must end in .pt or .pth: decompose writes a full-module torch.save pickle")
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; give a file name ending in .pt or .pth")
    definition = available_definition(target)
    chosen_device = device_of(definition, device)
    backends = choose_backends(parsing.comma_list([backend]), definition.backends)
    chosen_task = load_task(task)
    prunable = prunable_model(model, chosen_task, "edgebench decompose")
    # Checked on the untrained model, before any training: the same layers, the same names.
    chosen_layers = decomposable_layers(build_module(prunable.resolved.recipe), method,
                                        tuple(parsing.comma_list(layers)))
    config = DecomposeConfig(method=method, rule=RankRule(max_error=max_error, min_speedup=min_speedup,
                                                          round_to=round_to, candidates=ranks),
                             error_inputs=error_inputs, finetune_steps=finetune_steps, train_steps=train_steps,
                             pairing=Pairing(rounds=rounds, block_s=block_time))
    settings = paired_settings(config.pairing, threads)
    log = stderr_log()

    out.parent.mkdir(parents=True, exist_ok=True)
    workdir = out.parent / f".{out.name}.layers"
    workdir.mkdir(exist_ok=True)
    session = None
    try:
        with run_session(store, tags={"command": "decompose", "method": method, **tags}, log=log) as session, \
                session.stage(definition, chosen_device, measure_power=False) as ready:
            log(f"run {session.run_id}: {method} SVD of {len(chosen_layers.chosen)} convolution(s) of {model} on "
                f"{definition.name} ({', '.join(backends)}), error budget {max_error:g}, store {store}")
            decomposer = Decomposer(chosen_task, ready.sweep(settings, threads=threads), backends, config, workdir,
                                    session.keep_all, log)
            outcome = decomposer.run(prunable, chosen_layers)
            report = {**outcome.report, "target": definition.name, "run_id": session.run_id, "store": store,
                      "out": str(out)}
            save_baked(out, outcome.model)
            with atomic_target(out.with_suffix(".json")) as temp_path:
                temp_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
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


def _ratio_text(ratio: Optional[dict]) -> str:
    return "-" if not ratio else f"{ratio['ratio']:.3f} [{ratio['ci95'][0]:.3f}, {ratio['ci95'][1]:.3f}]"


def _summary(report: dict, out: Path) -> None:
    console = render.stdout_console()
    table = Table(title=f"{report['model']}: {report['method']} SVD, error budget {report['max_error']:g}")
    for column in ("layer", "method", "rank", "error", *(f"layer latency ratio {b}" for b in report["backends"]),
                   "decision"):
        table.add_column(column, justify="left" if column in ("layer", "method", "decision") else "right")
    for layer in report["layers"]:
        chosen = next((trial for trial in layer["trials"] if trial["rank"] == layer["rank"]), None)
        cells = [f"{layer['rank']} / {layer['full_rank']}", f"{chosen['error']:.3g}"] if chosen else ["-", "-"]
        ratios = [_ratio_text(chosen["latency_ratio"].get(b)) if chosen else "-" for b in report["backends"]]
        table.add_row(layer["layer"], layer["method"], *cells, *ratios, "decomposed" if chosen else layer["reason"])
    console.print(table)
    original, decomposed = report["original"], report["decomposed"]
    for backend in report["backends"]:
        ratio = decomposed["latency_ratio"].get(backend)
        console.print(f"  {backend}: {original['latency_ms'][backend]:.3f} ms -> "
                      f"{decomposed['latency_ms'].get(backend) or float('nan'):.3f} ms, paired ratio "
                      f"{_ratio_text(ratio) if ratio else 'not measured'}", highlight=False)
    metric = report["metric"]
    console.print(f"  {metric} {original['accuracy']:.2%} -> {decomposed['accuracy_before_finetune']:.2%} decomposed "
                  f"-> {decomposed['accuracy']:.2%} after {report['finetune_steps']} fine-tuning steps; MACs "
                  f"{original['macs'] / 1e6:.1f} M -> {decomposed['macs'] / 1e6:.1f} M; parameters "
                  f"{original['params'] / 1e6:.2f} M -> {decomposed['params'] / 1e6:.2f} M", highlight=False)
    for warning in report["warnings"]:
        console.print(f"  warning: {warning}", highlight=False)
    console.print(f"  written to {out} and {out.with_suffix('.json')}", highlight=False)
