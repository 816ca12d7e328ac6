"""``modes.png``: the baseline and the final model in each power mode, from report.json's ``modes``.

Two panels, bars per mode side by side: latency (the paired run's p50) and energy per inference
(each model measured alone with the power sampler). For the first backend of the run, like the
step figures (``edgebench.prune.step_plots``). A mode without power readings gets no energy bars
and says so: an empty bar would read as zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from edgebench.report.plots import WIDTH_IN, color_for, save

MODES_FIGURE = "modes.png"
BAR_WIDTH = 0.38


def plot_modes(out_dir: Path, report: dict[str, Any]) -> Optional[Path]:
    """Write ``modes.png`` into ``out_dir`` when the report has a ``modes`` table; its path."""
    table = report.get("modes")
    if not table:
        return None
    backend = report["backends"][0]
    rows = [row for row in table["rows"] if row["backend"] == backend]
    figure = Figure(figsize=(WIDTH_IN, 4.4), layout="constrained")
    latency_axes, energy_axes = figure.subplots(1, 2)
    figure.suptitle(f"{report.get('model', 'model')}\nbaseline and final model per power mode on {backend} "
                    f"(target {report.get('target', '?')})", x=0.01, ha="left", fontsize=10, fontweight="bold")
    roles = table["roles"]
    _bars(latency_axes, rows, roles, "latency_ms", "p50 latency, paired run (ms)")
    sources = sorted({row["power_source"] for row in rows if row["power_source"]})
    _bars(energy_axes, rows, roles, "mj_per_inference",
          f"energy per inference, each model alone (mJ; {', '.join(sources) or 'no power sampler'})")
    path = out_dir / MODES_FIGURE
    save(figure, path)
    return path


def _bars(axes: Axes, rows: list[dict[str, Any]], roles: list[str], field: str, label: str) -> None:
    positions = np.arange(len(rows))
    for index, role in enumerate(roles):
        values = [row[role][field] for row in rows]
        shown = [(x, value) for x, value in zip(positions, values) if value is not None]
        offset = (index - 0.5) * BAR_WIDTH
        if shown:
            axes.bar([x + offset for x, _ in shown], [value for _, value in shown], BAR_WIDTH,
                     color=color_for(index), label=role)
        for x, value in zip(positions, values):
            if value is None:  # not measured: said in place of a bar
                axes.annotate("not measured", (x + offset, 0), xytext=(0, 3), textcoords="offset points",
                              rotation=90, ha="center", va="bottom", fontsize=7, color="#6b7280")
    axes.set_xticks(positions, [row["mode"] for row in rows])
    axes.set_xlim(-0.5, len(rows) - 0.5)
    if all(row[role][field] is None for row in rows for role in roles):
        axes.set_yticks([])  # no scale for what was not measured
    axes.set_xlabel("power mode")
    axes.set_ylabel(label, fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="best", fontsize=8)
