"""Write records out of the store: csv, parquet, json or pytest-benchmark.

csv is the flattened frame of ``edgebench.results.frame`` without raw samples; parquet is
the same frame plus a ``samples_ms`` list column; json is the list of full records,
samples included, exactly as ``Record.to_json_dict`` gives them; pytest-benchmark is one
run as pytest-benchmark saves its runs (``edgebench.results.benchmark_json``).
"""

from __future__ import annotations

import json
from pathlib import Path

from edgebench.errors import UsageError
from edgebench.results.benchmark_json import benchmark_file
from edgebench.results.record import Record
from edgebench.results.select import stored_runs
from edgebench.results.store import Store

FORMATS = ("csv", "parquet", "json", "pytest-benchmark")


def export_records(store: Store, fmt: str, out: Path, run_id: str | None = None) -> int:
    """Write one run's records (id or unique prefix), or all, to ``out``; returns the count.

    An empty selection still writes a valid file (a header-only csv, an empty table, ``[]``).
    pytest-benchmark files hold one run, the latest when ``run_id`` is None, and only its measured
    records: the count is of those.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "pytest-benchmark":
        return _write_pytest_benchmark(store, out, run_id)
    records = store.records(run_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        _write_json(records, out)
    else:
        from edgebench.results.frame import records_frame  # pandas: 0.4 s to import, only for a table

        frame = records_frame(records, store.runs(), with_samples=fmt == "parquet")
        if fmt == "csv":
            frame.to_csv(out, index=False)
        else:
            frame.to_parquet(out, index=False)
    return len(records)


def _write_json(records: list[Record], out: Path) -> None:
    payload = [record.to_json_dict(with_samples=True) for record in records]
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def _write_pytest_benchmark(store: Store, out: Path, run_id: str | None) -> int:
    run = store.get_run(run_id) if run_id is not None else stored_runs(store)[0]
    document = benchmark_file(run, store.records(run.id))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return len(document["benchmarks"])
