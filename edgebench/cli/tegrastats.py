"""``edgebench tegrastats LOGFILE``: summarize a tegrastats log captured on a Jetson."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgebench.cli import render
from edgebench.cli.app import app
from edgebench.board.tegrastats_summary import LogError, summarize_log
from edgebench.errors import UsageError


@app.command("tegrastats")
def tegrastats_command(
    logfile: Path = typer.Argument(..., help="A file of tegrastats output, one line per sample."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    interval_ms: Optional[float] = typer.Option(
        None, "--interval-ms", help="Sampling interval of the log (tegrastats --interval), for energy when the "
        "lines carry no timestamps. Default: tegrastats' own, 1000 ms."),
) -> None:
    """Summarize a tegrastats log: power per rail, total power and energy, RAM, temperatures, GPU and EMC load,
    signs of throttling. Lines that cannot be read are reported and skipped."""
    try:
        summary = summarize_log(logfile, interval_ms)
    except LogError as exc:
        raise UsageError(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    console = render.stdout_console()
    console.print(_heading(summary))
    if summary["rails"]:
        console.print(_power_table(summary))
    for line in _measurement_lines(summary):
        console.print(line)
    if summary["temperatures_max_c"]:
        console.print(_temperature_table(summary))
    for line in _caveat_lines(summary):
        console.print(line)
    _warn_unparsed_lines(summary)


def _heading(summary: dict[str, Any]) -> Text:
    count = summary["sample_count"]
    heading = Text(f"{summary['path']}: {count} sample{'' if count == 1 else 's'} from {summary['line_count']} "
                   f"line{'' if summary['line_count'] == 1 else 's'}")
    if summary["start"]:
        heading.append(f", {summary['start']} to {summary['end']}")
    return heading


def _power_table(summary: dict[str, Any]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    table.add_column("rail")
    table.add_column("mean mW", justify="right")
    table.add_column("max mW", justify="right")
    for name, rail in summary["rails"].items():
        table.add_row(Text(name), f"{rail['mean_mw']:.0f}", f"{rail['max_mw']:.0f}")
    total = summary["total_power"]
    table.add_row(Text("total", style="bold"), f"{total['mean_mw']:.0f}", f"{total['max_mw']:.0f}")
    return table


def _temperature_table(summary: dict[str, Any]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    table.add_column("sensor")
    table.add_column("max °C", justify="right")
    for sensor, celsius in summary["temperatures_max_c"].items():
        table.add_row(Text(sensor), f"{celsius:g}")
    return table


def _measurement_lines(summary: dict[str, Any]) -> list[Text]:
    """Energy, RAM and loads, one line each, for those the log has."""
    lines = []
    energy = summary["energy"]
    if energy:
        lines.append(Text(f"energy: {energy['joules']:.1f} J over {energy['duration_s']:g} s"))
    for label, key, unit in (("RAM used", "ram_used_mb", " MB"), ("GPU (GR3D) load", "gpu_load_pct", "%"),
                             ("EMC load", "emc_load_pct", "%")):
        if summary[key]:
            lines.append(Text(f"{label}: mean {summary[key]['mean']:.0f}{unit}, max {summary[key]['max']:.0f}{unit}"))
    return lines


def _caveat_lines(summary: dict[str, Any]) -> list[Text]:
    """Offline sensors, signs of throttling, tokens not understood, and how the numbers were made."""
    lines = []
    if summary["offline_sensors"]:
        lines.append(Text("offline sensors (-256C): " + ", ".join(summary["offline_sensors"])))
    lines.extend(Text(_throttling_line(event), style="yellow") for event in summary["throttling"])
    if summary["unknown_tokens"]:
        lines.append(Text("tokens not understood: " + " ".join(summary["unknown_tokens"]), style="yellow"))
    lines.extend(Text("note: " + note, style="dim") for note in summary["notes"])
    return lines


def _throttling_line(event: dict[str, Any]) -> str:
    if event["kind"] == "clock_drop":
        return (f"throttling? {event['unit']} clock fell under high load {event['count']} time(s), first at line "
                f"{event['first_line']}: {event['first']}")
    return (f"throttling? {event['sensor']} at or above the limit on {event['count']} line(s) from line "
            f"{event['first_line']}, hottest {event['max_c']:.1f} °C")


def _warn_unparsed_lines(summary: dict[str, Any]) -> None:
    errors = Console(stderr=True)
    for bad in summary["unparsed_lines"]:
        errors.print(Text(f"warning: line {bad['line_number']} is not tegrastats output, skipped: {bad['text']}",
                          style="yellow"), soft_wrap=True)
