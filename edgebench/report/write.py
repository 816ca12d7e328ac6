"""The whole report of a run: gathered and drawn (``build``), then written as a page (``html``)."""

from __future__ import annotations

from pathlib import Path

from edgebench.report.build import build_report
from edgebench.report.html import write_page
from edgebench.results.select import Scope
from edgebench.results.store import Store


def write_report(store: Store, out_dir: Path, run_id: str | None = None, method: str | None = None,
                 scope: Scope = Scope()) -> Path:
    """Write the report of ``run_id``'s records of ``method`` in ``scope`` (by default the latest
    run's sweep records) into ``out_dir``; returns index.html."""
    return write_page(build_report(store, out_dir, run_id, method, scope), out_dir)
