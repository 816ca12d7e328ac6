"""The report's figures, drawn from plain data and saved as PNG files.

Drawn on ``matplotlib.figure.Figure`` rather than pyplot: no GUI backend is picked and no global
figure state is kept, so a headless CI job or a test needs nothing set up; PNGs go through Agg.
Only calls whose signatures are the same from matplotlib 3.7 on are used (boxplot labels and
orientation were renamed in 3.9 and 3.10: ticks are set separately and boxes stand upright).

A label drawn in the warning colour with a leading mark belongs to a record that carries
warnings: its numbers are shown, and the table says why they may not hold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

DPI = 110
WIDTH_IN = 10.0
WARNING_MARK = "\u26a0"  # ⚠
WARNING_COLOR = "#b45309"
REGRESSION_COLOR = "#dc2626"
IMPROVEMENT_COLOR = "#16a34a"
CHANGE_POINT_COLOR = "#7c3aed"
ENVIRONMENT_COLOR = "#6b7280"
PALETTE = ("#2563eb", "#ea580c", "#059669", "#9333ea", "#db2777", "#0891b2", "#ca8a04", "#4b5563")
LINESTYLES = ("-", "--", ":", "-.")
LOG_SCALE_SPAN = 4.0  # a value axis spanning more than this factor is drawn on a log scale
_VIOLIN_TAILS = (0.5, 99.5)  # violins show the density between these percentiles; boxes the quartiles
_WHISKERS = (1, 99)


@dataclass(frozen=True)
class Box:
    """One record's latency samples."""

    label: str
    samples: Sequence[float]
    color: str
    flagged: bool


@dataclass(frozen=True)
class Interval:
    """A ratio with its interval: one pair's speedup."""

    label: str
    value: float
    low: float
    high: float
    color: str
    flagged: bool


@dataclass(frozen=True)
class Dot:
    """One record's power and energy, placed in its mode's row."""

    key: str
    mode: str
    power_w: float
    mj_per_inference: float
    flagged: bool


@dataclass(frozen=True)
class Line:
    """One key's p50 across runs (x: the run's position), with the runs judged against their predecessor,
    the change points of its history (x, y, the change in words) and the runs whose environment
    differs from the run before (x)."""

    label: str
    color: str
    points: list[tuple[int, float]]
    linestyle: str = "-"
    regressions: list[tuple[int, float]] = field(default_factory=list)
    improvements: list[tuple[int, float]] = field(default_factory=list)
    flagged: bool = False
    change_points: list[tuple[int, float, str]] = field(default_factory=list)
    environment_changes: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class SizePoint:
    """One record of a resolution series."""

    size: int  # elements per item fed to the model: the x position
    shape: str  # the input shape, as --input-shape writes it: the tick label
    p50: float
    low: float  # the p50's 95% interval
    high: float
    fps: float | None  # frames per second, batch x 1000 / p50


@dataclass(frozen=True)
class Curve:
    """One series (backend, target, ...) across the input shapes it was measured at."""

    label: str
    color: str
    linestyle: str
    points: list[SizePoint]
    flagged: bool = False


def color_for(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def linestyle_for(index: int) -> str:
    return LINESTYLES[index % len(LINESTYLES)]


def save(figure: Figure, path: Path) -> None:
    figure.savefig(path, dpi=DPI, format="png")


def latency_distributions(title: str, boxes: Sequence[Box]) -> Figure:
    """Upright violins (the shape) with boxes (quartiles, whiskers at p1 and p99), one per record."""
    figure = Figure(figsize=(WIDTH_IN, 4.2), layout="constrained")
    axes = figure.subplots()
    positions = list(range(1, len(boxes) + 1))
    clipped = [_within(np.asarray(box.samples), *_VIOLIN_TAILS) for box in boxes]
    violins = axes.violinplot(clipped, positions=positions, widths=0.8, showextrema=False)
    for body, box in zip(violins["bodies"], boxes):
        body.set_facecolor(box.color)
        body.set_edgecolor("none")
        body.set_alpha(0.3)
    drawn = axes.boxplot([box.samples for box in boxes], positions=positions, widths=0.22, whis=_WHISKERS,
                         showfliers=False, patch_artist=True, medianprops={"color": "black", "linewidth": 1.6})
    for patch, box in zip(drawn["boxes"], boxes):
        patch.set_facecolor(box.color)
        patch.set_alpha(0.75)
    for position, box in zip(positions, boxes):
        median = float(np.median(box.samples))
        axes.annotate(f"{median:.3g}", (position + 0.14, median), fontsize=8, va="center")
    logarithmic = _value_axis(axes, "y", [float(np.min(c)) for c in clipped] + [float(np.max(c)) for c in clipped])
    axes.set_ylabel("ms per call" + (" (log scale)" if logarithmic else ""))
    _category_ticks(axes, "x", positions, [box.label for box in boxes], [box.flagged for box in boxes])
    axes.set_title(title, loc="left", fontsize=11, fontweight="bold")
    axes.grid(axis="y", alpha=0.3)
    return figure


def speedups(intervals: Sequence[Interval], baseline: str) -> Figure:
    """Each pair's speedup over the baseline with its 95% interval, on a log scale centred on 1x."""
    figure = Figure(figsize=(WIDTH_IN, 0.42 * len(intervals) + 1.4), layout="constrained")
    axes = figure.subplots()
    rows = list(range(len(intervals), 0, -1))  # the first pair on top
    for row, item in zip(rows, intervals):
        axes.errorbar([item.value], [row], xerr=[[item.value - item.low], [item.high - item.value]], fmt="o",
                      color=item.color, capsize=4, markersize=6)
        axes.annotate(f"{item.value:.2f}x [{item.low:.2f}, {item.high:.2f}]", (item.high, row),
                      xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
    axes.axvline(1.0, color="#6b7280", linewidth=1, linestyle="--")
    axes.set_xscale("log", base=2)
    values = [item.low for item in intervals] + [item.high for item in intervals] + [1.0]
    low, high = min(values), max(values)
    axes.set_xlim(low / 1.25, high * 1.9)  # room for the annotations right of each interval
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}x"))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel(f"speedup over {baseline} (p50 {baseline} / p50 of the row; right of the dashed line is faster)")
    _category_ticks(axes, "y", rows, [item.label for item in intervals], [item.flagged for item in intervals])
    axes.set_ylim(0.4, len(intervals) + 0.6)
    axes.grid(axis="x", alpha=0.3)
    return figure


def energy_by_mode(dots: Sequence[Dot], mode_colors: dict[str, str]) -> Figure:
    """Average power and energy per inference of each key, one marker per power mode."""
    keys = list(dict.fromkeys(dot.key for dot in dots))
    rows = {key: len(keys) - index for index, key in enumerate(keys)}
    figure = Figure(figsize=(WIDTH_IN, 0.42 * len(keys) + 1.6), layout="constrained")
    power_axes, energy_axes = figure.subplots(1, 2, sharey=True)
    for mode, color in mode_colors.items():
        mine = [dot for dot in dots if dot.mode == mode]
        for axes, value in ((power_axes, "power_w"), (energy_axes, "mj_per_inference")):
            axes.scatter([getattr(dot, value) for dot in mine], [rows[dot.key] for dot in mine], s=48, color=color,
                         label=mode, zorder=3)
    power_axes.set_xlabel("average power while timing (W)")
    logarithmic = _value_axis(energy_axes, "x", [dot.mj_per_inference for dot in dots])
    energy_axes.set_xlabel("energy per call (mJ)" + (", log scale" if logarithmic else ""))
    flagged = {dot.key for dot in dots if dot.flagged}
    _category_ticks(power_axes, "y", list(rows.values()), keys, [key in flagged for key in keys])
    for axes in (power_axes, energy_axes):
        axes.set_ylim(0.4, len(keys) + 0.6)
        axes.grid(alpha=0.3)
    energy_axes.legend(title="mode", loc="best", fontsize=8)
    return figure


def p50_history(title: str, run_labels: Sequence[str], lines: Sequence[Line]) -> Figure:
    """p50 per run for each key; runs judged a regression or an improvement against the run before are
    marked, a change point's first run by a star with its change, an environment change by a dotted
    line between the two runs."""
    figure = Figure(figsize=(WIDTH_IN, 4.2), layout="constrained")
    axes = figure.subplots()
    for line in lines:
        xs, ys = zip(*line.points)
        axes.plot(xs, ys, marker="o", markersize=4, color=line.color, linestyle=line.linestyle, linewidth=1.4,
                  label=(f"{WARNING_MARK} " if line.flagged else "") + line.label)
    marks = (("regression", "^", REGRESSION_COLOR, [p for line in lines for p in line.regressions]),
             ("improvement", "v", IMPROVEMENT_COLOR, [p for line in lines for p in line.improvements]))
    for name, marker, color, points in marks:
        if points:
            axes.scatter(*zip(*points), marker=marker, s=150, facecolors="none", edgecolors=color, linewidths=2,
                         zorder=4, label=name)
    shifts = [shift for line in lines for shift in line.change_points]
    if shifts:
        axes.scatter([x for x, _, _ in shifts], [y for _, y, _ in shifts], marker="*", s=220,
                     color=CHANGE_POINT_COLOR, zorder=5, label="change point: a new level starts")
        for x, y, text in shifts:
            axes.annotate(text, (x, y), textcoords="offset points", xytext=(6, 8), fontsize=8, color=CHANGE_POINT_COLOR)
    changed = sorted({x for line in lines for x in line.environment_changes})
    for index, x in enumerate(changed):
        axes.axvline(x - 0.5, color=ENVIRONMENT_COLOR, linestyle=":", linewidth=1.2, zorder=1,
                     label="environment changed" if index == 0 else None)
    axes.axvspan(len(run_labels) - 1.4, len(run_labels) - 0.6, color="#fde68a", alpha=0.4, zorder=0)
    axes.set_xticks(range(len(run_labels)), run_labels, rotation=30, ha="right", fontsize=8)
    axes.set_xlim(-0.5, len(run_labels) - 0.5)
    logarithmic = _value_axis(axes, "y", [y for line in lines for _, y in line.points])
    axes.set_ylabel("p50, ms per call" + (" (log scale)" if logarithmic else ""))
    axes.set_title(title, loc="left", fontsize=11, fontweight="bold")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return figure


def resolution_curves(title: str, curves: Sequence[Curve]) -> Figure:
    """p50 with its 95% interval (left) and frames per second (right) against input size, one line
    per series; the size axis is logarithmic, ticked with the input shapes."""
    figure = Figure(figsize=(WIDTH_IN, 4.4), layout="constrained")
    latency_axes, fps_axes = figure.subplots(1, 2, sharex=True)
    for curve in curves:
        name = (f"{WARNING_MARK} " if curve.flagged else "") + curve.label
        style = {"color": curve.color, "linestyle": curve.linestyle, "marker": "o", "markersize": 4, "linewidth": 1.4}
        points = curve.points
        latency_axes.errorbar([p.size for p in points], [p.p50 for p in points], capsize=3, label=name,
                              yerr=[[p.p50 - p.low for p in points], [p.high - p.p50 for p in points]], **style)
        rated = [(p.size, p.fps) for p in points if p.fps is not None]
        if rated:
            fps_axes.plot(*zip(*rated), label=name, **style)
    ticks: dict[int, list[str]] = {}
    for point in (p for curve in curves for p in curve.points):
        ticks.setdefault(point.size, [])
        if point.shape not in ticks[point.size]:
            ticks[point.size].append(point.shape)
    sizes = sorted(ticks)
    for axes in (latency_axes, fps_axes):
        axes.set_xscale("log", base=2)
        axes.set_xticks(sizes, ["\n".join(ticks[size]) for size in sizes], rotation=30, ha="right", fontsize=8)
        axes.xaxis.set_minor_locator(NullLocator())
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_xlim(sizes[0] / 1.3, sizes[-1] * 1.3)
        axes.set_xlabel("input shape (elements per item, log scale)")
        axes.grid(alpha=0.3)
    points = [p for curve in curves for p in curve.points]
    logarithmic = _value_axis(latency_axes, "y", [p.low for p in points] + [p.high for p in points])
    latency_axes.set_ylabel("p50, ms per call, 95% interval" + (" (log scale)" if logarithmic else ""))
    logarithmic = _value_axis(fps_axes, "y", [p.fps for p in points if p.fps is not None])
    fps_axes.set_ylabel("frames per second, batch x 1000 / p50" + (" (log scale)" if logarithmic else ""))
    latency_axes.set_title(title, loc="left", fontsize=11, fontweight="bold")
    latency_axes.legend(loc="best", fontsize=8)
    return figure


def _within(samples: np.ndarray, low_percentile: float, high_percentile: float) -> np.ndarray:
    low, high = np.percentile(samples, [low_percentile, high_percentile])
    inside = samples[(samples >= low) & (samples <= high)]
    return inside if inside.size > 1 else samples


def _value_axis(axes: Axes, which: str, values: Sequence[float]) -> bool:
    """A log scale with plain-number ticks when the values span more than ``LOG_SCALE_SPAN``; whether it is one."""
    positive = [value for value in values if value > 0]
    if not positive or max(positive) / min(positive) <= LOG_SCALE_SPAN:
        return False
    axis = axes.yaxis if which == "y" else axes.xaxis
    (axes.set_yscale if which == "y" else axes.set_xscale)("log")
    low, high = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    ticks = [mantissa * 10.0 ** exponent for exponent in range(low, high + 1) for mantissa in (1, 2, 5)]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_locator(NullLocator())
    return True


def _category_ticks(axes: Axes, which: str, positions: Sequence[float], labels: Sequence[str],
                    flagged: Sequence[bool]) -> None:
    """Category labels, wrapped on an upright axis; records with warnings marked and coloured."""
    shown = [(f"{WARNING_MARK} " if flag else "") + (label.replace(" ", "\n") if which == "x" else label)
             for label, flag in zip(labels, flagged)]
    setter = axes.set_xticks if which == "x" else axes.set_yticks
    setter(positions, shown, fontsize=8)
    tick_labels = axes.get_xticklabels() if which == "x" else axes.get_yticklabels()
    for text, flag in zip(tick_labels, flagged):
        if flag:
            text.set_color(WARNING_COLOR)
