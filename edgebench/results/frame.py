"""Records as a pandas DataFrame, one row per record, for analysis in Python.

    from edgebench.results import load_dataframe
    df = load_dataframe("results/edgebench.db", run_id="20240501-1203")
    df.groupby("backend")["latency_ms.p50"].median()

Columns, in this order:

- the record's plain fields under their own names: ``model``, ``backend``, ``batch``,
  ``status``, ``error``, ``iterations``, ``throughput_ips``, ...; after ``machine_id``, the
  ``board`` measured on (``Record.board``: the labgrid place, else the host name);
- nested objects as ``group.field``, mirroring the record JSON: ``latency_ms.p50``,
  ``latency_ms.p99``, ``stability.cv``, ``memory_mb.host_peak``, ``settings.min_time_s``;
  the p50 interval is split into ``latency_ms.ci95_low`` and ``latency_ms.ci95_high``.
  These columns are there (empty) even when no record has the object;
- lists and free-form mappings (``input_shapes``, ``warnings``, ``hooks``, ``artifacts``,
  ``backend_options``, ``energy``, ``env``) as JSON text, so the frame writes to csv and
  parquet as it is; ``warning_count`` counts the warnings;
- the run's ``run.status``, ``run.host``, ``run.git_commit``, ``run.started_at``, and each
  run tag as ``tag.<name>``;
- ``samples_ms`` (a list of floats) only when asked for with ``with_samples=True``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from pydantic import BaseModel

from edgebench.results.record import Latency, Memory, Record, Settings, Stability
from edgebench.results.store import DEFAULT_STORE, RunInfo, Store

_GROUPS: dict[str, type[BaseModel]] = {
    "latency_ms": Latency,
    "stability": Stability,
    "memory_mb": Memory,
    "settings": Settings,
}
_JSON_TEXT_FIELDS = ("input_shapes", "warnings", "hooks", "backend_options", "energy", "env", "artifacts")
_RUN_FIELDS = ("status", "host", "git_commit", "started_at")
_SAMPLES = "samples_ms"


def load_dataframe(
    store: str | Path = DEFAULT_STORE,
    run_id: str | None = None,
    with_samples: bool = False,
) -> pd.DataFrame:
    """Records of one run (id or unique id prefix), or of every run, as a DataFrame."""
    with Store.open(store, create=False) as opened:
        return records_frame(opened.records(run_id), opened.runs(), with_samples=with_samples)


def records_frame(
    records: Iterable[Record], runs: Iterable[RunInfo], with_samples: bool = False
) -> pd.DataFrame:
    """The flattened frame of ``records``; ``runs`` supplies the run and tag columns."""
    runs_by_id = {run.id: run for run in runs}
    records = list(records)
    tag_names = sorted({tag for record in records for tag in runs_by_id[record.run_id].tags})
    rows = [_flat_row(record, runs_by_id[record.run_id], with_samples) for record in records]
    columns = record_columns() + [f"tag.{name}" for name in tag_names]
    if with_samples:
        columns.append(_SAMPLES)
    return pd.DataFrame(rows, columns=columns)


def record_columns() -> list[str]:
    """The columns every frame has, whatever its records (tags and samples come on top)."""
    columns: list[str] = []
    for field in Record.model_fields:
        if field in _GROUPS:
            columns += _group_columns(field, _GROUPS[field])
        elif field != _SAMPLES:
            columns.append(field)
        if field == "machine_id":
            columns.append("board")
        if field == "warnings":
            columns.append("warning_count")
    return columns + [f"run.{field}" for field in _RUN_FIELDS]


def _group_columns(group: str, model: type[BaseModel]) -> list[str]:
    columns: list[str] = []
    for field in model.model_fields:
        if field == "ci95":
            columns += [f"{group}.ci95_low", f"{group}.ci95_high"]
        else:
            columns.append(f"{group}.{field}")
    return columns


def _flat_row(record: Record, run: RunInfo, with_samples: bool) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for field, value in record.to_json_dict(with_samples=False).items():
        if field in _GROUPS:
            row.update(_group_values(field, value))
        elif field in _JSON_TEXT_FIELDS:
            row[field] = None if value is None else json.dumps(value)
        else:
            row[field] = value
    row["board"] = record.board
    row["warning_count"] = len(record.warnings)
    row.update({f"run.{field}": getattr(run, field) for field in _RUN_FIELDS})
    row.update({f"tag.{name}": value for name, value in run.tags.items()})
    if with_samples:
        row[_SAMPLES] = list(record.samples_ms)
    return row


def _group_values(group: str, value: dict[str, Any] | None) -> dict[str, Any]:
    # A missing group leaves its columns empty (NaN) rather than dropping them.
    if value is None:
        return {}
    values = {f"{group}.{field}": item for field, item in value.items() if field != "ci95"}
    if "ci95" in value:
        values[f"{group}.ci95_low"], values[f"{group}.ci95_high"] = value["ci95"]
    return values
