"""``edgebench bake``: masked or zeroed channels out, a smaller hook-free model in the same kind of file."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from edgebench.cli import render
from edgebench.cli.app import app
from edgebench.cli.paired_setup import stderr_log
from edgebench.interrupts import exit_status


@app.command("bake")
def bake_command(
    model: str = typer.Argument(..., help="The pruned PyTorch model, as 'edgebench run' takes it: a full-module "
                                ".pt/.pth file (torch.save), package.module:callable or torchvision:NAME[?k=v]."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the baked model: a full-module .pt or .pth "
                             "file (torch.save), which 'edgebench run --model' and torch.load(weights_only=False) "
                             "take."),
    input_shape: List[str] = typer.Option(
        [], "--input-shape", help="Shape after the batch dimension, e.g. 3x224x224. Default: from the model "
        "(torchvision); required for a .pt file or a callable."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Intra-op threads for the measurement. "
                                          "Default: PyTorch's own."),
    measure: bool = typer.Option(True, "--measure/--no-measure", help="Measure the masked model against the baked "
                                 "one in a paired eager run on this machine."),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Remove pruned channels for real: a smaller, hook-free model with the same outputs."""
    from edgebench.prune.bake import bake, check_out, load_for_bake, measure_speedup, save_baked

    check_out(out, model)
    log = stderr_log()

    loaded = load_for_bake(model, input_shape)
    log(f"baking {loaded.resolved.name} at input {loaded.input_shape}")
    baked = bake(loaded.module, loaded.example_input, loaded.part)
    save_baked(out, baked.model)
    log(f"written to {out}")
    speedup = None
    if measure:
        try:
            with tempfile.TemporaryDirectory(prefix="edgebench-bake-") as workdir:
                speedup = measure_speedup(loaded.module, baked.model, loaded, Path(workdir), threads, log=log)
        except KeyboardInterrupt as interrupt:
            log(f"interrupted: the baked model is written to {out}; the speedup was not measured")
            raise typer.Exit(exit_status(interrupt))
    report = {"model": loaded.resolved.name, "out": str(out), "input_shape": list(loaded.example_input.shape),
              **baked.as_dict(), "speedup": speedup}
    if json_output:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _summary(report)


def _summary(report: dict) -> None:
    console = render.stdout_console()
    if report["layers"]:
        table = Table(title=f"{report['model']} baked into {report['out']}")
        for column in ("layer", "group", "channels before", "channels after"):
            table.add_column(column, justify="left" if column in ("layer", "group") else "right")
        for layer in report["layers"]:
            table.add_row(layer["name"], layer["group"] or "-", str(layer["before"]), str(layer["after"]))
        console.print(table)
    else:
        console.print(f"{report['model']}: no channel was removable; the hook-free model is written to "
                      f"{report['out']}", highlight=False)
    params, macs = report["params"], report["macs"]
    console.print(f"channels removed {report['channels_removed']}; parameters {params['before'] / 1e6:.3f} M -> "
                  f"{params['after'] / 1e6:.3f} M; MACs {macs['before'] / 1e6:.1f} M -> {macs['after'] / 1e6:.1f} M; "
                  f"max abs output difference {report['max_abs_diff']:.3g}", highlight=False)
    for kept in report["kept"]:
        console.print(f"kept {kept['channels']} zero channel(s) of {kept['scope']} {kept['where']}: {kept['reason']}",
                      highlight=False)
    for mask in report["masks"]:
        if not mask["structured"]:
            console.print(f"unstructured mask {mask['name']}: {mask['zero_fraction']:.0%} zero, "
                          f"{mask['zero_channels']} of {mask['channels']} whole channels; scattered zeros cannot be "
                          "baked into smaller dense layers", highlight=False)
    speedup = report["speedup"]
    if speedup is None:
        return
    if "error" in speedup:
        console.print(f"speedup not measured: {speedup['error']}", highlight=False)
        return
    low, high = speedup["ci95"]
    console.print(f"speedup {speedup['speedup']:.2f}x [{low:.2f}, {high:.2f}] 95% interval: masked "
                  f"{speedup['masked_p50_ms']:.3f} ms -> baked {speedup['baked_p50_ms']:.3f} ms p50, paired eager "
                  f"measurement on this machine ({speedup['latency_ratio']['rounds']} rounds)", highlight=False)
