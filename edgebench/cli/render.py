"""Tables and one-line summaries of records for the terminal.

User-supplied text (model names, errors) goes in as ``rich.text.Text`` so brackets in it are
never read as markup.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgebench.results.record import Record

BASELINE_BACKEND = "eager"
STATUS_STYLES = {"ok": "green", "error": "red", "unavailable": "yellow"}


def summary_line(record: Record) -> Text:
    """One line per finished measurement, for the progress log."""
    line = Text(record.status, style=STATUS_STYLES.get(record.status, ""))
    line.append(f" {record.model} b{record.batch} {record.backend}: ")
    if record.latency_ms is None:
        return line.append(str(record.error))
    line.append(f"p50 {p50_with_interval(record)} ms")
    if record.warnings:
        line.append(f" ({len(record.warnings)} warning(s))", style="yellow")
    return line


def speedups(records: Sequence[Record], baseline: str = BASELINE_BACKEND) -> dict[int, float]:
    """Baseline p50 / record p50 for every ok record whose model and batch have an ok baseline,
    keyed by ``id(record)``. A plain ratio of medians; ``edgebench compare`` gives intervals."""
    def key(r: Record) -> tuple:
        return (r.model, r.model_fingerprint, r.batch, r.device, r.target, r.mode)

    base = {key(r): r.latency_ms.p50 for r in records if r.backend == baseline and r.latency_ms}
    return {id(r): base[key(r)] / r.latency_ms.p50 for r in records if r.latency_ms and key(r) in base}


def records_table(records: Sequence[Record], title: str | None = None) -> Table:
    ratios = speedups(records)
    table = Table(title=title)
    table.add_column("model")
    table.add_column("batch", justify="right")
    table.add_column("backend")
    table.add_column("status", no_wrap=True)
    table.add_column(Text("p50 ms [95% CI]"), justify="right", no_wrap=True)
    table.add_column("p99 ms", justify="right", no_wrap=True)
    table.add_column("items/s", justify="right")
    table.add_column(f"vs {BASELINE_BACKEND}", justify="right")
    table.add_column("samples", justify="right")
    table.add_column("warnings", justify="right")
    for r in records:
        ratio = ratios.get(id(r))
        table.add_row(
            Text(r.model), str(r.batch), Text(r.backend),
            Text(r.status, style=STATUS_STYLES.get(r.status, "")),
            p50_with_interval(r),
            _number(r.latency_ms.p99 if r.latency_ms else None, 3),
            _number(r.throughput_ips, 1),
            "-" if ratio is None else f"{ratio:.2f}x",
            str(r.iterations),
            str(len(r.warnings)),
        )
    return table


def print_details(console: Console, records: Sequence[Record]) -> None:
    """Errors and warnings in full, under the table, so no caveat is cut off."""
    for r in records:
        head = f"{r.model} b{r.batch} {r.backend}: "
        if r.error:
            console.print(Text(head + f"{r.status}: {r.error}", style=STATUS_STYLES.get(r.status, "")))
        for warning in r.warnings:
            console.print(Text(head + f"warning: {warning}", style="yellow"))


def p50_with_interval(record: Record) -> str:
    if record.latency_ms is None:
        return "-"
    low, high = record.latency_ms.ci95
    return f"{record.latency_ms.p50:.3f} [{low:.3f}, {high:.3f}]"


def _number(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"
