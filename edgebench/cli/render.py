"""Tables and one-line summaries of records for the terminal.

User-supplied text (model names, errors) goes in as ``rich.text.Text`` so brackets in it are
never read as markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgebench.results.intervals import p50_interval
from edgebench.results.key import key_fields, key_of
from edgebench.results.record import Record

BASELINE_BACKEND = "eager"
STATUS_STYLES = {"ok": "green", "error": "red", "unavailable": "yellow"}


def summary_line(record: Record) -> Text:
    """One line per finished measurement, for the progress log."""
    line = Text(record.status, style=STATUS_STYLES.get(record.status, ""))
    line.append(f" {record_name(record)}: ")
    if record.latency_ms is None:
        return line.append(str(record.error))
    line.append(f"p50 {p50_with_interval(record)} ms")
    if record.warnings:
        line.append(f" ({len(record.warnings)} warning(s))", style="yellow")
    return line


def record_name(record: Record) -> str:
    """Model, batch, backend and the input shape it was fed (``3x512x1024``), for log lines."""
    return " ".join(filter(None, (record.model, f"b{record.batch}", record.backend, record.input_shape)))


def speedups(records: Sequence[Record], baseline: str = BASELINE_BACKEND) -> dict[int, float]:
    """Baseline p50 / record p50 for every ok record whose comparison key less the backend has an
    ok baseline, keyed by ``id(record)``. A plain ratio of medians; ``edgebench compare`` gives
    intervals."""
    fields = key_fields(("backend",))

    def key(r: Record) -> tuple:
        return key_of(r, fields)

    base = {key(r): r.latency_ms.p50 for r in records if r.backend == baseline and r.latency_ms}
    return {id(r): base[key(r)] / r.latency_ms.p50 for r in records if r.latency_ms and key(r) in base}


def records_table(records: Sequence[Record], title: str | None = None) -> Table:
    """One row per record, narrow enough for an 80-column terminal; warnings listed below it. A
    board column when the records come from more than one board, an input column when they hold
    more than one input shape (a resolution sweep: items/s is then frames per second)."""
    ratios = speedups(records)
    with_board = len(boards(records)) > 1
    with_shape = len({r.input_shape for r in records}) > 1
    table = Table(title=title, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    if with_board:
        table.add_column("board")
    table.add_column("model")
    if with_shape:
        table.add_column("input", no_wrap=True)
    table.add_column("b", justify="right")
    table.add_column("backend")
    table.add_column("p50 ms", justify="right", no_wrap=True)
    table.add_column("95% CI", justify="right", no_wrap=True)
    table.add_column("p99 ms", justify="right", no_wrap=True)
    table.add_column("items/s", justify="right", no_wrap=True)
    table.add_column(f"×{BASELINE_BACKEND}", justify="right", no_wrap=True)
    table.add_column("warn", justify="right", no_wrap=True)
    for r in records:
        ratio = ratios.get(id(r))
        lat = r.latency_ms
        table.add_row(
            *([Text(r.board or "-")] if with_board else []),
            Text(r.model), *([Text(r.input_shape or "-")] if with_shape else []), str(r.batch), Text(r.backend),
            f"{lat.p50:.3f}" if lat else Text(r.status, style=STATUS_STYLES.get(r.status, "")),
            _halfwidth(r) if lat else "",
            _number(lat.p99 if lat else None, 3),
            _number(r.throughput_ips, 1),
            "-" if ratio is None else f"{ratio:.2f}x",
            Text(str(len(r.warnings)), style="yellow") if r.warnings else "",
        )
    return table


def boards(records: Iterable[Record]) -> list[str]:
    """The boards ``records`` were measured on, in order of appearance ("-": a record that names none)."""
    return list(dict.fromkeys(record.board or "-" for record in records))


def print_details(console: Console, records: Sequence[Record]) -> None:
    """Errors and warnings in full, under the table, so no caveat is cut off."""
    for r in records:
        head = f"{record_name(r)}: "
        if r.error:
            console.print(Text(head + f"{r.status}: {r.error}", style=STATUS_STYLES.get(r.status, "")))
        for warning in r.warnings:
            console.print(Text(head + f"warning: {warning}", style="yellow"))


def _halfwidth(record: Record) -> str:
    """The p50 interval's half-width; "(samples)" where one worker process leaves it sample noise only."""
    interval = p50_interval(record)
    return f"±{interval.halfwidth * 100:.1f}%" + (" (samples)" if interval.level == "samples" else "")


def p50_with_interval(record: Record) -> str:
    if record.latency_ms is None:
        return "-"
    interval = p50_interval(record)
    return f"{record.latency_ms.p50:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def _number(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"


def stdout_console() -> Console:
    """A console for tables: the terminal's width, or a wide one when output is piped to a log."""
    console = Console()
    return console if console.is_terminal else Console(width=120)


def markdown_cell(value: object) -> str:
    """Table cell text: a pipe or a line break inside would end the cell or the row."""
    return str(value).replace("|", "\\|").replace("\n", " ")
