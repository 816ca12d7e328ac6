"""The spool: a local SQLite store where a run goes on when its results server cannot be reached.

A run writing to a server store (``--store postgresql://...``) that cannot reach it when the run
starts, or loses it mid-run, keeps every record: the run row (under the same id) and the records
from then on go to the spool, and one line says so and how to upload them later with
``edgebench results push`` (``push``). The spool is ``$EDGEBENCH_SPOOL``, else
results/spool.db beside the default store. A SQLite store is never spooled: its failures are
the user's to see.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Optional

from edgebench.results.location import StoreUnreachable, store_location
from edgebench.results.record import Record
from edgebench.results.store import FinalRunStatus, RunInfo, Store, new_record_uid

DEFAULT_SPOOL = Path("results") / "spool.db"
SPOOL_ENV = "EDGEBENCH_SPOOL"


def spool_location() -> str:
    """Where runs go on when their server is unreachable: ``$EDGEBENCH_SPOOL``, else results/spool.db."""
    return os.environ.get(SPOOL_ENV) or str(DEFAULT_SPOOL)


class RunWriter:
    """One run's writes: into its store while it answers, then into the spool. Use as a context
    manager; ``start`` opens the store and creates the run."""

    def __init__(self, store: str | Path, log: Callable[[str], None]) -> None:
        self._store_location = store
        self._store_display = store_location(store).display
        self._log = log
        self._store: Optional[Store] = None
        self._run: Optional[RunInfo] = None

    @property
    def location(self) -> str:
        """Where the run's records go now: the store, or the spool once it took over."""
        return self._store.location if self._store is not None else self._store_display

    def start(self, **run_fields: Any) -> RunInfo:
        """Open the store and create the run (``Store.create_run``'s fields) there, or in the
        spool when the store's server cannot be reached."""
        try:
            self._store = Store.open(self._store_location)
            self._run = self._store.create_run(**run_fields)
        except StoreUnreachable as exc:
            self._spool_over(exc)
            self._run = self._store.create_run(**run_fields)
        return self._run

    def add_record(self, record: Record) -> None:
        """Store ``record`` now, in the spool if the server is lost. One uid for both tries: a
        record the server committed just before it went away is pushed later as the same record."""
        uid = new_record_uid()
        self._write(lambda store: store.add_record(record, uid=uid))

    def finish(self, status: FinalRunStatus) -> None:
        self._write(lambda store: store.finish_run(self._run.id, status))

    def _write(self, action: Callable[[Store], Any]) -> None:
        if self._store is None or self._run is None:
            raise RuntimeError("a write before the run started")
        try:
            action(self._store)
        except StoreUnreachable as exc:
            self._spool_over(exc)
            self._store.put_run(self._run)  # the run row, under its id, for the records to follow
            action(self._store)

    def _spool_over(self, exc: StoreUnreachable) -> None:
        lost = self._store
        self._store = None
        if lost is not None:
            lost.close()
        spool = spool_location()
        self._store = Store.open(spool)
        self._log(f"{exc}; this run goes on in the spool {spool}: upload it later with `edgebench results push "
                  f"--spool {spool} --store {self._store_display}`")

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

