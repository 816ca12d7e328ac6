"""``edgebench results``: list stored runs, show one run's records, export records, show or diff
per-layer profiles, push the spool to the store, remove kept files outside a retention policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from edgebench.cli import render
from edgebench.cli.app import app
from edgebench.cli.options import BoardOption, MachineOption, StoreOption
from edgebench.errors import UsageError
from edgebench.results.artifacts import ARTIFACTS_ENV, ArtifactStore, Retention, collect
from edgebench.results.export import FORMATS, export_records
from edgebench.results.layer_diff import ProfileDiff, describe_record, diff_profiles, profiled_record
from edgebench.results.key import short_machine_id
from edgebench.results.location import store_location
from edgebench.results.push import push
from edgebench.results.record import Record
from edgebench.results.select import Scope, in_scope, runs_in_scope
from edgebench.results.spool import DEFAULT_SPOOL, SPOOL_ENV
from edgebench.results.store import RunInfo, Store

RESULTS_HELP = ("List stored runs, show a run's records, export records, show or diff per-layer profiles, push "
                "the spool, remove kept files (gc).")
RECORD_HELP = ("RUN[:N]: a run id or unique prefix and the record's position in it as `results show` lists "
               "them (N may be left out when the run holds one profiled record).")

results_app = typer.Typer(help=RESULTS_HELP, no_args_is_help=True)
app.add_typer(results_app, name="results", help=RESULTS_HELP)

# Commands type the store option as str, not Path: Path would fold the "//" of sqlite:///path.
@results_app.command("list")
def list_runs(
    store: str = StoreOption,
    machine: Optional[str] = MachineOption,
    board: Optional[str] = BoardOption,
    as_json: bool = typer.Option(False, "--json", help="Print the runs as a JSON list."),
) -> None:
    """List the runs in the store, newest first; with --machine or --board, the runs holding records
    measured there."""
    scope = Scope(machine, board)
    with Store.open(store, create=False) as opened:
        runs = runs_in_scope(opened, opened.runs(), scope)
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
    machine: Optional[str] = MachineOption,
    board: Optional[str] = BoardOption,
    as_json: bool = typer.Option(
        False, "--json", help="Print the run's records as a JSON list (without raw samples)."
    ),
) -> None:
    """Show a run and a table of its records (with --machine or --board, those measured there)."""
    scope = Scope(machine, board)
    with Store.open(store, create=False) as opened:
        run = opened.get_run(run_id)
        every = opened.records(run.id)
    records = in_scope(every, scope, f"run {run.id}")
    if as_json:
        _print_json([record.to_json_dict(with_samples=False) for record in records])
        return
    console = render.stdout_console()
    console.print(_run_summary(run, every))
    title = f"{len(records)} records" + (f" of {scope}" if scope else "")
    console.print(render.records_table(records, title=title))
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


@results_app.command("layers")
def layers(
    record_a: str = typer.Argument(..., help=f"The record whose profile to show (A). {RECORD_HELP}"),
    record_b: Optional[str] = typer.Argument(None, help="A second record (B): diff its profile against A's."),
    depth: Optional[int] = typer.Option(None, "--depth", help="Diff: join modules by the first N parts of their "
                                        "path (2: layer1.0.conv1 counts as layer1.0)."),
    store: str = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="Print the rows, or the diff, as JSON."),
) -> None:
    """A record's per-layer profile (`edgebench run --profile-layers`), or two profiles diffed per
    model module (dense against pruned, eager against onnxruntime), largest change first."""
    with Store.open(store, create=False) as opened:
        name_a, a = profiled_record(opened, record_a)
        named_b = profiled_record(opened, record_b) if record_b is not None else None
    if named_b is None:
        if as_json:
            _print_json(a.layer_profile)
        else:
            render.stdout_console().print(_profile_table(name_a, a))
        return
    name_b, b = named_b
    diff = diff_profiles(a.layer_profile or [], b.layer_profile or [], depth)
    if as_json:
        _print_json({"a": name_a, "b": name_b, **diff.to_json_dict()})
    else:
        render.stdout_console().print(_diff_table(f"A {name_a} ({describe_record(a)})",
                                                  f"B {name_b} ({describe_record(b)})", diff))


@results_app.command("push")
def push_spool(
    spool: str = typer.Option(str(DEFAULT_SPOOL), "--spool", envvar=SPOOL_ENV, show_envvar=True,
                              help="The spool: where runs went on while their results server was unreachable."),
    store: str = StoreOption,
) -> None:
    """Upload the spool's runs and records to the store (the lab's server), then empty the spool of
    them. Safe to repeat: a run or record already there is not stored twice."""
    if not Path(spool).is_file():
        raise UsageError(f"no spool at {spool}: nothing to push")
    if store_location(spool).display == store_location(store).display:
        raise UsageError(f"--spool and --store are the same file ({spool}); give the store to push to")
    with Store.open(spool, create=False) as source, Store.open(store) as target:
        summary = push(source, target)
        line = summary.line(source.location, target.location)
    typer.echo(line, err=True)


@results_app.command("gc")
def collect_artifacts(
    keep_days: Optional[float] = typer.Option(
        None, "--keep-days", min=0, help="Keep the files of records measured in the last N days."),
    keep_last: Optional[int] = typer.Option(
        None, "--keep-last", min=1, help="Keep the files of each key's N newest records (a model by its name, "
        "as `edgebench regress` follows it)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be removed; remove nothing."),
    store: str = StoreOption,
) -> None:
    """Remove kept files (models, exports, engines) that no record within the policy lists; the
    records stay. Without --keep-days or --keep-last, only files no record lists go. With both, a
    record within either keeps its files. Files kept in the last hour always stay (a run in progress)."""
    artifacts = ArtifactStore.beside(store)
    if artifacts is None:
        raise UsageError(f"an in-memory store keeps no files; set {ARTIFACTS_ENV} to name a directory")
    with Store.open(store, create=False) as opened:
        records = opened.records(with_samples=False)
    collection = collect(artifacts, records, Retention(keep_days, keep_last), dry_run=dry_run)
    typer.echo(collection.line(artifacts.root), err=True)


def _profile_table(name: str, record: Any) -> Table:
    table = Table(title=f"{name} ({describe_record(record)}): profiled runs, slower than the timed loop")
    for column in ("layer", "module", "type", "calls", "median ms", "share"):
        table.add_column(column, justify="right" if column in ("calls", "median ms", "share") else "left")
    for row in record.layer_profile:
        table.add_row(Text(row["layer"]), Text(row.get("module") or "-"), Text(str(row.get("type") or "-")),
                      str(row.get("calls", "-")), f"{row['median_ms']:.3f}", _percent(row.get("share")))
    return table


def _diff_table(label_a: str, label_b: str, diff: ProfileDiff) -> Table:
    table = Table(title=f"{label_b} against {label_a}, per module, largest change first")
    for column in ("module", "A ms", "B ms", "change ms", "B/A", "A share", "B share"):
        table.add_column(column, justify="left" if column == "module" else "right", no_wrap=column != "module")
    for change in diff.modules:
        ratio = f"only in {change.only_in}" if change.only_in else f"{change.ratio:.2f}"
        table.add_row(Text(change.module), _ms(change.a_ms), _ms(change.b_ms), f"{change.change_ms:+.3f}", ratio,
                      _percent(change.a_share), _percent(change.b_share))
    table.add_row("total", _ms(diff.total_a_ms), _ms(diff.total_b_ms), f"{diff.total_b_ms - diff.total_a_ms:+.3f}",
                  f"{diff.total_b_ms / diff.total_a_ms:.2f}" if diff.total_a_ms else "-", "", "", style="bold")
    return table


def _ms(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


def _percent(share: Optional[float]) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


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


def _run_summary(run: RunInfo, records: list[Record]) -> Table:
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    boards = ", ".join(sorted({record.board for record in records if record.board})) or "-"
    for name, value in [*run.summary_rows(), ("board", boards)]:
        summary.add_row(name, Text(value))
    return summary

