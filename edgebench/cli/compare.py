"""``edgebench compare``: the speedup of one set of records over another, with intervals."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgebench.cli import render
from edgebench.cli.render import boards, markdown_cell
from edgebench.cli.app import app
from edgebench.cli.options import BoardOption, MachineOption, StoreOption
from edgebench.cli.pruned_table import print_pruned
from edgebench.cli.resolution_table import print_resolutions
from edgebench.errors import UsageError
from edgebench.results.compare import Comparison, Pair, compare, describe, varied_fields
from edgebench.results.pruned import pruned_variants
from edgebench.results.record import Record
from edgebench.results.resolution import swept_series
from edgebench.results.select import (
    DEFAULT_METHOD,
    SELECTABLE_FIELDS,
    Scope,
    in_scope,
    parse_selector,
    select,
    stored_runs,
)
from edgebench.results.store import Store

FORMATS = ("table", "markdown", "csv", "json")
SELECTOR_HELP = (f"BACKEND, FIELD=VALUE ({', '.join(SELECTABLE_FIELDS)}), run=ID or tag:KEY=VALUE; "
                 "conditions joined by commas must all hold.")
_UNPAIRED_SHOWN = 3


@app.command("compare")
def compare_command(
    baseline: Optional[str] = typer.Option(None, "--baseline", help=f"Baseline records: {SELECTOR_HELP}"),
    contender: Optional[str] = typer.Option(None, "--contender", help="Contender records, in the same forms."),
    pruned: bool = typer.Option(
        False, "--pruned", help="Instead of --baseline/--contender: each `edgebench prune` run's final model "
        "against its baseline, with MACs, parameters, weights and ONNX sizes and the task's metric."),
    resolution: bool = typer.Option(
        False, "--resolution", help="Instead of --baseline/--contender: p50 with its 95% interval and frames per "
        "second (batch x 1000 / p50) against input shape, per model, batch, backend and target/mode/device; the "
        "latest record of each key (measure a sweep with --input-shape 3x256x512,3x512x1024)."),
    run_id: Optional[str] = typer.Option(
        None, "--run", help="Only this run's records (id or unique prefix). Default: every run, the latest "
        "record of each key."),
    machine: Optional[str] = MachineOption,
    board: Optional[str] = BoardOption,
    store: str = StoreOption,
    fmt: str = typer.Option("table", "--format", help=f"One of: {', '.join(FORMATS)}."),
    as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
) -> None:
    """Speedup (baseline p50 / contender p50) per model, input shape and batch, with a 95% interval
    that counts the variation between worker processes. --machine and --board restrict both sides."""
    fmt = _output_format(fmt, as_json)
    scope = Scope(machine, board)
    if pruned and resolution:
        raise UsageError("--pruned and --resolution are two views; give one")
    if pruned or resolution:
        if baseline or contender:
            view = ("--pruned compares each prune run's final model with its own baseline" if pruned
                    else "--resolution shows each key's latest record against input shape")
            raise UsageError(f"{view}; give it without --baseline and --contender")
        with Store.open(store, create=False) as opened:
            stored_runs(opened)
            records = _scoped_records(opened, run_id, scope)
        if pruned:
            print_pruned(pruned_variants(records), fmt)
        else:
            print_resolutions(swept_series(records), fmt)
        return
    if baseline is None or contender is None:
        raise UsageError("compare needs --baseline and --contender (or --pruned, or --resolution)")
    base_selector, cont_selector = parse_selector(baseline), parse_selector(contender)
    with Store.open(store, create=False) as opened:
        runs = stored_runs(opened)
        records = _scoped_records(opened, run_id, scope)
    comparison = compare(select(records, base_selector, runs), select(records, cont_selector, runs),
                         varied_fields(base_selector, cont_selector))
    if not comparison.pairs:
        reasons = "; ".join(f"{describe(u.record)}: {u.reason}" for u in comparison.unpaired[:_UNPAIRED_SHOWN])
        raise UsageError(f"no baseline record pairs with a contender record: {reasons}")
    _PRINTERS[fmt](comparison)


def _scoped_records(store: Store, run_id: str | None, scope: Scope) -> list[Record]:
    """The records ``--run`` allows (every run's when not given) in ``scope``."""
    where = f"run {store.get_run(run_id).id}" if run_id is not None else "the store"
    return in_scope(store.records(run_id), scope, where)


def _output_format(fmt: str, as_json: bool) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"--format takes one of {', '.join(FORMATS)}, not {fmt!r}")
    if as_json and fmt not in ("table", "json"):
        raise UsageError(f"--json and --format {fmt} ask for two formats; give one")
    return "json" if as_json else fmt


def rows(comparison: Comparison) -> list[dict[str, Any]]:
    """One flat row per pair: the csv columns, and what the table and markdown show."""
    return [
        {
            "model": p.baseline.model,
            "batch": p.baseline.batch,
            "input_shape": p.baseline.input_shape,
            "precision": p.baseline.precision,
            "method": _sides(p, "method"),
            "machine_id": _sides(p, "machine_id"),
            "board": _sides(p, "board"),
            "baseline": _label(p.baseline, comparison.varied),
            "contender": _label(p.contender, comparison.varied),
            "baseline_p50_ms": p.baseline.latency_ms.p50,
            "contender_p50_ms": p.contender.latency_ms.p50,
            "speedup": p.speedup,
            "speedup_ci95_low": p.speedup_ci[0],
            "speedup_ci95_high": p.speedup_ci[1],
            "speedup_ci95_samples_low": p.speedup_ci_samples[0],
            "speedup_ci95_samples_high": p.speedup_ci_samples[1],
            "interval": p.interval,
            "energy_ratio": p.energy_ratio,
            "baseline_run": p.baseline.run_id,
            "contender_run": p.contender.run_id,
            "notes": "; ".join(p.notes),
        }
        for p in comparison.pairs
    ]


def _with_board(comparison: Comparison) -> bool:
    """A board column where the pairs' records come from more than one board and the labels do not
    already name them (``--baseline board=A --contender board=B``)."""
    measured = [record for pair in comparison.pairs for record in (pair.baseline, pair.contender)]
    return "board" not in comparison.varied and len(boards(measured)) > 1


def _with_shape(comparison: Comparison) -> bool:
    """An input shape beside the model where the pairs hold more than one (a resolution sweep)."""
    return len({pair.baseline.input_shape for pair in comparison.pairs}) > 1


def _sides(pair: Pair, name: str) -> str:
    """A key field's value, or baseline/contender values when the comparison varies it."""
    base, cont = str(getattr(pair.baseline, name)), str(getattr(pair.contender, name))
    return base if base == cont else f"{base}/{cont}"


def _label(record: Record, varied: tuple[str, ...]) -> str:
    """What tells the two sides apart: the varied fields' values, or the run when none varies."""
    return "/".join(str(getattr(record, name)) for name in varied) if varied else record.run_id


def _print_table(comparison: Comparison) -> None:
    console = render.stdout_console()
    table = Table(title="speedup = baseline p50 / contender p50, 95% interval counting worker processes",
                  box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    with_board = _with_board(comparison)
    for name in ("model", *(["board"] if with_board else []), "baseline", "contender"):  # free text wraps
        table.add_column(name, min_width=8, overflow="fold")
    for name in ("base ms", "cont ms", "speedup", "95% CI"):
        table.add_column(name, justify="right", no_wrap=True)
    with_energy = any(pair.energy_ratio is not None for pair in comparison.pairs)
    if with_energy:
        table.add_column("energy", justify="right", no_wrap=True)
    with_shape = _with_shape(comparison)
    for row in rows(comparison):
        method = "" if row["method"] == DEFAULT_METHOD else f" ({row['method']})"
        shape = f" {row['input_shape']}" if with_shape else ""
        cells = [Text(f"{row['model']}{shape} b{row['batch']} {row['precision']}{method}"),
                 *([Text(row["board"])] if with_board else []), Text(row["baseline"]), Text(row["contender"]),
                 f"{row['baseline_p50_ms']:.3f}", f"{row['contender_p50_ms']:.3f}", f"{row['speedup']:.2f}x",
                 _interval(row)]
        table.add_row(*cells, *([_ratio(row["energy_ratio"])] if with_energy else []))
    console.print(table)
    _print_notes(console, comparison)


def _print_markdown(comparison: Comparison) -> None:
    with_board, with_shape = _with_board(comparison), _with_shape(comparison)
    header = ["model", *(["input"] if with_shape else []), "batch", "precision", *(["board"] if with_board else []),
              "baseline", "contender", "baseline p50 ms", "contender p50 ms", "speedup", "95% CI", "energy ratio",
              "notes"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows(comparison):
        cells = [row["model"], *([row["input_shape"]] if with_shape else []), row["batch"], row["precision"],
                 *([row["board"]] if with_board else []),
                 row["baseline"], row["contender"],
                 f"{row['baseline_p50_ms']:.3f}", f"{row['contender_p50_ms']:.3f}", f"{row['speedup']:.2f}x",
                 _interval(row), _ratio(row["energy_ratio"]), row["notes"]]
        lines.append("| " + " | ".join(markdown_cell(cell) for cell in cells) + " |")
    typer.echo("\n".join(lines))
    _print_notes(Console(stderr=True, highlight=False), comparison)


def _print_csv(comparison: Comparison) -> None:
    table = rows(comparison)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(table[0]))
    writer.writeheader()
    writer.writerows(table)
    typer.echo(buffer.getvalue(), nl=False)
    _print_notes(Console(stderr=True, highlight=False), comparison)


def _print_json(comparison: Comparison) -> None:
    payload = {
        "varied": list(comparison.varied),
        "pairs": [pair.to_json_dict() for pair in comparison.pairs],
        "unpaired": [{"side": u.side, "record": describe(u.record), "reason": u.reason}
                     for u in comparison.unpaired],
    }
    typer.echo(json.dumps(payload, indent=2))


def _print_notes(console: Console, comparison: Comparison) -> None:
    """Pair notes and unpaired records in full, so no caveat is cut off by a column width."""
    for pair in comparison.pairs:
        for note in pair.notes:
            console.print(Text(f"{_pair_name(pair)}: {note}", style="yellow"))
    for unpaired in comparison.unpaired:
        console.print(Text(f"unpaired {unpaired.side}: {describe(unpaired.record)}: {unpaired.reason}",
                           style="yellow"))


def _pair_name(pair: Pair) -> str:
    shape = f" {pair.baseline.input_shape}" if pair.baseline.input_shape else ""
    return f"{pair.baseline.model}{shape} b{pair.baseline.batch} {pair.baseline.precision}"


def _interval(row: dict[str, Any]) -> str:
    return f"[{row['speedup_ci95_low']:.2f}, {row['speedup_ci95_high']:.2f}]"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


_PRINTERS = {"table": _print_table, "markdown": _print_markdown, "csv": _print_csv, "json": _print_json}
