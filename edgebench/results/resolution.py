"""Latency and frames per second against input resolution: what ``edgebench compare --resolution``,
the report's resolution figures and ``benchmarks/resolution_sweep.py`` show.

A series is what one curve holds fixed: the comparison key (``results.key``) less the input
shape, i.e. one model, batch, precision and backend on one machine, target, mode and device. Its
points are the latest record of each input shape, smallest input first. Frames per second is the
record's ``throughput_ips`` (batch x 1000 / p50 ms): one frame per item of the batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from edgebench.errors import UsageError
from edgebench.results.compare import latest_per_key
from edgebench.results.intervals import p50_interval
from edgebench.results.key import KEY_FIELDS, key_fields, key_of
from edgebench.results.record import Record

SERIES_FIELDS = key_fields(("input_shape",))


def input_size(record: Record) -> int:
    """Elements per item fed to the model (every input, less the batch dim): what orders a series."""
    return sum(math.prod(shape[1:]) for shape in record.input_shapes.values())


def resolution_series(records: Iterable[Record]) -> list[list[Record]]:
    """The latest record of each key, grouped by series (in the order the records first show
    them) and sorted by input size within each."""
    series: dict[tuple, list[Record]] = {}
    for record in latest_per_key(records, KEY_FIELDS).values():
        series.setdefault(key_of(record, SERIES_FIELDS), []).append(record)
    return [sorted(points, key=input_size) for points in series.values()]


def swept_series(records: Iterable[Record]) -> list[list[Record]]:
    """Every series, once at least one of them holds more than one input shape; else a usage
    error saying how to measure a sweep."""
    series = resolution_series(records)
    if not any(len(points) > 1 for points in series):
        raise UsageError("no resolution sweep in these records: each model, batch, backend and target was "
                         "measured at one input shape; measure several with --input-shape 3x256x512,3x512x1024")
    return series


def resolution_row(record: Record) -> dict[str, Any]:
    """One point as flat data: the csv and json columns, and what the tables show."""
    latency = record.latency_ms
    interval = p50_interval(record) if latency else None  # worker processes counted
    return {
        "model": record.model,
        "input_shape": record.input_shape,
        "input_size": input_size(record),
        "batch": record.batch,
        "precision": record.precision,
        "backend": record.backend,
        "target": record.target,
        "mode": record.mode,
        "device": record.device,
        "board": record.board,
        "method": record.method,
        "status": record.status,
        "p50_ms": latency.p50 if latency else None,
        "p50_ci95_low_ms": interval.low if interval else None,
        "p50_ci95_high_ms": interval.high if interval else None,
        "fps": record.throughput_ips,
        "error": record.error,
        "warnings": list(record.warnings),
        "run_id": record.run_id,
    }


def resolution_rows(series: Sequence[Sequence[Record]]) -> list[dict[str, Any]]:
    return [resolution_row(record) for points in series for record in points]
