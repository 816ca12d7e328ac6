"""``edgebench report``: a run as a static HTML page with figures, to open in a browser or keep from CI."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgebench.cli.app import app
from edgebench.cli.options import BoardOption, MachineOption, StoreOption
from edgebench.results.select import DEFAULT_METHOD, METHODS, Scope
from edgebench.results.store import Store


@app.command("report")
def report_command(
    out: Path = typer.Option(..., "--out", help="Directory for index.html and its figures; created when missing."),
    run_id: Optional[str] = typer.Option(
        None, "--run", help="Run id or unique prefix. Default: the latest run with records of the method "
        "(measured on the --machine or --board when given)."),
    method: Optional[str] = typer.Option(
        None, "--method", help=f"Records to report and whose history to draw: {', '.join(METHODS)}. "
        f"Default: {DEFAULT_METHOD}."),
    machine: Optional[str] = MachineOption,
    board: Optional[str] = BoardOption,
    store: str = StoreOption,
) -> None:
    """Latency distributions, speedups with intervals, power and energy, p50 history with regressions marked,
    every record with its warnings, and the environment: one page, no network needed to view it.
    --machine and --board report only the records measured there (by default from the latest run holding some)."""
    scope = Scope(machine, board)
    # Imported here: matplotlib takes a moment to load, and only this command needs it.
    from edgebench.report.write import write_report

    with Store.open(store, create=False) as opened:
        index = write_report(opened, out, run_id, method, scope)
    typer.echo(f"wrote {index}; open it in a browser: {index.resolve().as_uri()}", err=True)
