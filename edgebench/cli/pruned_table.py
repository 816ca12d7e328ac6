"""``edgebench compare --pruned``: the per-network table of pruned variants, in every format."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from edgebench.cli import render
from edgebench.cli.render import markdown_cell
from edgebench.errors import UsageError
from edgebench.results.pruned import PrunedVariant

MB = 1e6
# (column, row field, scale, decimals): figures shown before -> after (change).
_FIGURES = (("MACs M", "macs", 1e6, 1), ("params M", "params", 1e6, 2),
            ("weights MB", "state_dict_bytes", MB, 1), ("ONNX MB", "onnx_bytes", MB, 1))


def print_pruned(variants: Sequence[PrunedVariant], fmt: str) -> None:
    if not variants:
        raise UsageError("no pruned variants in these records: `edgebench prune` ends each run with its final "
                         "model measured against its baseline; run it first (or pick its --run)")
    rows = [variant.row() for variant in variants]
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        typer.echo(buffer.getvalue(), nl=False)
    else:
        header, cells = _header(), [_cells(row) for row in rows]
        if fmt == "markdown":
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(markdown_cell(cell) for cell in line) + " |" for line in cells]
            typer.echo("\n".join(lines))
        else:
            table = Table(title="pruned variants: baseline -> final (change); speedup = baseline p50 / final p50, "
                          "95% interval", box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
            for index, name in enumerate(header):
                table.add_column(name, overflow="fold", justify="left" if index < 2 else "right")
            for line in cells:
                table.add_row(*line)
            render.stdout_console().print(table)


def _header() -> list[str]:
    return ["model", "backend / device", "metric", *(name for name, *_ in _FIGURES), "p50 ms", "speedup [95% CI]"]


def _cells(row: dict[str, Any]) -> list[str]:
    metric = row["metric"]
    cells = [row["model"], f"{row['backend']} / {row['device']}",
             f"{metric} {_number(row[f'{metric} before'], 1, 3)} -> {_number(row[f'{metric} after'], 1, 3)}"]
    for _, field, scale, decimals in _FIGURES:
        cells.append(_before_after(row[f"{field} before"], row[f"{field} after"], row[f"{field} change %"],
                                   scale, decimals))
    cells.append(_before_after(row["p50 ms before"], row["p50 ms after"], row["latency change %"], 1, 2))
    cells.append(f"{row['speedup']:.2f}x [{row['speedup ci95 low']:.2f}, {row['speedup ci95 high']:.2f}]")
    return cells


def _before_after(before: Optional[float], after: Optional[float], change: Optional[float], scale: float,
                  decimals: int) -> str:
    if before is None and after is None:
        return "-"
    shown = f"{_number(before, scale, decimals)} -> {_number(after, scale, decimals)}"
    return shown if change is None else f"{shown} ({change:+.1f}%)"


def _number(value: Optional[float], scale: float, decimals: int) -> str:
    return "-" if value is None else f"{value / scale:.{decimals}f}"
