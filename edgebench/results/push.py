"""``edgebench results push``: upload the spool's runs and records to the results store.

Idempotent: runs are known by their id and records by their uid, so pushing twice, or again
after a push that failed half-way, leaves exactly one copy of each. A run's records go up before
its final status; a pushed run that has ended leaves the spool, one still running (its writer
goes on, or was killed) stays there and goes up again next time.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgebench.results.store import Store


@dataclass
class PushSummary:
    runs: int = 0
    records: int = 0
    already_there: int = 0  # records an earlier push, or the run itself before its server went away, stored
    still_running: int = 0  # runs kept in the spool

    def line(self, spool: str, store: str) -> str:
        text = f"pushed {self.runs} run(s), {self.records} new record(s) from {spool} to {store}"
        if self.already_there:
            text += f" ({self.already_there} already there)"
        if self.still_running:
            text += f"; {self.still_running} run(s) still running stay in the spool (push again once they end)"
        return text


def push(spool: Store, store: Store) -> PushSummary:
    """Copy every run and record of ``spool`` into ``store``, oldest run first; empty the spool
    of the runs that have ended."""
    summary = PushSummary()
    for run in reversed(spool.runs()):
        store.put_run(run.model_copy(update={"status": "running", "finished_at": None}))
        for uid, record in spool.records_with_uids(run.id):
            if store.add_record(record, uid=uid):
                summary.records += 1
            else:
                summary.already_there += 1
        store.put_run(run)  # its final status, now that its records are all there
        summary.runs += 1
        if run.status == "running":
            summary.still_running += 1
        else:
            spool.delete_run(run.id)
    return summary
