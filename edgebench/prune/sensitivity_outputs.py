"""What ``edgebench sensitivity`` writes into ``--out``, as it measures: ``report.json`` when the
baseline is known (again at the end, with ``complete: true``), each group's rows of
``sensitivity.csv`` and its figure as soon as the group is measured (in each mode: the figure is
redrawn with every mode so far), and the overview figure
redrawn with every group so far. So an interrupted analysis leaves every measured group behind,
in files ``--allocate sensitivity`` can read."""

from __future__ import annotations

import csv
from pathlib import Path

from edgebench.prune.outputs import write_report_json
from edgebench.prune.sensitivity import Point
from edgebench.prune.sensitivity_plots import plot_group, plot_overview
from edgebench.prune.sensitivity_table import CSV_NAME, columns, row


class SensitivityOutputs:
    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.by_group: dict[str, list[Point]] = {}  # every mode's points so far, mode after mode
        self.measured = 0  # groups measured, counted once per mode
        self.backends: list[str] = []
        self.model = ""

    @property
    def csv_path(self) -> Path:
        return self.out_dir / CSV_NAME

    def start(self, report: dict) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.backends, self.model = list(report["backends"]), report["model"]
        write_report_json(self.out_dir, {**report, "complete": False})
        with open(self.csv_path, "w", newline="", encoding="utf-8") as stream:
            csv.writer(stream).writerow(columns(self.backends))

    def add(self, points: list[Point]) -> None:
        with open(self.csv_path, "a", newline="", encoding="utf-8") as stream:
            csv.writer(stream).writerows(row(point, self.backends) for point in points)
        group = self.by_group.setdefault(points[0].group, [])
        group += points
        self.measured += 1
        plot_group(self.out_dir, self.model, group, self.backends)
        plot_overview(self.out_dir, self.model, self.by_group)

    def finish(self, report: dict) -> None:
        write_report_json(self.out_dir, {**report, "complete": True})
