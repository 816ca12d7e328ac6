"""The figures of ``edgebench sensitivity``, as Distiller's sensitivity analysis draws them.

One figure per group (``group-NAME.png``): the task's metric against sparsity on the left axis,
the measured latency ratio to the unpruned model (95% interval) on the right, one line per
backend and power mode (a colour per backend, a line style per mode). One overview
(``sensitivity.png``): every group's metric curve against sparsity. Drawn like
``edgebench.report.plots`` (a ``Figure``, no pyplot, PNG through Agg).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from edgebench.prune.sensitivity import Point
from edgebench.report.plots import WIDTH_IN, color_for, linestyle_for, save

OVERVIEW = "sensitivity.png"
METRIC_COLOR = "black"


def group_file(group: str) -> str:
    """The group's figure's file name (a module path, made safe for any file system)."""
    return "group-" + re.sub(r"[^A-Za-z0-9._-]", "_", group) + ".png"


def in_first_mode(points: Sequence[Point]) -> list[Point]:
    """The points of the first mode measured: the metric is the same in every mode."""
    return [point for point in points if point.mode == points[0].mode]


def plot_group(out_dir: Path, model: str, points: Sequence[Point], backends: Sequence[str]) -> Path:
    """``group-NAME.png`` for one group's points (in sparsity order, mode after mode); its path."""
    first = points[0]
    modes = list(dict.fromkeys(point.mode for point in points))
    figure = Figure(figsize=(WIDTH_IN * 0.7, 4.8), layout="constrained")
    metric_axes = figure.subplots()
    metric_axes.set_title(f"{model}\n{first.group} ({first.channels_before} channels) cut alone",
                          loc="left", fontsize=10, fontweight="bold")
    metric_points = in_first_mode(points)
    metric_axes.plot([point.sparsity for point in metric_points], [point.value for point in metric_points],
                     marker="o", color=METRIC_COLOR,
                     label=first.metric)
    metric_axes.set_xlabel("sparsity (share of the group's channels removed, lowest-scoring first)")
    metric_axes.set_ylabel(first.metric)
    metric_axes.grid(alpha=0.3)
    latency_axes = metric_axes.twinx()
    for mode_index, mode in enumerate(modes):
        for index, backend in enumerate(backends):
            measured = [(point.sparsity, point.ratio[backend]) for point in points
                        if point.mode == mode and point.ratio.get(backend)]
            if not measured:
                continue
            xs, ratios = zip(*measured)
            latency_axes.errorbar(xs, [r.ratio for r in ratios], capsize=3, marker="s", markersize=4,
                                  color=color_for(index), linestyle=linestyle_for(mode_index + 1),
                                  # Clamped: an interval that misses its own estimate would make matplotlib refuse
                                  # the bar.
                                  yerr=[[max(0.0, r.ratio - r.low) for r in ratios],
                                        [max(0.0, r.high - r.ratio) for r in ratios]],
                                  label=f"{backend}{f' in {mode}' if mode else ''} latency / unpruned "
                                        "(paired, 95% interval)")
    latency_axes.axhline(1.0, color="#6b7280", linestyle=":", linewidth=1)
    latency_axes.set_ylabel("latency / unpruned latency (measured)")
    lines, labels = metric_axes.get_legend_handles_labels()
    more_lines, more_labels = latency_axes.get_legend_handles_labels()
    metric_axes.legend(lines + more_lines, labels + more_labels, loc="lower left", fontsize=8)
    path = out_dir / group_file(first.group)
    save(figure, path)
    return path


def plot_overview(out_dir: Path, model: str, by_group: dict[str, Sequence[Point]]) -> Path:
    """``sensitivity.png``: every group's metric against sparsity; its path."""
    figure = Figure(figsize=(WIDTH_IN, 6.0), layout="constrained")
    axes = figure.subplots()
    metric = next((points[0].metric for points in by_group.values() if points), "metric")
    axes.set_title(f"{model}\n{metric} against sparsity, each group cut alone", loc="left", fontsize=10,
                   fontweight="bold")
    for index, (group, points) in enumerate(by_group.items()):
        points = in_first_mode(points)
        axes.plot([point.sparsity for point in points], [point.value for point in points], marker=".",
                  color=color_for(index), linestyle=linestyle_for(index // 8), label=group)
    axes.set_xlabel("sparsity")
    axes.set_ylabel(metric)
    axes.grid(alpha=0.3)
    if by_group:
        axes.legend(loc="lower left", fontsize=7, ncol=max(1, len(by_group) // 12))
    path = out_dir / OVERVIEW
    save(figure, path)
    return path
