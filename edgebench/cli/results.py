"""``edgebench results``: list stored runs, show one run's records, export records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from edgebench.cli import render
from edgebench.cli.app import app
from edgebench.cli.options import StoreOption
from edgebench.results.export import FORMATS, export_records
from edgebench.results.key import short_machine_id
from edgebench.results.store import RunInfo, Store

RESULTS_HELP = "List stored runs, show a run's records, export records."

results_app = typer.Typer(help=RESULTS_HELP, no_args_is_help=True)
app.add_typer(results_app, name="results", help=RESULTS_HELP)

# Commands type the store option as str, not Path: Path would fold the "//" of sqlite:///path.
@results_app.command("list")
def list_runs(
    store: str = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="Print the runs as a JSON list."),
) -> None:
    """List the runs in the store, newest first."""
    with Store.open(store, create=False) as opened:
        runs = opened.runs()
    if as_json:
        _print_json([run.model_dump(mode="json") for run in runs])
    elif not runs:
        typer.echo(f"no runs in {store}", err=True)
    else:
        render.stdout_console().print(_runs_table(runs))


@results_app.command("show")
def show_run(
    run_id: str = typer.Argument(..., help="Run id, or a prefix that matches one run."),
    store: str = StoreOption,
    as_json: bool = typer.Option(
        False, "--json", help="Print the run's records as a JSON list (without raw samples)."
    ),
) -> None:
    """Show a run and a table of its records."""
    with Store.open(store, create=False) as opened:
        run = opened.get_run(run_id)
        records = opened.records(run.id)
    if as_json:
        _print_json([record.to_json_dict(with_samples=False) for record in records])
        return
    console = render.stdout_console()
    console.print(_run_summary(run))
    console.print(render.records_table(records, title=f"{len(records)} records"))
    render.print_details(console, records)


@results_app.command("export")
def export(
    fmt: str = typer.Option(..., "--format", help=f"One of: {', '.join(FORMATS)}."),
    out: Path = typer.Option(..., "--out", help="File to write; missing directories are created."),
    run_id: Optional[str] = typer.Option(
        None, "--run", help="Run id or unique prefix; every run when left out (pytest-benchmark: the latest)."
    ),
    store: str = StoreOption,
) -> None:
    """Export records as csv, parquet (flattened, one row per record), json (full records) or
    pytest-benchmark (one run's measured records, for `pytest-benchmark compare`)."""
    with Store.open(store, create=False) as opened:
        count = export_records(opened, fmt, out, run_id)
    if count == 0:
        typer.echo(f"note: no records to export; wrote an empty {fmt} file to {out}", err=True)
    else:
        typer.echo(f"wrote {count} records to {out}", err=True)


def _print_json(payload: Any) -> None:
    # Plain echo, not rich: rich would wrap long lines and break the JSON.
    typer.echo(json.dumps(payload, indent=2))


def _runs_table(runs: list[RunInfo]) -> Table:
    table = Table(title="Runs, newest first")
    # The id starts with the UTC start time, so it doubles as the "started" column.
    table.add_column("run id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("records", justify="right")
    table.add_column("method")
    table.add_column("host")
    table.add_column("machine")
    table.add_column("git", no_wrap=True)
    table.add_column("tags")
    for run in runs:
        table.add_row(
            run.id,
            run.status,
            str(run.record_count),
            ", ".join(run.methods) or "-",
            Text(run.host),
            ", ".join(short_machine_id(machine) for machine in run.machine_ids) or "-",
            (run.git_commit or "-")[:10],
            Text(run.tags_text),
        )
    return table


def _run_summary(run: RunInfo) -> Table:
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    for name, value in run.summary_rows():
        summary.add_row(name, Text(value))
    return summary

