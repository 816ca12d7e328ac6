"""Two per-layer profiles side by side, joined by the model's module: where the time moved.

A profile is a record's ``layer_profile`` (``edgebench run --profile-layers``; rows as
``edgebench.board.layer_profiles`` describes them). Rows are joined by their ``module`` (a row
that maps to none by its ``layer`` name), summed per module, optionally cut to the first
``depth`` parts of the path (``layer1.0.conv1`` at depth 2 is ``layer1.0``), which is how
backends that fuse differently (eager against ONNX Runtime) are best compared. Profiled times
are slower than unprofiled ones; the changes and shares are what a diff is for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Optional

from edgebench.errors import UsageError
from edgebench.results.record import Record
from edgebench.results.store import RunInfo, Store

# How a record is named on the command line: a run id or unique prefix, and its position.
_POSITION = ":"


@dataclass(frozen=True)
class ModuleChange:
    """One module's time in profile A and B (None where the module is not in that profile)."""

    module: str
    a_ms: Optional[float]
    b_ms: Optional[float]
    a_share: Optional[float]
    b_share: Optional[float]

    @property
    def change_ms(self) -> float:
        return (self.b_ms or 0.0) - (self.a_ms or 0.0)

    @property
    def ratio(self) -> Optional[float]:
        """B over A; None for a module in one profile only."""
        return self.b_ms / self.a_ms if self.a_ms and self.b_ms is not None else None

    @property
    def only_in(self) -> Optional[str]:
        return "A" if self.b_ms is None else "B" if self.a_ms is None else None


@dataclass(frozen=True)
class ProfileDiff:
    total_a_ms: float
    total_b_ms: float
    modules: list[ModuleChange]  # largest absolute change first

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "total_a_ms": self.total_a_ms,
            "total_b_ms": self.total_b_ms,
            "modules": [dict(asdict(change), change_ms=change.change_ms, ratio=change.ratio, only_in=change.only_in)
                        for change in self.modules],
        }


def module_times(rows: Sequence[dict[str, Any]], depth: Optional[int] = None) -> dict[str, float]:
    """Median ms per module (a row without one: its layer name), in the order first seen; with
    ``depth``, per module path cut to its first ``depth`` parts."""
    times: dict[str, float] = {}
    for row in rows:
        key = row.get("module") or row["layer"]
        if depth is not None:
            key = ".".join(key.split(".")[:depth])
        times[key] = times.get(key, 0.0) + row["median_ms"]
    return times


def diff_profiles(rows_a: Sequence[dict[str, Any]], rows_b: Sequence[dict[str, Any]],
                  depth: Optional[int] = None) -> ProfileDiff:
    """Profile B against profile A, per module, largest absolute change first."""
    if depth is not None and depth < 1:
        raise UsageError(f"--depth must be at least 1, not {depth}")
    times_a, times_b = module_times(rows_a, depth), module_times(rows_b, depth)
    total_a, total_b = sum(times_a.values()), sum(times_b.values())
    changes = [
        ModuleChange(module, times_a.get(module), times_b.get(module),
                     _share(times_a.get(module), total_a), _share(times_b.get(module), total_b))
        for module in list(times_a) + [module for module in times_b if module not in times_a]
    ]
    changes.sort(key=lambda change: abs(change.change_ms), reverse=True)
    return ProfileDiff(total_a, total_b, changes)


def profiled_record(store: Store, reference: str) -> tuple[str, Record]:
    """The record ``RUN[:N]`` names (the run's N-th record, as ``results show`` lists them; N may
    be left out when the run holds one profiled record) and its full name; a UsageError when
    there is no such record or it has no layer profile."""
    run_text, _, position = reference.partition(_POSITION)
    run = store.get_run(run_text)
    records = store.records(run.id)
    if not position:
        profiled = [index for index, record in enumerate(records, 1) if record.layer_profile]
        if len(profiled) != 1:
            raise UsageError(f"run {run.id} holds {len(profiled)} records with a layer profile"
                             f"{_listed(run, records, profiled)}; name one as {run.id}{_POSITION}N")
        position = str(profiled[0])
    if not position.isdigit() or not 1 <= int(position) <= len(records):
        raise UsageError(f"record {reference!r}: run {run.id} has records {_POSITION}1 to "
                         f"{_POSITION}{len(records)}, not {_POSITION}{position}")
    name = f"{run.id}{_POSITION}{position}"
    record = records[int(position) - 1]
    if not record.layer_profile:
        raise UsageError(f"record {name} ({describe_record(record)}) has no layer profile"
                         f"{_profile_problem(record)}; measure with `edgebench run --profile-layers`")
    return name, record


def describe_record(record: Record) -> str:
    return f"{record.model} {record.backend} {record.device} {record.precision} b{record.batch}"


def _listed(run: RunInfo, records: Sequence[Record], positions: Sequence[int]) -> str:
    if not positions:
        return ""
    return " (" + ", ".join(f"{run.id}{_POSITION}{index} {describe_record(records[index - 1])}"
                            for index in positions) + ")"


def _profile_problem(record: Record) -> str:
    """Why the worker left the profile out, when it said so."""
    said = [warning for warning in record.warnings if warning.startswith("--profile-layers")]
    return f" ({said[0]})" if said else ""


def _share(ms: Optional[float], total: float) -> Optional[float]:
    return ms / total if ms is not None and total > 0 else None
