"""One run's records as the JSON file pytest-benchmark saves, for ``pytest-benchmark compare``.

Each ok record with raw samples becomes one benchmark: its samples (milliseconds per call of
one batch) as the rounds, in seconds as pytest-benchmark keeps them, one call per round. The
statistics are computed as ``pytest_benchmark.stats.Stats`` computes them (its quartile method
included), so these files and pytest-benchmark's own sit side by side in one comparison. Failed
measurements have no samples and are left out. Benchmarks are grouped by model and batch, and
named ``MODEL[BACKEND-PRECISION-bBATCH-SHAPE]`` (the input shape after the batch dim), so the
same key in two runs' files lines up.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any

from edgebench.results.record import Record
from edgebench.results.store import RunInfo

# The pytest-benchmark release whose saved files this layout was checked against.
FORMAT_VERSION = "5.3.1"
TIMER = "perf_counter"  # the harness's clock for latency_ms
_MS_PER_S = 1000.0
_TUKEY_FENCE = 1.5


def benchmark_file(run: RunInfo, records: Sequence[Record]) -> dict[str, Any]:
    """The saved-file document for ``run``: machine and commit info, one benchmark per measured record."""
    env = run.env or (records[0].env if records else {})
    return {
        "machine_info": _machine_info(run, env),
        "commit_info": _commit_info(run),
        "benchmarks": [_benchmark(record) for record in records if record.status == "ok" and record.samples_ms],
        "datetime": run.started_at,
        "version": FORMAT_VERSION,
    }


def round_stats(seconds: Sequence[float]) -> dict[str, Any]:
    """pytest-benchmark's ``stats`` of these per-round times, ``data`` included."""
    data = sorted(seconds)
    count = len(data)
    mean = statistics.mean(data)
    stddev = statistics.stdev(data) if count > 1 else 0.0
    q1, q3 = _quartiles(data)
    iqr = q3 - q1
    low_fence, high_fence = q1 - _TUKEY_FENCE * iqr, q3 + _TUKEY_FENCE * iqr
    iqr_outliers = sum(value < low_fence or value > high_fence for value in data)
    stddev_outliers = sum(value < mean - stddev or value > mean + stddev for value in data)
    total = sum(data)
    return {
        "min": data[0],
        "max": data[-1],
        "mean": mean,
        "stddev": stddev,
        "rounds": count,
        "median": statistics.median(data),
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_outliers,
        "stddev_outliers": stddev_outliers,
        "outliers": f"{stddev_outliers};{iqr_outliers}",
        "ld15iqr": data[bisect_left(data, low_fence)],
        "hd15iqr": data[bisect_right(data, high_fence) - 1],
        "ops": count / total if total else 0,
        "total": total,
        "iterations": 1,
        "data": list(seconds),
    }


def _quartiles(data: list[float]) -> tuple[float, float]:
    """Q1 and Q3 of sorted data by pytest-benchmark's rule: the medians of the halves for an even
    count, the weighted neighbours of Wikipedia's method 3 for an odd one."""
    count = len(data)
    if count == 1:
        return data[0], data[0]
    if count % 2 == 0:
        return statistics.median(data[: count // 2]), statistics.median(data[count // 2:])
    n = count // 4
    if count % 4 == 1:
        return 0.25 * data[n - 1] + 0.75 * data[n], 0.75 * data[3 * n] + 0.25 * data[3 * n + 1]
    return 0.75 * data[n] + 0.25 * data[n + 1], 0.25 * data[3 * n + 1] + 0.75 * data[3 * n + 2]


def _benchmark(record: Record) -> dict[str, Any]:
    # The input shape is part of the key (results.key): two resolutions of a model are two benchmarks.
    param = "-".join(filter(None, (record.backend, record.precision, f"b{record.batch}", record.input_shape)))
    name = f"{record.model}[{param}]"
    settings = record.settings
    return {
        "group": f"{record.model} b{record.batch}",
        "name": name,
        "fullname": f"{record.target}/{record.mode}/{record.device}::{name}",
        "params": {field: getattr(record, field)
                   for field in ("backend", "precision", "batch", "input_shape", "target", "mode", "device")},
        "param": param,
        "extra_info": {
            "run_id": record.run_id,
            "model_fingerprint": record.model_fingerprint,
            "unit": "one call of one batch",
            "latency_ms": record.latency_ms.model_dump(mode="json"),
            "throughput_ips": record.throughput_ips,
            "energy": record.energy,
            "throttled": record.throttled,
            "warnings": list(record.warnings),
        },
        "options": {
            "disable_gc": False,
            "timer": TIMER,
            "min_rounds": settings.min_iterations if settings else None,
            "max_time": settings.max_time_s if settings else None,
            "min_time": settings.min_time_s if settings else None,
            "warmup": settings.warmup_s > 0 if settings else None,
        },
        "stats": round_stats([sample / _MS_PER_S for sample in record.samples_ms]),
    }


def _machine_info(run: RunInfo, env: dict[str, Any]) -> dict[str, Any]:
    system, _, release = str(env.get("os") or "").partition(" ")
    return {
        "node": run.host,
        "processor": env.get("cpu_model"),
        "machine": env.get("machine"),
        "python_version": env.get("python"),
        "system": system or None,
        "release": release or None,
        "cpu": {"brand_raw": env.get("cpu_model"), "count": env.get("cpu_count")},
        "packages": env.get("packages", {}),
    }


def _commit_info(run: RunInfo) -> dict[str, Any]:
    commit = run.git_commit or ""
    return {
        "id": commit.removesuffix("-dirty") or "unversioned",
        "time": None,
        "author_time": None,
        "dirty": commit.endswith("-dirty"),
        "project": None,
        "branch": None,
        "tags": dict(run.tags),
    }
