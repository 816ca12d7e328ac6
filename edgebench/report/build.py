"""What the report shows: one run's records and their history, gathered from the store, and the
figures drawn from them.

Every statistic comes from the results modules: speedups and their intervals from
``compare``, verdicts from ``regress.judge``, change points from ``change_points``. This module
chooses what is shown and where.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from matplotlib.figure import Figure

from edgebench.report import plots
from edgebench.results import change_points
from edgebench.results.calibration import SUITE_TAG, Calibration, calibration
from edgebench.results.compare import Pair, Unpaired, compare, latest_per_key
from edgebench.results.golden_series import GoldenHistory, golden_histories
from edgebench.results.intervals import p50_interval
from edgebench.results.key import HISTORY_FIELDS
from edgebench.results.record import Record
from edgebench.results.resolution import input_size, resolution_series
from edgebench.results.regress import DEFAULT_THRESHOLD, HISTORY_RUNS, Verdict, judge
from edgebench.results.select import Scope, judged_method, runs_measuring, scoped_run_records, stored_runs
from edgebench.results.store import RunInfo, Store

BASELINE_BACKEND = "eager"  # as in `edgebench run`'s table; else the run's first backend
METRIC = "p50"
HISTORY_SHOWN = 12  # runs per key in the history figures
# Fields that tell a run's records apart besides model and batch, in the order labels show them.
LABEL_FIELDS = ("input_shape", "backend", "precision", "mode", "device", "target", "board")
FIGURE_GLOB = "fig-*.png"


@dataclass(frozen=True)
class FigureFile:
    file: str  # a PNG beside index.html
    title: str
    note: str = ""  # what the figure leaves out


@dataclass(frozen=True)
class Step:
    """A key's record in one run against its record in the previous run that measured the key."""

    record: Record
    previous: Record | None
    #: None for the first point, and for a change within the threshold, which the rule calls
    #: unchanged whatever the test says.
    verdict: Verdict | None

    @property
    def change(self) -> float | None:
        if self.previous is None:
            return None
        return self.record.latency_ms.p50 / self.previous.latency_ms.p50 - 1.0

    @property
    def outcome(self) -> str:
        if self.verdict is not None:
            return self.verdict.outcome
        return "new" if self.previous is None else "unchanged"


@dataclass(frozen=True)
class Row:
    """One record of the run, with what the other sections say about it."""

    record: Record
    label: str
    pair: Pair | None  # its speedup over the baseline backend
    step: Step | None  # against the previous run; None when it failed


@dataclass(frozen=True)
class ReportData:
    run: RunInfo
    rows: list[Row]
    baseline_backend: str | None
    pairs: list[Pair]
    unpaired: list[Unpaired]
    energy_rows: list[Row]
    history_runs: int  # runs shown in the history figures
    threshold: float
    figures: dict[str, list[FigureFile]]
    environment: list[tuple[str, str]]
    label: Labels
    scope: str  # "board 'xavier-01'" when the report holds one machine's or board's records, else ""
    calibration: Calibration  # A/A checks of this run, and of its suite (or the store) over time

    def count(self, outcome: str) -> int:
        return sum(1 for row in self.rows if row.step is not None and row.step.outcome == outcome)

    @property
    def failed(self) -> list[Row]:
        return [row for row in self.rows if row.record.status != "ok"]

    @property
    def warned(self) -> list[Row]:
        return [row for row in self.rows if row.record.warnings]


class Labels:
    """Short names for a run's records: model and batch, then only the fields that vary in the run."""

    def __init__(self, records: Sequence[Record]) -> None:
        varying = [name for name in LABEL_FIELDS if len({getattr(r, name) for r in records}) > 1]
        self.fields = varying or ["backend"]

    def __call__(self, record: Record, *, with_model: bool = True, without: Sequence[str] = ()) -> str:
        parts = [f"{record.model} b{record.batch}"] if with_model else []
        parts += [str(getattr(record, name)) for name in self.fields if name not in without]
        return " ".join(parts)


def build_report(store: Store, out_dir: Path, run_id: str | None = None, method: str | None = None,
                 scope: Scope = Scope()) -> ReportData:
    """Gather the report of ``run_id``'s records of ``method`` in ``scope`` (sweep unless told; by
    default the latest run holding such records) and draw its figures into ``out_dir``."""
    method = judged_method(method)
    runs = stored_runs(store)
    run, records = scoped_run_records(store, runs, run_id, method, scope, "report")
    label = Labels(records)
    histories, history_runs = key_histories(store, runs, run, records, method, scope)
    shifts = change_points.key_histories(store, runs, run, latest_per_key(records, HISTORY_FIELDS), method, scope)
    baseline, pairs, unpaired = speedup_pairs(records)
    pair_of = {id(pair.contender): pair for pair in pairs}
    rows = [Row(r, label(r), pair_of.get(id(r)), histories[r.history_key][-1] if r.status == "ok" else None)
            for r in records]
    energy_rows = [row for row in rows if row.record.status == "ok" and _measured_energy(row.record)]

    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob(FIGURE_GLOB):  # figures of an earlier report in the same directory
        old.unlink()
    colors = {backend: plots.color_for(i) for i, backend in enumerate(dict.fromkeys(r.backend for r in records))}
    figures = {
        "latency": draw_latency(records, label, colors, out_dir),
        "resolution": draw_resolution(records, label, colors, out_dir),
        "speedup": draw_speedups(pairs, baseline, label, colors, out_dir),
        "energy": draw_energy(energy_rows, label, out_dir),
        "history": draw_history(histories, history_runs, records, label, colors, out_dir, shifts,
                                golden_histories(store, runs, shifts)),
    }
    return ReportData(run, rows, baseline, pairs, unpaired, energy_rows, len(history_runs), DEFAULT_THRESHOLD,
                      figures, environment_rows(run, records), label, str(scope),
                      calibration(store, runs, run.id, run.tags.get(SUITE_TAG), scope))


def speedup_pairs(records: Sequence[Record]) -> tuple[str | None, list[Pair], list[Unpaired]]:
    """Each other backend against the baseline backend (eager where measured, else the first one),
    paired by ``compare`` on the rest of the key; no baseline when fewer than two backends measured."""
    backends = list(dict.fromkeys(r.backend for r in records if r.status == "ok"))
    if len(backends) < 2:
        return None, [], []
    baseline = BASELINE_BACKEND if BASELINE_BACKEND in backends else backends[0]
    base = [r for r in records if r.backend == baseline]
    pairs: list[Pair] = []
    unpaired: dict[int, Unpaired] = {}  # a baseline record left alone shows up once, not once per backend
    for backend in dict.fromkeys(r.backend for r in records if r.backend != baseline):
        comparison = compare(base, [r for r in records if r.backend == backend], ("backend",))
        pairs += comparison.pairs
        for item in comparison.unpaired:
            unpaired.setdefault(id(item.record), item)
    return baseline, pairs, list(unpaired.values())


def key_histories(store: Store, runs: Sequence[RunInfo], run: RunInfo, records: Sequence[Record], method: str,
                  scope: Scope = Scope()) -> tuple[dict[tuple, list[Step]], list[RunInfo]]:
    """For each key the run measured, its steps over the last ``HISTORY_SHOWN`` runs with records of
    ``method`` on its machines up to this one (oldest first), each judged against the run before as
    ``edgebench regress`` judges it: with the key's up to ``HISTORY_RUNS`` earlier records (in
    ``scope``) as its noise history. Also the runs shown.

    ``runs``: newest first, as ``Store.runs`` gives them."""
    series: dict[tuple, list[Record]] = {r.history_key: [] for r in records if r.status == "ok"}  # in the run's order
    upto = [past for past in runs_measuring(runs, {r.machine_id for r in records})
            if (past.started_at, past.id) <= (run.started_at, run.id) and (past.id == run.id or method in past.methods)]
    shown: list[RunInfo] = []
    for past in reversed(upto[:HISTORY_SHOWN + HISTORY_RUNS]):
        measured = latest_per_key((r for r in (records if past.id == run.id else store.records(past.id, method=method))
                                   if r.status == "ok" and scope.admits(r)), HISTORY_FIELDS)
        common = series.keys() & measured.keys()
        for key in common:
            series[key].append(measured[key])
        if common:
            shown.append(past)
    shown = shown[-HISTORY_SHOWN:]
    shown_ids = {past.id for past in shown}
    return {key: [_step(points, index) for index in range(len(points)) if points[index].run_id in shown_ids]
            for key, points in series.items()}, shown


def _step(points: Sequence[Record], index: int) -> Step:
    record = points[index]
    if index == 0:
        return Step(record, None, None)
    previous = points[index - 1]
    step = Step(record, previous, None)
    if abs(step.change) <= DEFAULT_THRESHOLD:
        return step  # the rule's answer without a test; each test bootstraps both records' samples
    earlier = points[:index][::-1][:HISTORY_RUNS]
    return Step(record, previous, judge(previous, record, METRIC, DEFAULT_THRESHOLD, history=earlier))


def draw_latency(records: Sequence[Record], label: Labels, colors: dict[str, str], out_dir: Path
                 ) -> list[FigureFile]:
    figures = []
    for index, ((model, batch), group) in enumerate(_by_model_and_batch(records).items(), start=1):
        boxes = [plots.Box(label(r, with_model=False), r.samples_ms, colors[r.backend], bool(r.warnings))
                 for r in group if r.status == "ok" and r.samples_ms]
        if not boxes:
            continue
        title = f"{model}, batch {batch}"
        missing = [f"{label(r, with_model=False)} ({r.status})" for r in group if r.status != "ok"]
        note = f"Not measured: {', '.join(missing)}." if missing else ""
        figures.append(_saved(plots.latency_distributions(title, boxes), out_dir, f"fig-latency-{index}.png", title,
                              note))
    return figures


def draw_resolution(records: Sequence[Record], label: Labels, colors: dict[str, str], out_dir: Path
                    ) -> list[FigureFile]:
    """Per model and batch measured at more than one input shape: p50 and frames per second against
    input size, a line per series (``results.resolution``), coloured by backend."""
    groups: dict[tuple[str, int], list[list[Record]]] = {}
    for points in resolution_series(records):
        groups.setdefault((points[0].model, points[0].batch), []).append(points)
    figures = []
    for index, ((model, batch), series) in enumerate(groups.items(), start=1):
        if all(len(points) < 2 for points in series):
            continue
        # A series' label is its record's, less the shape; the line style tells apart all but the backend.
        rest = [label(points[0], with_model=False, without=("input_shape", "backend")) for points in series]
        styles = list(dict.fromkeys(rest))
        curves = [plots.Curve(label(points[0], with_model=False, without=("input_shape",)) or points[0].backend,
                              colors[points[0].backend], plots.linestyle_for(styles.index(other)),
                              [plots.SizePoint(input_size(r), r.input_shape, r.latency_ms.p50, *_p50_bounds(r),
                                               r.throughput_ips) for r in points if r.status == "ok"],
                              flagged=any(r.warnings for r in points))
                  for points, other in zip(series, rest)]
        curves = [curve for curve in curves if curve.points]
        if not curves:
            continue
        title = f"{model}, batch {batch}: latency and frames per second against input shape"
        missing = [f"{label(r, with_model=False)} ({r.status})" for points in series for r in points if r.status != "ok"]
        note = f"Not measured: {', '.join(missing)}." if missing else ""
        figures.append(_saved(plots.resolution_curves(title, curves), out_dir, f"fig-resolution-{index}.png", title,
                              note))
    return figures


def draw_speedups(pairs: Sequence[Pair], baseline: str | None, label: Labels, colors: dict[str, str],
                  out_dir: Path) -> list[FigureFile]:
    if not pairs:
        return []
    intervals = [plots.Interval(label(p.contender), p.speedup, *p.speedup_ci, colors[p.contender.backend],
                                bool(p.baseline.warnings or p.contender.warnings or p.notes)) for p in pairs]
    title = f"Speedup over {baseline}"
    return [_saved(plots.speedups(intervals, baseline), out_dir, "fig-speedup.png", title)]


def draw_energy(rows: Sequence[Row], label: Labels, out_dir: Path) -> list[FigureFile]:
    if not rows:
        return []
    modes = list(dict.fromkeys(row.record.mode for row in rows))
    dots = [plots.Dot(label(row.record, without=("mode",)), row.record.mode, row.record.energy["avg_power_w"],
                      row.record.energy["mj_per_inference"], bool(row.record.warnings)) for row in rows]
    figure = plots.energy_by_mode(dots, {mode: plots.color_for(i) for i, mode in enumerate(modes)})
    return [_saved(figure, out_dir, "fig-energy.png", "Power and energy per mode")]


def draw_history(histories: dict[tuple, list[Step]], runs: Sequence[RunInfo], records: Sequence[Record],
                 label: Labels, colors: dict[str, str], out_dir: Path,
                 shifts: dict[tuple, change_points.History],
                 golden: Mapping[tuple, GoldenHistory] = MappingProxyType({})) -> list[FigureFile]:
    """p50 over the shown runs per model and batch; each key's change points (over its whole
    history, up to ``change_points.HISTORY_LIMIT`` runs) and environment changes marked where they
    fall in the shown runs, and told in the figure's note, with the change points of its ``golden``
    ratio series (told only)."""
    if len(runs) < 2:
        return []
    position = {run.id: index for index, run in enumerate(runs)}
    run_labels = [run.started_at[5:16].replace("T", " ") for run in runs]  # MM-DD HH:MM (UTC)
    if len(set(run_labels)) < len(run_labels):  # several runs in one minute: only their ids tell them apart
        run_labels = [run.id for run in runs]
    measured = latest_per_key((r for r in records if r.status == "ok"), HISTORY_FIELDS).values()
    figures = []
    for index, ((model, batch), latest) in enumerate(_by_model_and_batch(measured).items(), start=1):
        # Colour by backend as in the other figures; the line style tells the rest of the key apart.
        styles = list(dict.fromkeys(label(r, with_model=False, without=("backend",)) for r in latest))
        lines, notes = [], []
        for record in latest:
            steps = histories[record.history_key]
            points = [(position[s.record.run_id], s.record.latency_ms.p50) for s in steps]
            shift = shifts[record.history_key]
            notes += [_change_point_note(label(record, with_model=False), point) for point in shift.points]
            series = golden.get(record.history_key)
            notes += [_change_point_note(label(record, with_model=False), point,
                                         f" of the ratio to golden run {series.golden_run}", unit="")
                      for point in (series.history.points if series else [])]
            lines.append(plots.Line(
                label(record, with_model=False),
                colors[record.backend],
                points,
                plots.linestyle_for(styles.index(label(record, with_model=False, without=("backend",)))),
                [point for point, s in zip(points, steps) if s.outcome == "regression"],
                [point for point, s in zip(points, steps) if s.outcome == "improvement"],
                flagged=bool(record.warnings),
                change_points=[(position[p.record.run_id], p.record.latency_ms.p50, f"{p.change:+.1%}")
                               for p in shift.points if p.record.run_id in position],
                environment_changes=[position[r.run_id] for r, changes in zip(shift.records, shift.environment)
                                     if changes and r.run_id in position],
            ))
            notes += [f"Environment changed at run {r.run_id}: {'; '.join(changes)}."
                      for r, changes in zip(shift.records, shift.environment) if changes and r.run_id in position]
        title = f"{model}, batch {batch}: p50 over the last {len(runs)} runs"
        note = " ".join(dict.fromkeys(notes))  # a change of every key's environment, said once
        figures.append(_saved(plots.p50_history(title, run_labels, lines), out_dir, f"fig-history-{index}.png", title,
                              note))
    return figures


def _change_point_note(key: str, point: change_points.ChangePoint, series: str = "", unit: str = " ms") -> str:
    environment = f"; environment: {'; '.join(point.environment)}" if point.environment else ""
    return (f"Change point{series} for {key} at run {point.record.run_id} ({point.record.created_at[:10]}): mean "
            f"{point.mean_before:.4g} -> {point.mean_after:.4g}{unit} ({point.change:+.1%}, "
            f"p = {point.p_value:.2g}){environment}.")


def environment_rows(run: RunInfo, records: Sequence[Record]) -> list[tuple[str, str]]:
    """What the run ran on, as name/value rows: the run, then every environment detail of its records
    (several values joined by ' | ' where records differ); backend libraries one row per backend."""
    rows = run.summary_rows()
    rows += [(name, _distinct(getattr(r, name) for r in records)) for name in ("target", "mode", "device", "board")]
    flat = [_flatten({k: v for k, v in (r.env or run.env).items() if k != "backend"}) for r in records]
    names = dict.fromkeys(name for env in flat for name in env)
    details = [(name, _distinct(env.get(name) for env in flat)) for name in names]
    rows += [detail for detail in details if detail not in rows]  # the host, said once
    rows += [(f"backend {backend}", _distinct(_shown(r.env.get("backend")) for r in records if r.backend == backend))
             for backend in dict.fromkeys(r.backend for r in records)]
    rows.append(("settings", _distinct(_shown(r.settings.model_dump()) for r in records if r.settings)))
    return rows


def _by_model_and_batch(records: Iterable[Record]) -> dict[tuple[str, int], list[Record]]:
    groups: dict[tuple[str, int], list[Record]] = {}
    for record in records:
        groups.setdefault((record.model, record.batch), []).append(record)
    return groups


def _saved(figure: Figure, out_dir: Path, name: str, title: str, note: str = "") -> FigureFile:
    plots.save(figure, out_dir / name)
    return FigureFile(name, title, note)


def _p50_bounds(record: Record) -> tuple[float, float]:
    interval = p50_interval(record)
    return interval.low, interval.high


def _measured_energy(record: Record) -> bool:
    energy = record.energy or {}
    return energy.get("avg_power_w") is not None and energy.get("mj_per_inference") is not None


def _flatten(env: dict[str, object]) -> dict[str, object]:
    """One level of nesting as ``outer.inner`` names: ``packages.torch``, ``nvpmodel.name``."""
    flat: dict[str, object] = {}
    for name, value in env.items():
        if isinstance(value, dict):
            flat.update({f"{name}.{inner}": item for inner, item in value.items()})
        else:
            flat[name] = value
    return flat


def _shown(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_shown(v)}" for k, v in value.items())
    return str(value)


def _distinct(values: Iterable[object]) -> str:
    return " | ".join(dict.fromkeys(_shown(value) for value in values)) or "-"
