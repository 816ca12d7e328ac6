"""Tables and one-line summaries of records for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from edgebench.results.record import Record

BASELINE_BACKEND = "eager"


def summary_line(record: Record) -> str:
    """One line per finished measurement, for the progress log."""
    head = f"{record.model} b{record.batch} {record.backend}"
    if record.status != "ok" or record.latency_ms is None:
        return f"[red]{record.status}[/red] {head}: {record.error}"
    lat = record.latency_ms
    flag = f" [yellow]({len(record.warnings)} warning(s))[/yellow]" if record.warnings else ""
    return f"[green]ok[/green] {head}: p50 {lat.p50:.3f} ms [{lat.ci95[0]:.3f}, {lat.ci95[1]:.3f}]{flag}"


def speedups(records: Sequence[Record], baseline: str = BASELINE_BACKEND) -> dict[int, float]:
    """Baseline p50 / record p50 for every ok record whose model and batch have an ok baseline,
    keyed by ``id(record)``. A plain ratio of medians; ``edgebench compare`` gives intervals."""
    base = {
        (r.model, r.model_fingerprint, r.batch, r.device): r.latency_ms.p50
        for r in records
        if r.backend == baseline and r.status == "ok" and r.latency_ms
    }
    ratios = {}
    for r in records:
        key = (r.model, r.model_fingerprint, r.batch, r.device)
        if r.status == "ok" and r.latency_ms and key in base:
            ratios[id(r)] = base[key] / r.latency_ms.p50
    return ratios


def records_table(records: Sequence[Record], title: str | None = None) -> Table:
    ratios = speedups(records)
    table = Table(title=title, show_lines=False)
    for column, justify in [
        ("model", "left"), ("batch", "right"), ("backend", "left"), ("status", "left"),
        ("p50 ms", "right"), ("95% CI", "right"), ("p99 ms", "right"), ("items/s", "right"),
        (f"vs {BASELINE_BACKEND}", "right"), ("n", "right"), ("notes", "left"),
    ]:
        table.add_column(column, justify=justify)
    for r in records:
        lat = r.latency_ms
        ratio = ratios.get(id(r))
        table.add_row(
            r.model, str(r.batch), r.backend,
            r.status if r.status == "ok" else f"[red]{r.status}[/red]",
            f"{lat.p50:.3f}" if lat else "-",
            f"{lat.ci95[0]:.3f}-{lat.ci95[1]:.3f}" if lat else "-",
            f"{lat.p99:.3f}" if lat else "-",
            f"{r.throughput_ips:.1f}" if r.throughput_ips else "-",
            f"{ratio:.2f}x" if ratio is not None else "-",
            str(r.iterations),
            _notes(r),
        )
    return table


def print_details(console: Console, records: Sequence[Record]) -> None:
    """Errors and warnings in full, under the table, so no caveat is cut off."""
    for r in records:
        for line in ([f"[red]error[/red]: {r.error}"] if r.error else []) + [
            f"[yellow]warning[/yellow]: {w}" for w in r.warnings
        ]:
            console.print(f"{r.model} b{r.batch} {r.backend}: {line}", highlight=False)


def _notes(record: Record) -> str:
    if record.error:
        return "error (below)"
    return f"{len(record.warnings)} warning(s)" if record.warnings else ""
