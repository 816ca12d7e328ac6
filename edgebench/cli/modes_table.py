"""The per-mode table of two models (``edgebench prune --mode A,B``): report.json's ``modes`` for the terminal."""

from __future__ import annotations

from typing import Any, Optional

from rich import box
from rich.table import Table


def modes_table(table: dict[str, Any]) -> Table:
    """One row per mode and backend: latency, the paired ratio, average power and energy of each model."""
    first, second = table["roles"]
    shown = Table(title=f"per power mode: {first} -> {second}; ratio = {second} / {first} latency, 95% interval; "
                  "power and energy from each model measured alone", box=box.SIMPLE_HEAD, collapse_padding=True,
                  pad_edge=False)
    for index, name in enumerate(("mode", "backend", "p50 ms", "ratio [95% CI]", "avg power W",
                                  "energy mJ/inference", "power source")):
        shown.add_column(name, overflow="fold", justify="left" if index in (0, 1, 6) else "right")
    for row in table["rows"]:
        ratio = row["latency_ratio"]
        shown.add_row(row["mode"], row["backend"], _pair(row, table["roles"], "latency_ms", 3),
                      f"{ratio['ratio']:.3f} [{ratio['ci95'][0]:.3f}, {ratio['ci95'][1]:.3f}]" if ratio else "-",
                      _pair(row, table["roles"], "avg_power_w", 2), _pair(row, table["roles"], "mj_per_inference", 2),
                      row["power_source"] or "none")
    return shown


def _pair(row: dict[str, Any], roles: list[str], field: str, decimals: int) -> str:
    return " -> ".join(_number(row[role][field], decimals) for role in roles)


def _number(value: Optional[float], decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"
