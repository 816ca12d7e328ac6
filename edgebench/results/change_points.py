"""Change points across a key's history: when its level shifted, by how much, and what changed in
the environment at that point.

``edgebench regress`` judges one run against the one before (``regress``); a 3% step, or a slow
drift of half a percent a night, stays under its threshold night after night. Here the whole
series of a key (its records, oldest first, up to ``HISTORY_LIMIT`` runs) goes through
E-divisive with a t-test (``edivisive``), which dates a shift once enough nights after it agree.

The series is any number per record: p50 by default; a value function can give another (a
paired ratio against a golden record, where such records exist). Each point is annotated with
what differs in its environment from the point before, by the rule ``regress`` lists
environment changes with, plus the model fingerprint and the machine, so a change point that
coincides with a new library version, JetPack release, clock setting or power mode says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgebench.results import edivisive
from edgebench.results.record import Record
from edgebench.results.regress import HISTORY_SCAN_LIMIT, RegressReport, earlier_records, environment_differences
from edgebench.results.select import Scope, stored_runs
from edgebench.results.store import RunInfo, Store

HISTORY_LIMIT = HISTORY_SCAN_LIMIT  # records per key: its runs among the runs regress scans
MIN_POINTS = 6  # shorter series are not searched: a shift needs a few points on both sides
_IDENTITY_FIELDS = ("model_fingerprint", "machine_id")  # key fields a series may still change in

Value = Callable[[Record], float]


def p50(record: Record) -> float:
    return record.latency_ms.p50


@dataclass(frozen=True)
class ChangePoint:
    """A shift in a key's series: ``record`` is the first point of the new level."""

    index: int
    record: Record
    mean_before: float
    mean_after: float
    change: float  # mean_after / mean_before - 1
    p_value: float
    environment: tuple[str, ...]  # what differs from the point before, "name: before -> after"

    def to_json_dict(self) -> dict[str, Any]:
        return {"index": self.index, "run_id": self.record.run_id, "created_at": self.record.created_at,
                "mean_before": self.mean_before, "mean_after": self.mean_after, "change": self.change,
                "p_value": self.p_value, "environment_changes": list(self.environment)}


@dataclass(frozen=True)
class History:
    """One key's series, oldest first, with its change points and each point's environment changes."""

    records: list[Record]
    values: list[float]
    points: list[ChangePoint]
    environment: list[tuple[str, ...]]  # per point, against the one before; () for the first

    def to_json_dict(self) -> dict[str, Any]:
        return {"points": len(self.records), "first_run": self.records[0].run_id,
                "change_points": [point.to_json_dict() for point in self.points]}


def environment_changes(records: Sequence[Record]) -> list[tuple[str, ...]]:
    """For each record, what differs from the record before it (nothing for the first)."""
    return [()] + [tuple(_identity_differences(before, after) + environment_differences(before, after))
                   for before, after in zip(records, records[1:])]


def find(records: Sequence[Record], value: Value = p50, max_pvalue: float = edivisive.MAX_PVALUE) -> History:
    """The change points of ``value`` over ``records`` (ok records of one key, oldest first)."""
    values = [value(record) for record in records]
    environment = environment_changes(records)
    splits = edivisive.change_points(values, max_pvalue) if len(values) >= MIN_POINTS else []
    points = [ChangePoint(split.index, records[split.index], split.mean_before, split.mean_after, split.change,
                          split.p_value, environment[split.index]) for split in splits]
    return History(list(records), values, points, environment)


def key_histories(store: Store, runs: Sequence[RunInfo], run: RunInfo, latest: Mapping[tuple, Record], method: str,
                  scope: Scope = Scope(), value: Value = p50) -> dict[tuple, History]:
    """For each key of ``latest`` (a run's ok records by key), its history up to and including that
    record: the key's records of ``method`` in ``scope`` from up to ``HISTORY_LIMIT`` earlier runs.
    ``runs`` newest first, as ``Store.runs`` gives them."""
    measured = {key: record for key, record in latest.items() if record.status == "ok"}
    earlier = earlier_records(store, runs, run, set(measured), method, scope, limit=HISTORY_LIMIT)
    return {key: find([*reversed(earlier.get(key, [])), record], value) for key, record in measured.items()}


def regress_histories(store: Store, report: RegressReport) -> dict[tuple, History]:
    """The history of each key a ``regress`` report judged, ending at its contender record."""
    latest = {verdict.contender.history_key: verdict.contender for verdict in report.verdicts}
    return key_histories(store, stored_runs(store), report.contender_run, latest, report.method, report.scope)


def _identity_differences(before: Record, after: Record) -> list[str]:
    return [f"{name}: {getattr(before, name)} -> {getattr(after, name)}" for name in _IDENTITY_FIELDS
            if getattr(before, name) != getattr(after, name)]
