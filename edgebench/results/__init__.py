"""Measurement records and where they are kept.

``record`` defines the ``Record`` (``record_versions`` upgrades older record JSON) and ``key``
the comparison key; ``store`` keeps runs and records in a SQLite file or a PostgreSQL database
(``migrations`` makes and upgrades its schema; ``spool`` keeps a run whose server is unreachable,
``push`` uploads it); ``frame`` loads them as a pandas DataFrame; ``export`` writes csv, parquet or json.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["RunInfo", "Store", "load_dataframe"]

_LAZY_EXPORTS = {
    "RunInfo": "edgebench.results.store",
    "Store": "edgebench.results.store",
    "load_dataframe": "edgebench.results.frame",
}


def __getattr__(name: str) -> Any:
    # Imported on first use: importing edgebench.results.record must not pull in pandas.
    if name not in _LAZY_EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
