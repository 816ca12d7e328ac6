"""The search's figures, drawn from report.json as the study drew them.

``fronts.png``: accuracy against the latency measured on the target (relative to the baseline,
the first backend), every generation's front from light grey (the first) to black (the last), the
final front red, and the final front after its longer fine-tune, measured again, green with its
95% intervals. A search on ``accuracy,macs`` also gets ``fronts_macs.png``, the same on MACs (the
axis that search optimised). ``compare_fronts`` puts two searches' fine-tuned fronts on one
measured-latency axis: the operation-count objective's against the latency objective's.

Drawn like ``edgebench.prune.step_plots`` (a ``Figure``, no pyplot, PNG through Agg).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from edgebench.prune.step_plots import FIGSIZE, REFERENCE_COLOR
from edgebench.report.plots import REGRESSION_COLOR, IMPROVEMENT_COLOR, color_for, save

FRONTS_FIGURE = "fronts.png"
MACS_FIGURE = "fronts_macs.png"
COMPARISON_FIGURE = "fronts_compared.png"
EARLY_GREY, LATE_GREY = 0.85, 0.0  # grey levels of the first and the last generation's front


def plot_search(out_dir: Path, report: dict[str, Any]) -> list[Path]:
    """Write the search's figures into ``out_dir``; their paths."""
    figures = {FRONTS_FIGURE: fronts(report, "latency")}
    if report.get("objectives") == "accuracy,macs":
        figures[MACS_FIGURE] = fronts(report, "macs")
    for name, figure in figures.items():
        save(figure, out_dir / name)
    return [out_dir / name for name in figures]


def fronts(report: dict[str, Any], axis: str) -> Figure:
    """Every generation's front, the final front and its fine-tuned models, on ``axis`` ("latency"
    measured on the first backend, or "macs")."""
    backend = report["backends"][0]
    individuals = {i["individual"]: i for i in report.get("individuals", [])}
    figure = Figure(figsize=FIGSIZE, layout="constrained")
    axes = figure.subplots()
    generations = report.get("generations", [])
    for index, generation in enumerate(generations):
        members = [individuals[number] for number in generation["front"]]
        last = index == len(generations) - 1
        grey = EARLY_GREY + (LATE_GREY - EARLY_GREY) * index / max(1, len(generations) - 1)
        _front(axes, members, axis, backend, report, color=REGRESSION_COLOR if last else str(grey),
               label="final Pareto front" if last else ("earlier fronts (grey to black: older to newer)"
                                                       if index == 0 else None), zorder=3 if last else 2)
    tuned = [t for t in report.get("final_front", []) if _x(t, axis, backend, report) is not None]
    if tuned:
        xs = [_x(t, axis, backend, report) for t in tuned]
        errors = [_interval(t, axis, backend) for t in tuned]
        axes.errorbar(xs, [t["accuracy"] for t in tuned], xerr=[[e[0] for e in errors], [e[1] for e in errors]],
                      fmt="o", color=IMPROVEMENT_COLOR, markersize=6, capsize=3, zorder=4,
                      label=f"fine-tuned ({report.get('final_finetune_steps')} more steps), measured again")
    _baseline(axes, report)
    axes.set_xlabel(f"{backend} latency / baseline latency (measured; left is faster)" if axis == "latency"
                    else "MACs / baseline MACs")
    axes.set_ylabel(f"{report.get('metric', 'accuracy')} on {report.get('task', 'the task')}")
    axes.set_title(f"{report.get('model', 'model')}\nNSGA-II on {report.get('objectives')}: population "
                   f"{report.get('population')}, {len(generations)} generations (target {report.get('target', '?')})",
                   loc="left", fontsize=10, fontweight="bold")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=8)
    return figure


def compare_fronts(first: Path, second: Path, path: Path) -> Path:
    """Two searches' fine-tuned final fronts (``--out`` directories) on accuracy against measured
    latency, each relative to the baseline measured in its own run; written to ``path``."""
    reports = [json.loads((directory / "report.json").read_text(encoding="utf-8")) for directory in (first, second)]
    backend = reports[0]["backends"][0]
    figure = Figure(figsize=FIGSIZE, layout="constrained")
    axes = figure.subplots()
    for index, report in enumerate(reports):
        tuned = sorted((t for t in report.get("final_front", []) if _x(t, "latency", backend, report) is not None),
                       key=lambda t: _x(t, "latency", backend, report))
        xs = [_x(t, "latency", backend, report) for t in tuned]
        errors = [_interval(t, "latency", backend) for t in tuned]
        axes.errorbar(xs, [t["accuracy"] for t in tuned], xerr=[[e[0] for e in errors], [e[1] for e in errors]],
                      fmt="o-", color=color_for(index), markersize=5, capsize=3,
                      label=f"NSGA-II on {report['objectives']} (fine-tuned front)")
    _baseline(axes, reports[0])
    axes.set_xlabel(f"{backend} latency / baseline latency (measured; left is faster)")
    axes.set_ylabel(f"{reports[0].get('metric', 'accuracy')} on {reports[0].get('task', 'the task')}")
    axes.set_title(f"{reports[0].get('model', 'model')}\nfinal fronts of two searches on measured latency",
                   loc="left", fontsize=10, fontweight="bold")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=8)
    save(figure, path)
    return path


def _front(axes: Axes, members: list[dict], axis: str, backend: str, report: dict, **style: Any) -> None:
    points = sorted((x, m["accuracy"]) for m in members if (x := _x(m, axis, backend, report)) is not None)
    if points:
        axes.plot(*zip(*points), marker="o", markersize=4, linewidth=1, **style)


def _baseline(axes: Axes, report: dict) -> None:
    baseline = report.get("baseline", {})
    if baseline.get("accuracy") is None:
        return
    axes.axhline(baseline["accuracy"], color=REFERENCE_COLOR, linestyle="-", linewidth=1, label="baseline")
    axes.axhline(baseline["floor"], color=REFERENCE_COLOR, linestyle="--", linewidth=1,
                 label=f"{report.get('metric', 'accuracy')} floor (baseline - {report.get('max_accuracy_drop', 0):g})")


def _x(item: dict, axis: str, backend: str, report: dict) -> Optional[float]:
    if axis == "macs":
        return item["macs"] / report["baseline"]["macs"]
    ratio = item.get("latency_ratio", {}).get(backend)
    return ratio["ratio"] if ratio else None


def _interval(item: dict, axis: str, backend: str) -> tuple[float, float]:
    """The 95% interval's arms around the latency ratio (none on the MACs axis); clamped, so an
    interval that misses its own estimate cannot make matplotlib refuse the bar."""
    ratio = item.get("latency_ratio", {}).get(backend)
    if axis == "macs" or not ratio:
        return 0.0, 0.0
    low, high = ratio["ci95"]
    return max(0.0, ratio["ratio"] - low), max(0.0, high - ratio["ratio"])
