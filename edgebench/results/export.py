"""Write records out of the store: csv, parquet or json.

csv is the flattened frame of ``edgebench.results.frame`` without raw samples; parquet is
the same frame plus a ``samples_ms`` list column; json is the list of full records,
samples included, exactly as ``Record.to_json_dict`` gives them.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgebench.errors import UsageError
from edgebench.results.frame import records_frame
from edgebench.results.record import Record
from edgebench.results.store import Store

FORMATS = ("csv", "parquet", "json")


def export_records(store: Store, fmt: str, out: Path, run_id: str | None = None) -> int:
    """Write one run's records (id or unique prefix), or all, to ``out``; returns the count.

    An empty selection still writes a valid file (a header-only csv, an empty table, ``[]``).
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    records = store.records(run_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        _write_json(records, out)
    else:
        frame = records_frame(records, store.runs(), with_samples=fmt == "parquet")
        if fmt == "csv":
            frame.to_csv(out, index=False)
        else:
            frame.to_parquet(out, index=False)
    return len(records)


def _write_json(records: list[Record], out: Path) -> None:
    payload = [record.to_json_dict(with_samples=True) for record in records]
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
