"""``sensitivity.csv`` and ``report.json`` of ``edgebench sensitivity``: written a group at a time,
read back by ``edgebench prune --allocate sensitivity``.

Columns: group, sparsity, mode (the power mode the latency was measured in; empty without
``--mode``; a table written before the column existed reads as one unnamed mode), channels_before,
channels_after, macs, params, metric (its name), metric_value, metric_drop (the baseline's value
minus this one; the same in every mode: the metric is taken once), then for each backend
``BACKEND_latency_ms`` (the median of the paired blocks), ``BACKEND_ratio``,
``BACKEND_ratio_low`` and ``BACKEND_ratio_high`` (latency over the unpruned model's, paired, with
its 95% interval; empty when not measured), and a note (sparsity 0.0: the ratio is an A/A check).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from edgebench.errors import UsageError
from edgebench.prune.sensitivity import Point
from edgebench.sweep.paired import Ratio

CSV_NAME = "sensitivity.csv"
REPORT_NAME = "report.json"
FIXED = ("group", "sparsity", "mode", "channels_before", "channels_after", "macs", "params", "metric", "metric_value",
         "metric_drop")
PER_BACKEND = ("latency_ms", "ratio", "ratio_low", "ratio_high")


def columns(backends: list[str]) -> list[str]:
    return [*FIXED, *(f"{backend}_{column}" for backend in backends for column in PER_BACKEND), "note"]


def row(point: Point, backends: list[str]) -> list:
    cells = [point.group, f"{point.sparsity:g}", point.mode or "", point.channels_before, point.channels_after,
             point.macs, point.params, point.metric, f"{point.value:.6g}", f"{point.drop:.6g}"]
    for backend in backends:
        ratio, latency = point.ratio.get(backend), point.latency_ms.get(backend)
        values = (ratio.ratio, ratio.low, ratio.high) if ratio else (None, None, None)
        cells += [_number(latency), *map(_number, values)]
    return cells + [point.note]


def _number(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.6g}"


def read_points(path: Path, rounds: int) -> tuple[list[str], list[Point]]:
    """The backends and rows of a ``sensitivity.csv``; ``rounds`` is what each ratio was taken over."""
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        header = reader.fieldnames or []
        backends = [name.removesuffix("_ratio") for name in header if name.endswith("_ratio")]
        missing = [name for name in columns(backends) if name not in header and name != "mode"]
        if missing or not backends:
            raise UsageError(f"{path} is not a sensitivity table: no column {', '.join(missing) or 'BACKEND_ratio'}")
        try:
            points = [_point(line, backends, rounds) for line in reader]
        except ValueError as exc:
            raise UsageError(f"{path} line {reader.line_num}: {exc}") from None
    return backends, points


def _point(line: dict[str, str], backends: list[str], rounds: int) -> Point:
    ratios, latencies = {}, {}
    for backend in backends:
        value, low, high = (line[f"{backend}_{name}"] for name in ("ratio", "ratio_low", "ratio_high"))
        ratios[backend] = Ratio(float(value), float(low), float(high), rounds) if value else None
        latency = line[f"{backend}_latency_ms"]
        latencies[backend] = float(latency) if latency else None
    return Point(line["group"], float(line["sparsity"]), int(line["channels_before"]), int(line["channels_after"]),
                 int(line["macs"]), int(line["params"]), line["metric"], float(line["metric_value"]),
                 float(line["metric_drop"]), latencies, ratios, line["note"], line.get("mode") or None)


@dataclass(frozen=True)
class Sensitivity:
    """A finished or interrupted analysis as read back: its report and its rows."""

    directory: Path
    report: dict
    backends: list[str]
    points: list[Point]

    def groups(self) -> list[str]:
        return list(dict.fromkeys(point.group for point in self.points))

    def modes(self) -> list[Optional[str]]:
        """The power modes measured, in order; [None] for an analysis run without ``--mode``."""
        return list(dict.fromkeys(point.mode for point in self.points))


def in_mode(sensitivity: Sensitivity, modes: Sequence[str]) -> Sensitivity:
    """The rows ``prune --allocate sensitivity`` allocates by. The rule: the rows of
    the mode the pruning decides in, prune's first ``--mode``; without ``--mode``, the analysis's
    first mode. An analysis run without ``--mode`` has one unnamed mode, used whatever ``--mode``
    says (as before modes were recorded). One line when the analysis did not measure that mode."""
    measured = sensitivity.modes()
    if measured in ([], [None]):
        return sensitivity
    mode = modes[0] if modes else measured[0]
    if mode not in measured:
        raise UsageError(f"--sensitivity {sensitivity.directory} has no latency in mode {mode} (the first --mode, "
                         f"where pruning decides); it measured {', '.join(str(m) for m in measured)}")
    return replace(sensitivity, points=[point for point in sensitivity.points if point.mode == mode])


def load_sensitivity(directory: Path) -> Sensitivity:
    """The analysis in ``directory`` (``edgebench sensitivity --out``); one line when it is not one."""
    report_path, csv_path = directory / REPORT_NAME, directory / CSV_NAME
    for path in (report_path, csv_path):
        if not path.is_file():
            raise UsageError(f"--sensitivity {directory}: no {path.name} (give the --out directory of "
                             "edgebench sensitivity)")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--sensitivity {directory}: {REPORT_NAME} is not JSON: {exc}") from None
    if not isinstance(report, dict) or "baseline_fingerprint" not in report:
        raise UsageError(f"--sensitivity {directory}: {REPORT_NAME} is not the report of edgebench sensitivity")
    backends, points = read_points(csv_path, report.get("pairing", {}).get("rounds", 0))
    return Sensitivity(directory, report, backends, points)
