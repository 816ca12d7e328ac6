"""The pruner's figures, drawn from report.json's data: what each step cost and what it bought.

x is always the latency measured on the hardware relative to the baseline model, with its 95%
interval, for the first backend of the run. ``accuracy_vs_latency.png`` puts accuracy against it
(with the floor the loop may not cross); ``macs_vs_latency.png`` puts MACs against it, beside the
line where both shrink alike: how far the points sit from that line is the gap between counted
operations and measured time, which is why the pruner measures.

Kept steps are joined in order from the baseline; rejected candidates are faint points. Drawn like
``edgebench.report.plots`` (a ``Figure``, no pyplot, PNG through Agg) with its sizes and colours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from edgebench.report.plots import IMPROVEMENT_COLOR, PALETTE, WIDTH_IN, color_for, save

ACCURACY_FIGURE = "accuracy_vs_latency.png"
MACS_FIGURE = "macs_vs_latency.png"
FIGSIZE = (WIDTH_IN * 0.75, 5.4)
KEPT_COLOR = color_for(0)
REJECTED_COLOR = PALETTE[-1]
REFERENCE_COLOR = "#6b7280"  # the floor and the diagonal, as the report's reference lines


@dataclass(frozen=True)
class Point:
    """One model on the figures: latency ratio to the baseline with its interval, accuracy and MACs
    ratio (None when unknown)."""

    label: str
    latency: float
    low: float
    high: float
    accuracy: float | None
    macs: float | None
    kept: bool


def plot_steps(out_dir: Path, report: dict[str, Any]) -> list[Path]:
    """Write ``accuracy_vs_latency.png`` and ``macs_vs_latency.png`` into ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, figure in ((ACCURACY_FIGURE, accuracy_vs_latency(report)), (MACS_FIGURE, macs_vs_latency(report))):
        save(figure, out_dir / name)
        paths.append(out_dir / name)
    return paths


def step_points(report: dict[str, Any], backend: str) -> list[Point]:
    """The steps measured on ``backend``, in order; candidates without a latency ratio are left out."""
    points = []
    for step in report.get("steps", []):
        point = _point(str(step.get("iteration", "?")), (step.get("ratio_to_baseline") or {}).get(backend), step,
                       report, kept=step.get("verdict") == "kept")
        if point is not None:
            points.append(point)
    return points


def final_point(report: dict[str, Any], backend: str) -> Point | None:
    final = report.get("final") or {}
    return _point("final", (final.get("latency_ratio") or {}).get(backend), final, report, kept=True)


def accuracy_vs_latency(report: dict[str, Any]) -> Figure:
    backend = report["backends"][0]
    baseline = report.get("baseline", {}).get("accuracy")
    figure, axes = _figure(report, backend, "accuracy against measured latency")
    _draw(axes, step_points(report, backend), final_point(report, backend), baseline, lambda point: point.accuracy)
    drop = report.get("max_accuracy_drop")
    if baseline is not None and drop is not None:
        axes.axhline(baseline - drop, color=REFERENCE_COLOR, linestyle="--", linewidth=1,
                     label=f"accuracy floor (baseline - {drop:g})")
    axes.set_ylabel(f"accuracy on {report['task']}" if report.get("task") else "accuracy")
    axes.legend(loc="best", fontsize=8)
    return figure


def macs_vs_latency(report: dict[str, Any]) -> Figure:
    backend = report["backends"][0]
    points, final = step_points(report, backend), final_point(report, backend)
    figure, axes = _figure(report, backend, "MACs against measured latency")
    _draw(axes, points, final, 1.0, lambda point: point.macs)
    # The same range on both axes, so the diagonal is the 45-degree line.
    shown = points + ([final] if final else [])
    values = [1.0] + [value for p in shown for value in (p.low, p.high, p.macs) if value is not None]
    low, high = min(values), max(values)
    pad = 0.08 * (high - low or 1.0)
    low, high = max(0.0, low - pad), high + pad
    axes.plot([low, high], [low, high], color=REFERENCE_COLOR, linestyle=":", linewidth=1.2,
              label="MACs shrink as latency does (y = x)")
    axes.set_xlim(low, high)
    axes.set_ylim(low, high)
    axes.set_ylabel("MACs / baseline MACs")
    axes.legend(loc="best", fontsize=8)
    return figure


def _point(label: str, ratio: dict[str, Any] | None, values: dict[str, Any], report: dict[str, Any],
           kept: bool) -> Point | None:
    if not ratio or ratio.get("ratio") is None:
        return None
    value = float(ratio["ratio"])
    low, high = ratio.get("ci95") or (value, value)
    baseline_macs = report.get("baseline", {}).get("macs")
    macs = values.get("macs") / baseline_macs if values.get("macs") is not None and baseline_macs else None
    return Point(label, value, float(low), float(high), values.get("accuracy"), macs, kept)


def _figure(report: dict[str, Any], backend: str, what: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=FIGSIZE, layout="constrained")
    axes = figure.subplots()
    # Model specs run long (a callable with its arguments): the model gets a line of its own.
    axes.set_title(f"{report.get('model', 'model')}\n{what} on {backend} "
                   f"(target {report.get('target', '?')}, objective {report.get('objective', '?')})",
                   loc="left", fontsize=10, fontweight="bold")
    axes.set_xlabel(f"{backend} latency / baseline latency (measured, 95% interval; left is faster)")
    axes.grid(alpha=0.3)
    return figure, axes


def _draw(axes: Axes, points: Sequence[Point], final: Point | None, baseline: float | None,
          value: Callable[[Point], float | None]) -> None:
    """Rejected candidates faint, kept steps joined in order from the baseline, the final model starred."""
    rejected = [point for point in points if not point.kept and value(point) is not None]
    kept = [point for point in points if point.kept and value(point) is not None]
    if rejected:
        _errorbar(axes, rejected, value, fmt="o", color=REJECTED_COLOR, alpha=0.35, markersize=4, capsize=2,
                  label="rejected candidate")
    start = [(1.0, baseline)] if baseline is not None else []
    path = start + [(point.latency, value(point)) for point in kept]
    if len(path) > 1:
        axes.plot(*zip(*path), color=KEPT_COLOR, linewidth=1.4, zorder=2)
    if kept:
        _errorbar(axes, kept, value, fmt="o", color=KEPT_COLOR, markersize=5, capsize=3, zorder=3, label="kept step")
        for point in kept:
            axes.annotate(point.label, (point.latency, value(point)), xytext=(4, 4), textcoords="offset points",
                          fontsize=7, color=KEPT_COLOR)
    if baseline is not None:
        axes.scatter([1.0], [baseline], marker="s", s=45, color="black", zorder=4, label="baseline")
    if final is not None and value(final) is not None:
        _errorbar(axes, [final], value, fmt="*", color=IMPROVEMENT_COLOR, markersize=15, markeredgecolor="black",
                  capsize=4, zorder=5, label=f"final ({final.latency:.2f}x latency)")


def _errorbar(axes: Axes, points: Sequence[Point], value: Callable[[Point], float | None], **style: Any) -> None:
    axes.errorbar([point.latency for point in points], [value(point) for point in points],
                  # Clamped: an interval that misses its own estimate would make matplotlib refuse the bar.
                  xerr=[[max(0.0, point.latency - point.low) for point in points],
                        [max(0.0, point.high - point.latency) for point in points]],
                  **style)
