"""``edgebench compare --resolution``: latency and frames per second against input shape, per
backend and target, in every format."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgebench.cli import render
from edgebench.cli.render import boards, markdown_cell
from edgebench.results.record import Record
from edgebench.results.resolution import resolution_row, resolution_rows

TITLE = "latency and frames per second against input shape; fps = batch x 1000 / p50"


def print_resolutions(series: Sequence[Sequence[Record]], fmt: str) -> None:
    """The series (``results.resolution.swept_series``) as ``fmt``; errors and warnings in full
    under a table, on stderr under csv or markdown."""
    rows = resolution_rows(series)
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    records = [record for points in series for record in points]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "warnings": "; ".join(row["warnings"])} for row in rows)
        typer.echo(buffer.getvalue(), nl=False)
        render.print_details(Console(stderr=True, highlight=False), records)
        return
    with_board = len(boards(records)) > 1
    header = ["model", "input", "b", "precision", "backend", "target/mode/device", *(["board"] if with_board else []),
              "p50 ms", "95% CI", "fps", "warn"]
    groups = [[_cells(resolution_row(record), with_board) for record in points] for points in series]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(markdown_cell(cell) for cell in cells) + " |" for group in groups for cells in group]
        typer.echo("\n".join(lines))
        render.print_details(Console(stderr=True, highlight=False), records)
        return
    table = Table(title=TITLE, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for index, name in enumerate(header):
        table.add_column(name, justify="right" if name in ("b", "p50 ms", "95% CI", "fps", "warn") else "left",
                         no_wrap=index > 0)
    for group in groups:  # a rule between series: each reads top to bottom, smallest input first
        for cells in group:
            table.add_row(*(Text(cell) for cell in cells))  # user text: brackets are not markup
        table.add_section()
    console = render.stdout_console()
    console.print(table)
    render.print_details(console, records)


def _cells(row: dict[str, Any], with_board: bool) -> list[str]:
    measured = row["p50_ms"] is not None
    return [row["model"], row["input_shape"] or "-", str(row["batch"]), row["precision"], row["backend"],
            f"{row['target']}/{row['mode']}/{row['device']}", *([row["board"] or "-"] if with_board else []),
            f"{row['p50_ms']:.3f}" if measured else row["status"],
            f"[{row['p50_ci95_low_ms']:.3f}, {row['p50_ci95_high_ms']:.3f}]" if measured else "",
            f"{row['fps']:.1f}" if row["fps"] is not None else "-",
            str(len(row["warnings"]) or "")]
